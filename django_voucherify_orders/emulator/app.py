"""The Emulator: one entry point, `handle()`, that both doors (responses, HTTP) call.

Order of work for an API request, outermost first: latency, injected fault, auth, rate
limit, route. Control paths under /_emulator/ skip all of that.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import api, control
from .errors import ApiError, status_error, unauthorized
from .faults import DroppedConnection, Fault, Faults
from .ratelimit import RateLimiter, Window
from .response import EmulatorResponse, RequestRecord
from .state import State
from .util import Clock, dumps, new_request_id

if TYPE_CHECKING:
    import responses

    from .http_door import EmulatorServer

JSON = api.JSON
IMPORT_POLICIES = ("fail", "upsert")


class Emulator:
    """A faithful in-memory Voucherify: Orders, Exports and Async Actions."""

    def __init__(
        self,
        app_id: str = "emulator-app-id",
        secret_key: str = "emulator-secret-key",  # noqa: S107 - a local emulator's default
        *,
        base_url: str = "https://api.voucherify.io",
        download_url: str | None = None,
        rate_limit_per_minute: int | None = 2000,
        async_steps: int = 2,
        import_existing: str = "fail",
        clock: Clock = time.time,
    ) -> None:
        if import_existing not in IMPORT_POLICIES:
            raise ValueError(f"import_existing must be one of {IMPORT_POLICIES}")
        if async_steps < 0:
            raise ValueError("async_steps must be >= 0")
        self.app_id = app_id
        self.secret_key = secret_key
        self.base_url = base_url.rstrip("/")
        self.download_url = (download_url or base_url).rstrip("/")
        self.url: str | None = None  # set by serve(): where the HTTP door listens
        self.clock = clock
        self.faults = Faults()
        self._limiter = RateLimiter(rate_limit_per_minute, clock)
        self._state = State(
            self.faults, clock, async_steps, lambda: self.download_url, import_existing
        )
        self._requests: list[RequestRecord] = []
        self._received: list[float] = []  # when each of those requests arrived (clock time)
        self._requests_lock = threading.Lock()

    @property
    def rate_limit_per_minute(self) -> int | None:
        return self._limiter.limit

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, limit: int | None) -> None:
        self._limiter.limit = limit

    # -- the one entry point --------------------------------------------------------------

    def handle(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None = b""
    ) -> EmulatorResponse:
        """Serve one request. Raises DroppedConnection when a fault drops the connection."""
        method = method.upper()
        parts = urlsplit(url)
        path = parts.path or "/"
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = body or b""
        if control.is_control(path):
            return control.handle(self, method, path, body, parts.query)

        received = self.clock()
        latency = self.faults.latency
        if latency > 0:
            time.sleep(latency)  # outside every lock, so other requests proceed meanwhile
        fault = self.faults.draw()
        if fault == "drop":
            self._record(method, path, 0, received)
            raise DroppedConnection(f"{method} {path}: connection dropped by an injected fault")
        request_id = new_request_id()
        if fault == "drop-after":
            query = parse_qs(parts.query, keep_blank_values=True)
            served = self._serve_api(method, path, query, headers, body, request_id)
            self._record(method, path, served.status, received)
            raise DroppedConnection(f"{method} {path}: answer dropped by an injected fault")
        if fault is not None:
            response = self._fault_response(fault, request_id)
        else:
            query = parse_qs(parts.query, keep_blank_values=True)
            response = self._serve_api(method, path, query, headers, body, request_id)
        self._record(method, path, response.status, received)
        return response

    def _serve_api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
    ) -> EmulatorResponse:
        authorized = self._authorized(headers)
        # Unauthenticated calls can't be charged to a project, so they don't use the budget.
        window = self._limiter.hit(consume=authorized)
        try:
            if not authorized:
                raise unauthorized()
            if not window.allowed:
                raise self._rate_limited(window)
            reply = api.dispatch(self._state, method, path, query, body, request_id)
        except ApiError as exc:
            return _response(
                exc.code, dumps(exc.body(request_id)), JSON, window.headers() | exc.headers
            )
        return _response(reply.status, reply.body, reply.content_type, window.headers())

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        app_id = lowered.get("x-app-id", "").encode("utf-8")
        token = lowered.get("x-app-token", "").encode("utf-8")
        # Both compared in full (no early exit), in constant time.
        same_id = secrets.compare_digest(app_id, self.app_id.encode("utf-8"))
        same_token = secrets.compare_digest(token, self.secret_key.encode("utf-8"))
        return same_id and same_token

    def _rate_limited(self, window: Window) -> ApiError:
        # The server-side 429 body is undocumented; this one follows the documented
        # client-side message and adds what a person needs to know.
        return ApiError(
            429,
            "too_many_requests",
            "Too many requests hit the API too quickly.",
            f"Rate limit of {window.limit} requests per minute exceeded",
            headers={"Retry-After": str(window.retry_after), "X-Rate-Limit-Type": "api_calls"},
        )

    def _fault_response(self, fault: Fault, request_id: str) -> EmulatorResponse:
        assert isinstance(fault, int)  # drops raise before a response is made
        error = status_error(fault, "Injected fault")
        headers = self._limiter.hit(consume=False).headers()
        if fault == 429:
            retry_after = self.faults.retry_after
            headers.update(
                {
                    "Retry-After": str(retry_after),
                    "X-Rate-Limit-Type": "api_calls",
                    "X-Rate-Limit-Remaining": "0",
                    # A whole second (as Voucherify sends it), never in the future when
                    # the test asked for no wait at all.
                    "X-Rate-Limit-Retry": str(
                        math.ceil(self.clock() + retry_after)
                        if retry_after
                        else math.floor(self.clock())
                    ),
                }
            )
        return _response(fault, dumps(error.body(request_id)), JSON, headers)

    def _record(self, method: str, path: str, status: int, received: float) -> None:
        with self._requests_lock:
            self._requests.append(RequestRecord(method, path, status))
            self._received.append(received)

    # -- inspection and control for tests -------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """(method, path, status) of every API request seen, in order; a copy."""
        with self._requests_lock:
            return list(self._requests)

    def request_log(self) -> list[tuple[RequestRecord, float]]:
        """Every API request seen, with the clock time it arrived at (benches, rate checks)."""
        with self._requests_lock:
            return list(zip(self._requests, self._received, strict=True))

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    def orders(self) -> list[dict[str, Any]]:
        """Stored orders as the API returns them, oldest first; a deep copy."""
        return self._state.orders_snapshot()

    def get_order(self, id_or_source_id: str | int) -> dict[str, Any] | None:
        # Keys are text on the wire; an int (an order number before a reload) means the same.
        view = self._state.get_order(str(id_or_source_id))
        return None if view is None else copy.deepcopy(view)

    # What the project holds before the test starts: orders may name these by Voucherify id
    # (an unknown customer id is a 404; an unknown product id only leaves the item unpriced).

    def add_customer(self, **fields: Any) -> dict[str, Any]:
        """Store a customer (``id``, ``source_id``, ``name``...); returns it."""
        return self._state.add_customer(fields)

    def add_product(self, **fields: Any) -> dict[str, Any]:
        """Store a product (``id``, ``source_id``, ``name``, ``price``, ``metadata``)."""
        return self._state.add_product(fields)

    def add_sku(self, **fields: Any) -> dict[str, Any]:
        """Store a SKU (``id``, ``source_id``, ``sku``, ``price``, ``product_id``...)."""
        return self._state.add_sku(fields)

    def finish_async(self) -> None:
        """Run every queued import and export to its end now."""
        self._state.finish_async()

    def reset(self) -> None:
        """Forget all orders, customers, imports, exports, faults, requests and rate counts."""
        self._state.reset()
        self.faults.clear()
        self._limiter.reset()
        with self._requests_lock:
            self._requests.clear()
            self._received.clear()

    # -- doors ----------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock) -> None:
        from .responses_door import install

        install(self, rsps)

    @contextmanager
    def mock(self) -> Iterator[responses.RequestsMock]:
        from .responses_door import mock

        with mock(self) as rsps:
            yield rsps

    def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> EmulatorServer:
        """Start the HTTP door in a background thread.

        Sets `url`, `base_url` and `download_url` to the server's address, so export
        download links point at it.
        """
        from .http_door import serve

        return serve(self, host, port, verbose=verbose)


def _response(
    status: int, body: bytes, content_type: str, headers: dict[str, str]
) -> EmulatorResponse:
    all_headers = {"Content-Type": content_type, **headers} if body else dict(headers)
    return EmulatorResponse(status, all_headers, body)
