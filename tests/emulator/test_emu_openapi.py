"""Emulator responses in every state validate against Voucherify's documents (patched).

tests/contract/ checks what the client's calls get back; this walks the states the client
rarely sees (ENQUEUED, IN_PROGRESS, SCHEDULED, ERROR, discounts, referrers, list views).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from django_voucherify_orders.emulator import Emulator
from tests.contract.openapi_contract import validate_exchange, validate_response

from .conftest import APP_ID, BASE, SECRET, Api, FakeClock, poll_until_done


@pytest.fixture
def checked(clock: FakeClock) -> Iterator[tuple[Emulator, Api, Counter[str]]]:
    emu = Emulator(APP_ID, SECRET, rate_limit_per_minute=None, async_steps=3, clock=clock)
    handle = emu.handle
    seen: Counter[str] = Counter()
    # Requests that are wrong on purpose (to get a 400) are not checked; their answers are.
    emu.requests_are_valid = True  # type: ignore[attr-defined]

    def validating_handle(method: str, url: str, headers: Any, body: Any = b"") -> Any:
        reply = handle(method, url, headers, body)
        prepared = requests.Request(method, url, headers=dict(headers), data=body or None)
        check = validate_exchange if emu.requests_are_valid else validate_response  # type: ignore[attr-defined]
        route = check(prepared.prepare(), reply.status, reply.headers, reply.body)
        seen[f"{route.operation_id} {reply.status}"] += 1
        return reply

    emu.handle = validating_handle  # type: ignore[method-assign]
    with emu.mock():
        yield emu, Api(BASE), seen


def test_states_and_shapes_validate(checked: tuple[Emulator, Api, Counter[str]]) -> None:
    emu, api, seen = checked
    full = {
        "source_id": "full",
        "status": "PAID",
        "discount_amount": 100,
        "created_at": "2024-01-01T00:00:00Z",
        "customer": {"source_id": "c", "name": "Ada", "address": None, "metadata": {"x": 1}},
        "referrer": {"source_id": "r"},
        "items": [
            {"product_id": "p", "quantity": 2, "price": 500, "discount_amount": 10},
            {"source_id": "s", "related_object": "sku", "quantity": 1, "amount": 7,
             "sku": {"source_id": "s", "sku": "S", "price": 7, "override": True}},
        ],
        "metadata": {"k": ["a", "b"]},
    }  # fmt: skip
    api.post("/v1/orders", json=full)
    api.post("/v1/orders", json={"source_id": "bare"})
    api.put("/v1/orders/bare", json={"referrer_id": None, "status": "CANCELED"})
    api.get("/v1/orders/full")
    api.get("/v1/orders/missing")
    for order in ("created_at", "-updated_at"):
        api.get("/v1/orders", params={"order": order, "limit": 1, "page": 2})

    first = api.post("/v1/orders/import", json=[{"source_id": "i1"}, {"source_id": "full"}])
    second = api.post("/v1/orders/import", json=[{"source_id": "i2"}])
    states = {api.get(f"/v1/async-actions/{second.json()['async_action_id']}").json()["status"]}
    aid = first.json()["async_action_id"]
    states |= {api.get(f"/v1/async-actions/{aid}").json()["status"] for _ in range(3)}
    assert states == {"ENQUEUED", "IN_PROGRESS", "DONE"}
    api.get("/v1/async-actions/aa_000000000000000000")

    emu.faults.fail_export_next()
    failing = api.post("/v1/orders/export", json={}).json()
    assert poll_until_done(api, f"/v1/exports/{failing['id']}")["status"] == "ERROR"
    export = api.post(
        "/v1/orders/export",
        json={
            "parameters": {
                "fields": ["id", "metadata.k", "total_amount"],
                "order": "-status",
                "filters": {
                    "junction": "or",
                    "metadata.k": {"conditions": {"$contains": ["a"]}},
                    "created_at": {"conditions": {"$before": ["2030-01-01T00:00:00Z"]}},
                },
            }
        },
    ).json()
    done = poll_until_done(api, f"/v1/exports/{export['id']}")
    api.get(done["result"]["url"])
    api.get(f"/v1/exports/{export['id']}?token=bad")
    api.get("/v1/exports/exp_missing")
    emu.requests_are_valid = False  # type: ignore[attr-defined]
    api.post("/v1/orders/export", json={"parameters": {"fields": ["nope"]}})
    api.post("/v1/orders/import", json=[{"amount": "1"}])
    emu.requests_are_valid = True  # type: ignore[attr-defined]
    api.request("DELETE", f"/v1/exports/{failing['id']}")

    statuses = {key.rsplit(" ", 1)[1] for key in seen}
    assert {"200", "204", "400", "401", "404"} <= statuses, seen
    assert seen["get-export 200"] >= 6  # SCHEDULED -> IN_PROGRESS -> DONE / ERROR
