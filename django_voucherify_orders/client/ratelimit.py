"""Voucherify's rate-limit headers, parsed.

Every API response carries ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining`` and
``X-Rate-Limit-Retry`` (Unix epoch seconds when the next request may be made);
a 429 adds ``Retry-After`` (seconds) and ``X-Rate-Limit-Type``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RateLimitInfo"]


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    limit: int | None = None
    remaining: int | None = None
    retry_at: float | None = None  # Unix epoch seconds (X-Rate-Limit-Retry)
    retry_after: float | None = None  # seconds, as received (Retry-After)
    limit_type: str | None = None  # api_calls, bulk_api_calls, api_calls_cycle ...
    received_at: float = 0.0

    @classmethod
    def from_headers(
        cls, headers: Mapping[str, str], now: Callable[[], float] = time.time
    ) -> RateLimitInfo:
        return cls(
            limit=_int(headers.get("X-Rate-Limit-Limit")),
            remaining=_int(headers.get("X-Rate-Limit-Remaining")),
            retry_at=_float(headers.get("X-Rate-Limit-Retry")),
            retry_after=_retry_after(headers.get("Retry-After"), now),
            limit_type=headers.get("X-Rate-Limit-Type") or None,
            received_at=now(),
        )

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def seconds_until_retry(self, now: Callable[[], float] = time.time) -> float | None:
        """How long to wait before the next call, from ``Retry-After`` or ``X-Rate-Limit-Retry``.

        ``Retry-After`` wins when both are present: it is relative, so it does not
        depend on our clock agreeing with Voucherify's.
        """
        if self.retry_after is not None:
            return max(0.0, self.retry_after - (now() - self.received_at))
        if self.retry_at is not None:
            return max(0.0, self.retry_at - now())
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, now: Callable[[], float]) -> float | None:
    """``Retry-After`` is seconds, or (per HTTP) a date; accept both."""
    if value is None:
        return None
    seconds = _float(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None
