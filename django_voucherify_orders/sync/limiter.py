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

Every HTTP request the app makes takes a slot: ``conf.get_client()`` gives each client a
:class:`SlotGate` (passed before every attempt, retries and redirect hops included) and
the limiter's :meth:`~SharedRateLimiter.observe` (which shares Voucherify's pause). An
import, an export or the admin cannot push live sync into 429s behind its back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache as default_cache

from ..client import ApiCall, RateLimitBusy, VoucherifyClient
from ..conf import RateLimit

__all__ = ["MAX_WORKER_WAIT", "SharedRateLimiter", "SlotGate", "first_attempt_paid"]

logger = logging.getLogger("django_voucherify_orders.sync")

BUCKETS = 60
MARGIN = 0.25  # seconds of look-back beyond the period
PREFIX = "voucherify_orders:rate"
# The longest a Celery worker waits for a slot; a longer wait reschedules the task.
MAX_WORKER_WAIT = 5.0


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
        if self._counted(self.limit, index) <= self.limit.count:
            return 0.0
        self.cache.decr(key)
        return (index + 1) * width - now + 0.001  # the oldest bucket leaves the window then

    def used(self) -> int:
        """The calls counted in the window that ends now (0 without RATE_LIMIT)."""
        if self.limit is None:
            return 0
        return self._counted(self.limit, int(self.clock() // (self.limit.period / BUCKETS)))

    def _counted(self, limit: RateLimit, index: int) -> int:
        width = limit.period / BUCKETS
        prefix = f"{PREFIX}:{limit.count}/{limit.period:g}"
        margin = max(1, math.ceil(MARGIN / width))
        # The margin ahead too: another worker's clock reading may be a little later than
        # ours (its call in the next bucket) while its count reached the cache first.
        window = [f"{prefix}:{i}" for i in range(index - BUCKETS - margin + 1, index + margin + 1)]
        return sum(self.cache.get_many(window).values())

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

    def observe(self, call: ApiCall) -> None:
        """A client observer: when Voucherify says the quota is used up (the remaining
        count at 0, or a 429 with a wait), every worker pauses as long."""
        info = call.rate_limit
        if info.exhausted and info.retry_at:
            self.pause_until(info.retry_at)
        elif call.status_code == 429 and (wait := info.seconds_until_retry()):
            self.pause_until(self.clock() + wait)

    def pause_until(self, epoch_seconds: float) -> None:
        """Make every worker wait until ``epoch_seconds`` (Voucherify said the quota is used up)."""
        timeout = max(1, int(epoch_seconds - self.clock()) + 1)
        try:
            current = self.cache.get(f"{PREFIX}:pause")
            if current is None or current < epoch_seconds:
                self.cache.set(f"{PREFIX}:pause", epoch_seconds, timeout=timeout)
        except Exception as exc:  # a cache outage must not fail the push that saw the 429
            logger.warning("rate limiter: could not share Voucherify's pause (%s)", exc)


class SlotGate:
    """A client's gate (see ``VoucherifyClient``): each HTTP attempt waits for a slot, up
    to ``max_wait`` seconds, or is refused with ``RateLimitBusy`` (nothing sent)."""

    def __init__(self, limiter: SharedRateLimiter, max_wait: float) -> None:
        self.limiter = limiter
        self.max_wait = max_wait

    def __call__(self, method: str, path: str) -> None:
        wait = self.limiter.acquire(self.max_wait)
        if wait > 0:
            raise RateLimitBusy(method, path, retry_in=wait, waited_at_most=self.max_wait)


@contextmanager
def first_attempt_paid(client: VoucherifyClient) -> Iterator[None]:
    """The next attempt of ``client`` passes its gate free: the caller took its slot
    already (the push engine does, to renew its lease after a wait). Later attempts, such
    as the POST after a PUT's 404, take their own."""
    gate = client.gate
    paid = [True]

    def once_paid(method: str, path: str) -> None:
        if paid:
            paid.clear()
        elif gate is not None:
            gate(method, path)

    client.gate = once_paid
    try:
        yield
    finally:
        client.gate = gate
