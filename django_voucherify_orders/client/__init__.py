"""HTTP client for Voucherify's Orders API. Knows nothing of Django models."""

from .client import DEFAULT_API_URL, MAX_IMPORT_ORDERS, ApiCall, Gate, VoucherifyClient
from .errors import (
    AuthenticationError,
    NotFound,
    PayloadError,
    RateLimitBusy,
    RateLimited,
    ValidationError,
    VoucherifyAPIError,
    VoucherifyClientError,
    VoucherifyConfigurationError,
    VoucherifyError,
    VoucherifyResponseError,
    VoucherifyServerError,
    VoucherifyTransportError,
)
from .ratelimit import RateLimitInfo
from .retry import Idempotency, RetryPolicy

__all__ = [
    "DEFAULT_API_URL",
    "MAX_IMPORT_ORDERS",
    "ApiCall",
    "AuthenticationError",
    "Gate",
    "Idempotency",
    "NotFound",
    "PayloadError",
    "RateLimitBusy",
    "RateLimitInfo",
    "RateLimited",
    "RetryPolicy",
    "ValidationError",
    "VoucherifyAPIError",
    "VoucherifyClient",
    "VoucherifyClientError",
    "VoucherifyConfigurationError",
    "VoucherifyError",
    "VoucherifyResponseError",
    "VoucherifyServerError",
    "VoucherifyTransportError",
]
