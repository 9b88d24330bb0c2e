"""The Voucherify Orders API client: one ``requests.Session``, timeouts, retries, redaction.

This module knows nothing of Django models or settings; ``conf.get_client()``
builds one from ``settings.VOUCHERIFY_ORDERS``.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from urllib3.exceptions import NewConnectionError

from .. import __version__
from .errors import (
    MAX_BODY_CHARS,
    PayloadError,
    VoucherifyAPIError,
    VoucherifyError,
    VoucherifyResponseError,
    VoucherifyTransportError,
    body_excerpt,
    error_from_response,
)
from .ratelimit import RateLimitInfo
from .redaction import MASK, redact_url
from .retry import Idempotency, RetryPolicy, is_retryable
from .schemas import (
    AsyncAction,
    Export,
    ExportParameters,
    ListOrdering,
    Order,
    OrderCreate,
    OrderImport,
    OrdersPage,
    OrderUpdate,
    validation_problems,
)

__all__ = ["DEFAULT_API_URL", "MAX_IMPORT_ORDERS", "ApiCall", "Gate", "VoucherifyClient"]

logger = logging.getLogger("django_voucherify_orders.client")
# Whole bodies, when the client is built with log_bodies=True: a separate logger, so that
# a project can route (or silence) these records apart from the client's own.
body_logger = logging.getLogger("django_voucherify_orders.client.bodies")

DEFAULT_API_URL = "https://api.voucherify.io"
MAX_IMPORT_ORDERS = 2000  # "There is a 2000 limit of orders per one request."
MAX_PAGE = 100  # ParameterPage maximum: list endpoints can't page past 100 x 100 orders
DOWNLOAD_CHUNK = 64 * 1024
MAX_REDIRECTS = 5
AUTH_HEADER_NAMES = ("X-App-Id", "X-App-Token")
# Voucherify's regional API hosts and the download host the documents pair with each [api-ov].
_REGION_API_HOST = re.compile(r"(?:(?P<region>[a-z0-9-]+)\.)?api\.voucherify\.io")

Model = TypeVar("Model", bound=BaseModel)
Job = TypeVar("Job", AsyncAction, Export)


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One HTTP attempt, as reported to observers (the attempt log, metrics, tests)."""

    method: str
    path: str
    status_code: int | None
    duration: float
    request_id: str | None
    rate_limit: RateLimitInfo
    error: str | None
    response_excerpt: str


Observer = Callable[[ApiCall], None]
#: Called with (method, path) before every HTTP attempt, retries and redirect hops
#: included; it may wait, or raise (``RateLimitBusy``) to refuse the attempt.
Gate = Callable[[str, str], None]


