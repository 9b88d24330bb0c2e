"""The `responses` door: the emulator answers requests made with `requests` in-process.

`responses` and `requests` are imported here only, so the emulator core needs neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests

try:
    import responses
except ModuleNotFoundError as exc:  # the app's own dependencies do not include it
    raise ModuleNotFoundError(
        "The Voucherify emulator's responses door (and the voucherify_emulator fixture) "
        "needs the responses library: pip install 'django-voucherify-orders[testing]'",
        name=exc.name,
    ) from exc

from .faults import DroppedConnection

if TYPE_CHECKING:
    from .app import Emulator

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_LOCAL_PREFIXES = ("http://127.0.0.1", "http://localhost")


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):  # a file-like body
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else data
    return b"".join(c.encode("utf-8") if isinstance(c, str) else c for c in body)  # iterable


def _callback(emu: Emulator) -> Any:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        try:
            reply = emu.handle(
                request.method or "GET",
                request.url or "/",
                dict(request.headers),
                _body_bytes(request.body),
            )
        except DroppedConnection as exc:
            # What requests raises when a server closes the connection without answering.
            raise requests.exceptions.ConnectionError(str(exc), request=request) from exc
        return reply.status, reply.headers, reply.body

    return callback


def install(emu: Emulator, rsps: responses.RequestsMock) -> None:
    """Register the emulator for every method on base_url and download_url."""
    callback = _callback(emu)
    for host in dict.fromkeys((emu.base_url, emu.download_url)):
        pattern = re.compile(re.escape(host) + r"(?:[/?#].*)?\Z")
        for method in METHODS:
            # content_type=None: the emulator sets Content-Type itself, per response.
            rsps.add_callback(method, pattern, callback=callback, content_type=None)


@contextmanager
def mock(emu: Emulator) -> Iterator[responses.RequestsMock]:
    """A fresh RequestsMock with the emulator installed; local servers pass through."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install(emu, rsps)
        for prefix in _LOCAL_PREFIXES:
            if not emu.base_url.startswith(prefix):
                rsps.add_passthru(prefix)
        yield rsps
