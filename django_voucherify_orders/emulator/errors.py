"""Voucherify-shaped error responses (API-NOTES section 2)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    """Raised anywhere below the router; the app turns it into an `Error` JSON body."""

    def __init__(
        self,
        code: int,
        key: str,
        message: str,
        details: str | None = None,
        *,
        resource_id: str | None = None,
        resource_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {key}: {details or message}")
        self.code = code
        self.key = key
        self.message = message
        self.details = details
        self.resource_id = resource_id
        self.resource_type = resource_type
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "key": self.key, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        if request_id is not None:
            body["request_id"] = request_id
        if self.resource_id is not None:
            body["resource_id"] = self.resource_id
        if self.resource_type is not None:
            body["resource_type"] = self.resource_type
        return body


def invalid_payload(details: str) -> ApiError:
    return ApiError(400, "invalid_payload", "Invalid payload", details)


def invalid_query(details: str) -> ApiError:
    return ApiError(400, "invalid_query_params", "Invalid query params", details)


def not_found(resource_type: str, resource_id: str) -> ApiError:
    # Exactly the documented 404 shape, e.g. "Cannot find order with id ord_...".
    return ApiError(
        404,
        "not_found",
        "Resource not found",
        f"Cannot find {resource_type} with id {resource_id}",
        resource_id=resource_id,
        resource_type=resource_type,
    )


def unauthorized() -> ApiError:
    # The documented 401 body has no details: {"code":401,"message":"Unauthorized","key":...}.
    return ApiError(401, "unauthorized", "Unauthorized")


def status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:  # a status Python doesn't name
        return ""


def status_error(code: int, details: str) -> ApiError:
    """A generic error for a status code (used by injected faults)."""
    keys = {500: "internal_error", 503: "service_unavailable", 429: "too_many_requests"}
    phrase = status_phrase(code) or "Error"
    key = keys.get(code, phrase.lower().replace(" ", "_").replace("-", "_"))
    message = "Too many requests hit the API too quickly." if code == 429 else phrase
    return ApiError(code, key, message, details)
