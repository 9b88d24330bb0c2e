"""Control endpoints under /_emulator/ for driving the emulator from another process.

No auth, no faults, no rate limit, and not recorded in `Emulator.requests`: they are the
test harness, not the API.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .faults import DEFAULT_IMPORT_FAILURE
from .response import EmulatorResponse
from .util import dumps

if TYPE_CHECKING:
    from .app import Emulator

PREFIX = "/_emulator"
# What the project holds before a test: POST the fields (id, source_id, price...) here.
_HELD = {
    f"{PREFIX}/customers": "add_customer",
    f"{PREFIX}/products": "add_product",
    f"{PREFIX}/skus": "add_sku",
}


def is_control(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def handle(emu: Emulator, method: str, path: str, body: bytes, query: str = "") -> EmulatorResponse:
    route = (method, path.rstrip("/"))
    try:
        if route == ("GET", f"{PREFIX}/health"):
            return _json(200, {"ok": True})
        if route == ("POST", f"{PREFIX}/reset"):
            emu.reset()
            return _json(200, {"ok": True})
        if route == ("POST", f"{PREFIX}/faults"):
            configure_faults(emu, json.loads(body or b"{}"))
            return _json(200, {"ok": True})
        if method == "POST" and route[1] in _HELD:
            fields = json.loads(body or b"{}")
            if not isinstance(fields, dict):
                raise ValueError("the body must be a JSON object of the fields")
            return _json(200, getattr(emu, _HELD[route[1]])(**fields))
        if route == ("GET", f"{PREFIX}/orders"):
            return _json(200, emu.orders())
        if route == ("POST", f"{PREFIX}/finish-async"):
            emu.finish_async()
            return _json(200, {"ok": True})
        if route == ("GET", f"{PREFIX}/requests"):
            if parse_qs(query).get("detail") == ["1"]:
                return _json(200, request_detail(emu))
            return _json(200, request_counts(emu))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return _json(400, {"ok": False, "error": str(exc)})
    return _json(404, {"ok": False, "error": f"no control endpoint {method} {path}"})


def configure_faults(emu: Emulator, config: dict[str, Any]) -> None:
    """Apply {"clear", "script", "rates", "seed", "latency_ms", "retry_after",
    "fail_import": {"source_ids", "reason"}, "fail_export_next"}; clear goes first."""
    faults = emu.faults
    if not isinstance(config, dict):
        raise ValueError("the faults body must be a JSON object")
    if config.get("clear"):
        faults.clear()
    if "script" in config:
        faults.script(config["script"])
    if "rates" in config:
        faults.set_rates(config["rates"], seed=config.get("seed"))
    if "latency_ms" in config:
        faults.latency = float(config["latency_ms"]) / 1000
    if "retry_after" in config:
        faults.retry_after = int(config["retry_after"])
    if "fail_import" in config:
        spec = config["fail_import"]
        faults.fail_import(spec["source_ids"], spec.get("reason", DEFAULT_IMPORT_FAILURE))
    if "fail_export_next" in config:
        faults.fail_export_next(int(config["fail_export_next"]))


def request_counts(emu: Emulator) -> dict[str, Any]:
    records = emu.requests
    return {
        "total": len(records),
        "by_status": dict(Counter(str(r.status) for r in records)),
        "by_endpoint": dict(Counter(f"{r.method} {r.path}" for r in records)),
        "requests": [list(r) for r in records],
    }


def request_detail(emu: Emulator) -> list[dict[str, Any]]:
    """``?detail=1``: method, path, status and arrival time (epoch seconds) of each request."""
    return [
        {"method": r.method, "path": r.path, "status": r.status, "time": received}
        for r, received in emu.request_log()
    ]


def _json(status: int, payload: Any) -> EmulatorResponse:
    return EmulatorResponse(
        status, {"Content-Type": "application/json; charset=utf-8"}, dumps(payload)
    )