class VoucherifyClient:
    """A thread-compatible client for Voucherify's Orders, Exports and Async Actions API.

    Use one client per thread (``requests.Session`` is not documented as
    thread-safe). ``retry`` decides how one call is retried: idempotent calls on
    any transient failure, non-idempotent ones only when the request surely was
    not processed (a 429, or a connection that was never made). ``gate``, when given,
    is passed before every HTTP request (``conf.get_client()`` installs the shared rate
    limiter there), so no request the client makes escapes it.
    """

    def __init__(
        self,
        app_id: str,
        secret_key: str,
        api_url: str = DEFAULT_API_URL,
        *,
        timeout: tuple[float, float] = (3.05, 30.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        observers: Iterable[Observer] = (),
        gate: Gate | None = None,
        log_bodies: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app_id = app_id
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.observers = list(observers)
        self.gate = gate
        self.log_bodies = log_bodies
        self.last_rate_limit = RateLimitInfo()
        self._secret_key = secret_key
        self._sleep = sleep
        self._clock = clock
        self._trusted_origins = _trusted_origins(self.api_url)
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "User-Agent": f"django-voucherify-orders/{__version__} "
                f"python-requests/{requests.__version__}",
                "Accept": "application/json",
            }
        )

    def __repr__(self) -> str:
        return f"VoucherifyClient(app_id={self.app_id!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> VoucherifyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- orders --------------------------------------------------------------------------

    def create_order(self, order: OrderCreate | Mapping[str, Any]) -> Order:
        """POST /v1/orders. With ``id`` or ``source_id`` it upserts and is safe to retry."""
        body = _as_model(OrderCreate, order)
        upsert = body.id is not None or body.source_id is not None
        return self._call(
            "POST",
            "/v1/orders",
            Order,
            json=body.to_json(),
            idempotency=Idempotency.IDEMPOTENT if upsert else Idempotency.NOT_IDEMPOTENT,
        )

    def get_order(self, order_id: str | int) -> Order:
        """GET /v1/orders/{id}; ``order_id`` is Voucherify's id or the shop's source_id."""
        return self._call("GET", f"/v1/orders/{_segment(order_id)}", Order)

    def update_order(self, order_id: str | int, changes: OrderUpdate | Mapping[str, Any]) -> Order:
        """PUT /v1/orders/{id}: sets the given fields, leaves the others as they are."""
        body = _as_model(OrderUpdate, changes)
        return self._call("PUT", f"/v1/orders/{_segment(order_id)}", Order, json=body.to_json())

    def list_orders(
        self, *, limit: int = 10, page: int = 1, order: ListOrdering | None = None
    ) -> OrdersPage:
        """GET /v1/orders: one page (``limit`` 1-100, ``page`` 1-100)."""
        if not 1 <= limit <= 100:
            raise ValueError(f"limit must be between 1 and 100, not {limit}")
        if not 1 <= page <= MAX_PAGE:
            raise ValueError(f"page must be between 1 and {MAX_PAGE}, not {page}")
        if order is not None and order not in ListOrdering.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"order must be one of {ListOrdering.__args__}, not {order!r}")  # type: ignore[attr-defined]
        params: dict[str, Any] = {"limit": limit, "page": page}
        if order:
            params["order"] = order
        return self._call("GET", "/v1/orders", OrdersPage, params=params)

    def iter_orders(
        self, *, page_size: int = 100, order: ListOrdering | None = None
    ) -> Iterator[Order]:
        """Every order, page by page. The API pages only up to 100 pages (10,000 orders at
        ``page_size=100``); use an export for more."""
        for page in range(1, MAX_PAGE + 1):
            result = self.list_orders(limit=page_size, page=page, order=order)
            yield from result.orders
            if len(result.orders) < page_size or page * page_size >= result.total:
                return

    def import_orders(self, orders: Sequence[OrderImport | Mapping[str, Any]]) -> str:
        """POST /v1/orders/import (1 to 2000 historical orders); returns the async action id.

        Every order is validated before anything is sent. Not retried after it may
        have reached Voucherify: a repeat would import the orders twice.
        """
        if not 1 <= len(orders) <= MAX_IMPORT_ORDERS:
            raise ValueError(
                f"import_orders takes 1 to {MAX_IMPORT_ORDERS} orders per request, "
                f"not {len(orders)}"
            )
        bodies = [
            _as_model(OrderImport, order, index=i).to_json() for i, order in enumerate(orders)
        ]
        data = self._call(
            "POST",
            "/v1/orders/import",
            None,
            json=bodies,
            idempotency=Idempotency.NOT_IDEMPOTENT,
        )
        action_id = data.get("async_action_id") if isinstance(data, dict) else None
        if not isinstance(action_id, str):
            raise VoucherifyResponseError(
                "POST", "/v1/orders/import", "no async_action_id in the response", str(data)
            )
        return action_id

    # --- exports and async actions -------------------------------------------------------

    def create_order_export(
        self,
        *,
        fields: Sequence[str] | None = None,
        order: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> Export:
        """POST /v1/orders/export. ``fields`` may hold ``metadata`` and ``metadata.<key>``."""
        parameters = _as_model(
            ExportParameters,
            {
                "fields": list(fields) if fields is not None else None,
                "order": order,
                "filters": dict(filters) if filters is not None else None,
            },
        )
        return self._call(
            "POST",
            "/v1/orders/export",
            Export,
            json={"parameters": parameters.to_json()},
            idempotency=Idempotency.NOT_IDEMPOTENT,
        )

    def get_export(self, export_id: str) -> Export:
        return self._call("GET", f"/v1/exports/{_segment(export_id)}", Export)

    def get_async_action(self, action_id: str) -> AsyncAction:
        return self._call("GET", f"/v1/async-actions/{_segment(action_id)}", AsyncAction)

    def download_export(
        self, export: Export | str, fileobj: IO[bytes], *, chunk_size: int = DOWNLOAD_CHUNK
    ) -> int:
        """Stream a finished export's CSV into ``fileobj`` chunk by chunk; returns bytes written.

        ``export`` is a DONE export or its ``result.url``. Credentials are sent only to
        the configured API host and its region's download host, never to any other host
        a URL (or a redirect) might point at.
        """
        url = export if isinstance(export, str) else _export_url(export)
        headers = self._auth_headers() if self._trusted(url) else {}
        response = self._send("GET", url, headers=headers, stream=True)
        written = 0
        path = redact_url(urlsplit(url).path + "?" + urlsplit(url).query)
        try:
            for chunk in response.iter_content(chunk_size=chunk_size):
                fileobj.write(chunk)
                written += len(chunk)
        except requests.RequestException as exc:
            raise VoucherifyTransportError("GET", path, exc, sent=True) from None
        finally:
            response.close()
        return written

    # --- waiting -------------------------------------------------------------------------

    def wait_for_async_action(
        self,
        action_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
        on_poll: Callable[[AsyncAction], None] | None = None,
    ) -> AsyncAction:
        """Poll until the action is DONE or FAILED; ``TimeoutError`` after ``timeout`` seconds."""
        return self._wait(
            lambda: self.get_async_action(action_id),
            what=f"async action {action_id}",
            timeout=timeout,
            interval=poll_interval,
            max_interval=max_poll_interval,
            on_poll=on_poll,
        )

    def wait_for_export(
        self,
        export_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
        on_poll: Callable[[Export], None] | None = None,
    ) -> Export:
        """Poll until the export is DONE or ERROR; ``TimeoutError`` after ``timeout`` seconds."""
        return self._wait(
            lambda: self.get_export(export_id),
            what=f"export {export_id}",
            timeout=timeout,
            interval=poll_interval,
            max_interval=max_poll_interval,
            on_poll=on_poll,
        )

    def _wait(
        self,
        fetch: Callable[[], Job],
        *,
        what: str,
        timeout: float,
        interval: float,
        max_interval: float,
        on_poll: Callable[[Job], None] | None,
    ) -> Job:
        deadline = self._clock() + timeout
        while True:
            current = fetch()
            if on_poll is not None:
                on_poll(current)
            if current.finished:
                return current
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise TimeoutError(
                    f"{what} still {current.status} after {timeout:g}s; poll it again later"
                )
            self._sleep(min(interval, remaining))
            interval = min(max_interval, interval * 1.5)

    # --- HTTP ----------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        return {"X-App-Id": self.app_id, "X-App-Token": self._secret_key}

    def _trusted(self, url: str) -> bool:
        """Whether ``url`` may receive the credentials: same scheme, host and port as the
        configured API URL, or its region's download host (the documents say to download
        "together with authentication headers")."""
        return _origin(url) in self._trusted_origins

    def _call(
        self,
        method: str,
        path: str,
        model: type[Model] | None,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency: Idempotency = Idempotency.IDEMPOTENT,
    ) -> Any:
        headers = self._auth_headers()
        if json is not None:
            headers["Content-Type"] = "application/json"
        response = self._send(
            method,
            self.api_url + path,
            headers=headers,
            json=json,
            params=params,
            idempotency=idempotency,
        )
        try:
            data = response.json()
        except ValueError:
            raise VoucherifyResponseError(
                method, path, "the body is not JSON", body_excerpt(response)
            ) from None
        if model is None:
            return data
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            problems = "; ".join(f"{field}: {msg}" for field, msg in validation_problems(exc, 5))
            raise VoucherifyResponseError(method, path, problems, body_excerpt(response)) from None

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        idempotency: Idempotency = Idempotency.IDEMPOTENT,
    ) -> requests.Response:
        """One logical call: attempts with backoff until success or a final error."""
        path = redact_url(url.removeprefix(self.api_url))
        retries = 0
        while True:
            try:
                return self._attempt(method, url, path, headers, json, params, stream)
            except VoucherifyError as error:
                if retries >= self.retry.max_retries or not is_retryable(error, idempotency):
                    raise
                server_wait = (
                    error.rate_limit.seconds_until_retry()
                    if isinstance(error, VoucherifyAPIError) and error.status_code == 429
                    else None
                )
                if server_wait is not None and server_wait > self.retry.max_wait:
                    raise  # let the caller reschedule rather than hold this thread asleep
                retries += 1
                delay = self.retry.backoff(retries, server_wait=server_wait)
                logger.warning(
                    "Voucherify %s %s failed (%s); retry %d of %d in %.2fs",
                    method, path, error, retries, self.retry.max_retries, delay,
                )  # fmt: skip
                self._sleep(delay)

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        headers: Mapping[str, str],
        json: Any,
        params: Mapping[str, Any] | None,
        stream: bool,
    ) -> requests.Response:
        self._pass_gate(method, path)
        started = self._clock()
        if self.log_bodies:
            _log_request(method, path, params, json)
        try:
            response = self._request(method, url, path, headers, json, params, stream)
        except requests.RequestException as exc:
            error = VoucherifyTransportError(method, path, exc, sent=_may_have_been_sent(exc))
            self._report(method, path, None, started, RateLimitInfo(), str(error), "")
            raise error from None
        _mask_credentials(response)
        rate_limit = RateLimitInfo.from_headers(response.headers)
        if rate_limit.limit is not None or rate_limit.remaining is not None:
            self.last_rate_limit = rate_limit
        if response.status_code >= 400:
            api_error = error_from_response(method, path, response, rate_limit)
            self._report(
                method, path, response.status_code, started, rate_limit, str(api_error),
                api_error.body_text, request_id=api_error.request_id,
            )  # fmt: skip
            raise api_error
        excerpt = "" if stream else body_excerpt(response)
        self._report(method, path, response.status_code, started, rate_limit, None, excerpt)
        return response

    def _pass_gate(self, method: str, path: str) -> None:
        if self.gate is not None:
            self.gate(method, path)

    def _request(
        self,
        method: str,
        url: str,
        path: str,
        headers: Mapping[str, str],
        json: Any,
        params: Mapping[str, Any] | None,
        stream: bool,
    ) -> requests.Response:
        """One request, following redirects by hand: ``requests`` strips only
        ``Authorization`` when a redirect leaves the host, so it would hand X-App-Id and
        X-App-Token to whatever host a 3xx names. Once a hop leaves Voucherify's hosts
        the credentials are gone for good, even if a later hop comes back."""
        response = self._session.request(
            method, url, headers=headers, json=json, params=params,
            timeout=self.timeout, stream=stream, allow_redirects=False,
        )  # fmt: skip
        for _ in range(MAX_REDIRECTS):
            following = response.next  # the redirect as requests would send it, or None
            if following is None:
                return response
            if not self._trusted(following.url or ""):
                for name in AUTH_HEADER_NAMES:
                    following.headers.pop(name, None)
            response.close()
            self._pass_gate(following.method or method, path)  # each hop is one more request
            response = self._session.send(
                following, timeout=self.timeout, stream=stream, allow_redirects=False
            )
        if response.next is not None:
            response.close()
            raise requests.TooManyRedirects(
                f"more than {MAX_REDIRECTS} redirects", response=response
            )
        return response

    def _report(
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        rate_limit: RateLimitInfo,
        error: str | None,
        excerpt: str,
        *,
        request_id: str | None = None,
    ) -> None:
        call = ApiCall(
            method=method,
            path=path,
            status_code=status,
            duration=self._clock() - started,
            request_id=request_id,
            rate_limit=rate_limit,
            error=error,
            response_excerpt=excerpt[:MAX_BODY_CHARS],
        )
        logger.debug(
            "Voucherify %s %s -> %s in %.0fms", method, path, status or error, call.duration * 1000
        )
        if self.log_bodies and status is not None:
            body_logger.debug(
                "Voucherify %s %s <- %s %s", method, path, status, call.response_excerpt
            )
        for observer in self.observers:
            observer(call)


