"""The log of a push's HTTP attempts, and the rate-limit headers shown on the health page."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.utils import timezone

from ..client import ApiCall, RateLimitInfo, VoucherifyClient
from ..models import OrderSync, SyncAttempt

__all__ = ["LAST_RATE_LIMIT_KEY", "attempt_log", "remember_rate_limit", "save_attempts"]

logger = logging.getLogger("django_voucherify_orders.sync")

# The rate-limit headers of the last answer seen (shown on the admin's health page).
LAST_RATE_LIMIT_KEY = "voucherify_orders:last_rate_limit"
LAST_RATE_LIMIT_TTL = 24 * 3600


@contextmanager
def attempt_log(
    client: VoucherifyClient,
    row: OrderSync,
    attempts: list[SyncAttempt],
) -> Iterator[None]:
    """Add a SyncAttempt to ``attempts`` for every HTTP attempt. (Voucherify's quota
    signal is shared by the limiter's observer, which every client has.)"""

    def record(call: ApiCall) -> None:
        attempts.append(
            SyncAttempt(
                sync_id=row.pk,
                started_at=timezone.now() - timedelta(seconds=call.duration),
                duration_ms=int(call.duration * 1000),
                method=call.method,
                path=call.path[:512],
                status_code=call.status_code,
                request_id=call.request_id or "",
                response_body=call.response_excerpt,
                error=call.error or "",
            )
        )

    client.observers.append(record)
    try:
        yield
    finally:
        client.observers.remove(record)


def save_attempts(attempts: list[SyncAttempt]) -> None:
    try:
        with transaction.atomic():  # a savepoint: a failure here spoils no caller's transaction
            SyncAttempt.objects.bulk_create(attempts)
    except DatabaseError as exc:  # e.g. an OrderSync row deleted meanwhile in the admin
        logger.warning("could not record %d push attempts: %s", len(attempts), exc)


def remember_rate_limit(info: RateLimitInfo) -> None:
    """Keep the rate-limit headers of the last answer in the cache (admin health page)."""
    if info.limit is None and info.remaining is None:
        return
    with contextlib.suppress(Exception):  # a cache outage must not fail a push
        cache.set(
            LAST_RATE_LIMIT_KEY,
            {
                "limit": info.limit,
                "remaining": info.remaining,
                "retry_at": info.retry_at,
                "limit_type": info.limit_type,
                "seen_at": info.received_at or time.time(),
            },
            timeout=LAST_RATE_LIMIT_TTL,
        )
