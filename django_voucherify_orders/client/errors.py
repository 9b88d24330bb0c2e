"""The error tree of the Voucherify client.

``str(error)`` shows the method, the path, the HTTP status and Voucherify's own
``message`` and ``details``. It never shows credentials: request headers are not
part of any message, and download tokens in query strings are masked.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from django.core.exceptions import ImproperlyConfigured

from .ratelimit import RateLimitInfo
from .redaction import redact_url

__all__ = [
    "AuthenticationError",
    "NotFound",
    "PayloadError",
    "RateLimitBusy",
    "RateLimited",
    "ValidationError",
    "VoucherifyAPIError",
    "VoucherifyClientError",
    "VoucherifyConfigurationError",
    "VoucherifyError",
    "VoucherifyResponseError",
    "VoucherifyServerError",
    "VoucherifyTransportError",
    "error_from_response",
]

# Bodies are kept for debugging, but never whole: a 5xx page can be megabytes of HTML.
MAX_BODY_CHARS = 2000


class VoucherifyError(Exception):
    """Base class of every error raised while talking to Voucherify."""


class VoucherifyConfigurationError(ImproperlyConfigured):
    """The ``VOUCHERIFY_ORDERS`` setting is missing or malformed.

    Deliberately not a :class:`VoucherifyError`: code that catches API failures
    and retries them must never swallow a configuration mistake.
    """


class VoucherifyAPIError(VoucherifyError):
    """Voucherify answered with an HTTP error status."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status_code: int,
        code: int | None = None,
        key: str | None = None,
        message: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
        resource_id: str | None = None,
        resource_type: str | None = None,
        body_text: str = "",
        rate_limit: RateLimitInfo | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.method = method
        self.path = redact_url(path)
        self.status_code = status_code
        self.code = code if code is not None else status_code
        self.key = key
        self.message = message
        self.details = details
        self.request_id = request_id
        self.resource_id = resource_id
        self.resource_type = resource_type
        self.body_text = body_text[:MAX_BODY_CHARS]
        self.rate_limit = rate_limit or RateLimitInfo()
        self.response = response
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.method} {self.path} -> HTTP {self.status_code}"
        if self.key:
            text += f" [{self.key}]"
        if self.message:
            text += f": {self.message}"
        if self.details:
            text += f" ({self.details})"
        if not self.message and not self.details and self.body_text:
            text += f": unexpected response body: {self.body_text[:200]!r}"
        if self.request_id:
            text += f" request_id={self.request_id}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The error as stored in sync rows and shown in the admin."""
        return {
            "status_code": self.status_code,
            "key": self.key,
            "message": self.message,
            "details": self.details,
            "request_id": self.request_id,
        }


class VoucherifyClientError(VoucherifyAPIError):
    """A 4xx answer: the request is wrong and sending it again will not help."""


class ValidationError(VoucherifyClientError):
    """400: Voucherify rejected the payload (``invalid_payload``, ``invalid_order`` ...)."""


class AuthenticationError(VoucherifyClientError):
    """401: wrong ``APP_ID`` / ``SECRET_KEY``, or a wrong download token."""


class NotFound(VoucherifyClientError):
    """404: no such order, export or async action."""


class RateLimited(VoucherifyAPIError):
    """429: an API limit was reached. ``retry_after`` is seconds to wait, if known."""

    @property
    def retry_after(self) -> float | None:
        return self.rate_limit.seconds_until_retry()


class RateLimitBusy(VoucherifyError):
    """Nothing was sent: the project's shared ``RATE_LIMIT`` (or a pause Voucherify asked
    for) has no slot for this call within the wait allowed. Try again in ``retry_in`` s."""

    def __init__(self, method: str, path: str, retry_in: float, waited_at_most: float) -> None:
        self.method = method
        self.path = redact_url(path)
        self.retry_in = retry_in
        super().__init__(
            f"{method} {self.path}: not sent, the shared rate limit is busy (no slot within "
            f"{waited_at_most:g}s; RATE_LIMIT or a pause Voucherify asked for); "
            f"try again in {retry_in:.0f}s"
        )


