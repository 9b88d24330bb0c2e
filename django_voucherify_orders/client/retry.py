"""Capped exponential backoff with full jitter, and which failures are worth retrying.

Full jitter (a uniform draw between 0 and the capped exponential) spreads the
retries of many workers that failed at the same moment, so they do not come back
together and fail again (see the AWS Architecture Blog, "Exponential Backoff And
Jitter"). When Voucherify says how long to wait (``Retry-After`` or
``X-Rate-Limit-Retry``), we wait at least that long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from .errors import RateLimited, VoucherifyError, VoucherifyServerError, VoucherifyTransportError

__all__ = ["Idempotency", "RetryPolicy", "is_retryable"]


class Idempotency(Enum):
    """Whether sending a request twice is harmless; it decides what may be retried."""

    #: GET; PUT (sets fields to given values); POST /v1/orders with an id or source_id (upsert).
    IDEMPOTENT = "idempotent"
    #: POST /v1/orders/import, POST /v1/orders/export, POST /v1/orders without an upsert key:
    #: a repeat would import twice, start a second export or create a second order.
    NOT_IDEMPOTENT = "not_idempotent"


def is_retryable(error: VoucherifyError, idempotency: Idempotency) -> bool:
    """Transient failures are retried; for non-idempotent calls only when surely not processed."""
    if isinstance(error, RateLimited):
        return True  # a 429 is refused before any processing
    if isinstance(error, VoucherifyTransportError):
        return idempotency is Idempotency.IDEMPOTENT or not error.sent
    if isinstance(error, VoucherifyServerError):
        # A 5xx may come after the work was done (a proxy timing out, say).
        return idempotency is Idempotency.IDEMPOTENT
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries one call before giving up and raising.

    The client's own retries smooth over blips within one call. Longer outages are
    the caller's business: the sync engine reschedules a failed push for later
    instead of holding a worker asleep.
    """

    max_retries: int = 2
    backoff_base: float = 0.5  # seconds; the first retry waits up to this long
    backoff_max: float = 8.0  # cap of the exponential part
    max_wait: float = 30.0  # a server-requested wait longer than this is not slept through

    def backoff(self, retry_number: int, *, server_wait: float | None = None) -> float:
        """Seconds to sleep before retry ``retry_number`` (1-based)."""
        return full_jitter_backoff(
            retry_number, self.backoff_base, self.backoff_max, server_wait=server_wait
        )


def full_jitter_backoff(
    retry_number: int, base: float, cap: float, *, server_wait: float | None = None
) -> float:
    """``uniform(0, min(cap, base * 2**(n-1)))``, never less than what the server asked for."""
    ceiling = min(cap, base * (2 ** max(0, retry_number - 1)))
    delay = random.uniform(0, ceiling)
    if server_wait is not None:
        # Jitter on top of the server's time, so waiting workers don't all return at once.
        delay = server_wait + random.uniform(0, min(base, ceiling))
    return delay