def _log_request(method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> None:
    """The request as sent, minus headers: the token travels there and nowhere else."""
    if not body_logger.isEnabledFor(logging.DEBUG):
        return
    text = "" if body is None else jsonlib.dumps(body, default=str)
    if len(text) > MAX_BODY_CHARS:
        text = f"{text[:MAX_BODY_CHARS]}... ({len(text)} characters)"
    query = f" params={dict(params)}" if params else ""
    body_logger.debug("Voucherify %s %s ->%s %s", method, path, query, text)


def _as_model(
    model: type[Model], value: Model | Mapping[str, Any], index: int | None = None
) -> Model:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except PydanticValidationError as exc:
        what = f"invalid {model.__name__}"
        if index is not None:
            what += f" #{index}"
        source_id = value.get("source_id") if isinstance(value, Mapping) else None
        if source_id is not None:
            what += f" (source_id {source_id!r})"
        raise PayloadError(what, validation_problems(exc)) from None


def _segment(value: str | int) -> str:
    """Path-escape an id: a source_id may hold '/', '?', '#' or spaces."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a shop's integer primary key used as source_id
    if not isinstance(value, str) or not value:
        raise ValueError(f"an id or source_id (a non-empty string) is required, not {value!r}")
    return quote(value, safe="")


def _export_url(export: Export) -> str:
    if export.status != "DONE" or export.result is None:
        raise ValueError(f"export {export.id} is {export.status}, not DONE: nothing to download")
    return export.result.url


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # a malformed port: matches nothing
        return scheme, "", -1
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


def _trusted_origins(api_url: str) -> frozenset[tuple[str, str, int | None]]:
    api = _origin(api_url)
    origins = {api}
    scheme, host, port = api
    match = _REGION_API_HOST.fullmatch(host)
    if match is not None and scheme == "https":
        region = match.group("region")
        origins.add(
            (
                scheme,
                f"{region}.download.voucherify.io" if region else "download.voucherify.io",
                port,
            )
        )
    return frozenset(origins)


def _may_have_been_sent(exc: requests.RequestException) -> bool:
    """False only when the connection was never made, so the server saw nothing."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, NewConnectionError)
    return True


def _mask_credentials(response: requests.Response) -> None:
    """Errors keep the response; mask the token in its request so it can't leak from there."""
    request = response.request
    if request is not None and "X-App-Token" in request.headers:
        request.headers["X-App-Token"] = MASK