class VoucherifyServerError(VoucherifyAPIError):
    """5xx: Voucherify failed; the same request may succeed later."""


class VoucherifyResponseError(VoucherifyError):
    """A 2xx answer whose body is not what the API documents (not JSON, wrong shape)."""

    def __init__(self, method: str, path: str, problem: str, body_text: str = "") -> None:
        self.method = method
        self.path = redact_url(path)
        self.problem = problem
        self.body_text = body_text[:MAX_BODY_CHARS]
        super().__init__(f"{method} {self.path}: unexpected response from Voucherify: {problem}")


class VoucherifyTransportError(VoucherifyError, requests.RequestException):
    """The request did not get an HTTP answer: a timeout, a refused or dropped connection.

    ``sent`` tells whether the request may have reached Voucherify: a connect
    timeout or refused connection means it did not, so even a non-idempotent
    call can be retried safely.
    """

    def __init__(self, method: str, path: str, cause: BaseException, *, sent: bool) -> None:
        self.method = method
        self.path = redact_url(path)
        self.sent = sent
        self.cause_name = type(cause).__name__
        super().__init__(f"{method} {self.path}: {self.cause_name}: {redact_url(str(cause))}")


class PayloadError(ValueError):
    """A request body failed local validation; nothing was sent.

    ``problems`` lists ``(field path, message)`` pairs such as
    ``("items.0.quantity", "Input should be greater than or equal to 1")``.
    """

    def __init__(self, what: str, problems: list[tuple[str, str]]) -> None:
        self.what = what
        self.problems = problems
        listed = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(f"{what}: {listed}")


_CLIENT_ERRORS: dict[int, type[VoucherifyClientError]] = {
    400: ValidationError,
    401: AuthenticationError,
    404: NotFound,
}


def error_from_response(
    method: str, path: str, response: requests.Response, rate_limit: RateLimitInfo
) -> VoucherifyAPIError:
    """Build the right error from an HTTP error response, whatever its body looks like."""
    status = response.status_code
    text = body_excerpt(response)
    fields = _error_fields(text)
    if status == 429:
        cls: type[VoucherifyAPIError] = RateLimited
    elif status >= 500:
        cls = VoucherifyServerError
    elif status >= 400:
        cls = _CLIENT_ERRORS.get(status, VoucherifyClientError)
    else:  # pragma: no cover - callers only pass error statuses
        cls = VoucherifyAPIError
    if not fields.get("message") and not fields.get("details"):
        fields["message"] = _describe_unparsed_body(response, text)
    return cls(
        method=method,
        path=path,
        status_code=status,
        body_text=text,
        rate_limit=rate_limit,
        response=response,
        **fields,
    )


def body_excerpt(response: requests.Response) -> str:
    """At most MAX_BODY_CHARS of the body; "" when it can't be read."""
    try:
        return response.text[:MAX_BODY_CHARS]
    except Exception:  # a truncated or undecodable body must not hide the real error
        return ""


def _error_fields(text: str) -> dict[str, Any]:
    """Voucherify's error fields, or nothing when the body is not its JSON error object."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    fields: dict[str, Any] = {}
    code = data.get("code")
    # The client-side spec types `code` as a string; accept both.
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        fields["code"] = int(code)
    for name in ("key", "message", "details", "request_id", "resource_id", "resource_type"):
        value = data.get(name)
        if value is not None:
            fields[name] = str(value)
    custom = data.get("error")
    if isinstance(custom, dict) and custom.get("message") and not fields.get("details"):
        fields["details"] = str(custom["message"])
    return fields


def _describe_unparsed_body(response: requests.Response, text: str) -> str:
    content_type = response.headers.get("Content-Type", "no content type")
    if not text:
        return f"empty response body ({content_type})"
    snippet = " ".join(text[:120].split())
    return f"response body is not a Voucherify error object ({content_type}): {snippet!r}"
