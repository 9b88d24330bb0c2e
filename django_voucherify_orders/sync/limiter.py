"""A rate limiter shared by every worker through Django's cache (Redis in production).

``RATE_LIMIT = "100/m"`` means at most 100 calls in *any* 60-second window, not just
in each calendar minute. Calls are counted in 60 buckets of a sixtieth of the period;
a call is admitted when the buckets covering the last period, plus a margin of at least
a quarter of a second (network jitter moves a call's arrival by that much), hold at most
the limit. The same margin is counted ahead of the call's own bucket: a worker that read
its clock just before another may write its count just after it. The count is
incremented before it is read, so two workers racing for the last slot can both be
refused, never both admitted.

Voucherify's own headers take precedence: when ``X-Rate-Limit-Remaining`` reaches 0,
every worker pauses until ``X-Rate-Limit-Retry``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache as default_cache

from ..conf import RateLimit

__all__ = ["SharedRateLimiter"]

logger = logging.getLogger("django_voucherify_orders.sync")

BUCKETS = 60
MARGIN = 0.25  # seconds of look-back beyond the period
PREFIX = "voucherify_orders:rate"


class SharedRateLimiter:
    def __init__(
        self,
        limit: RateLimit | None,
        *,
        cache: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.cache = cache if cache is not None else default_cache
        self.clock = clock
        self.sleep = sleep

    def try_acquire(self) -> float:
        """0 when this call may go now (and it is counted), else seconds to wait first.

        Without a cache there is nothing to share: the call goes (Voucherify's own 429s
        still guard the quota) rather than a push failing or waiting for the cache."""
        try:
            return self._try_acquire()
        except Exception as exc:
            logger.warning("rate limiter: the cache is unavailable (%s); not limiting", exc)
            return 0.0

    def _try_acquire(self) -> float:
        now = self.clock()
        paused_until = self.cache.get(f"{PREFIX}:pause")
        if paused_until is not None and paused_until > now:
            return paused_until - now
        if self.limit is None:
            return 0.0
        width = self.limit.period / BUCKETS
        index = int(now // width)
        key = f"{PREFIX}:{self.limit.count}/{self.limit.period:g}:{index}"
        self.cache.add(key, 0, timeout=int(self.limit.period * 2 + 1))
        try:
            self.cache.incr(key)
        except ValueError:  # expired between add and incr
            self.cache.set(key, 1, timeout=int(self.limit.period * 2 + 1))
        prefix = key.rsplit(":", 1)[0]
        margin = max(1, math.ceil(MARGIN / width))
        # The margin ahead too: another worker's clock reading may be a little later than
        # ours (its call in the next bucket) while its count reached the cache first.
        window = [f"{prefix}:{i}" for i in range(index - BUCKETS - margin + 1, index + margin + 1)]
        if sum(self.cache.get_many(window).values()) <= self.limit.count:
            return 0.0
        self.cache.decr(key)
        return (index + 1) * width - now + 0.001  # the oldest bucket leaves the window then

    def acquire(self, max_wait: float) -> float:
        """Wait (up to ``max_wait`` seconds in all) for a slot; returns the wait still needed."""
        deadline = self.clock() + max_wait
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return 0.0
            if self.clock() + wait > deadline:
                return wait
            self.sleep(wait)

    def pause_until(self, epoch_seconds: float) -> None:
        """Make every worker wait until ``epoch_seconds`` (Voucherify said the quota is used up)."""
        timeout = max(1, int(epoch_seconds - self.clock()) + 1)
        try:
            current = self.cache.get(f"{PREFIX}:pause")
            if current is None or current < epoch_seconds:
                self.cache.set(f"{PREFIX}:pause", epoch_seconds, timeout=timeout)
        except Exception as exc:  # a cache outage must not fail the push that saw the 429
            logger.warning("rate limiter: could not share Voucherify's pause (%s)", exc)
