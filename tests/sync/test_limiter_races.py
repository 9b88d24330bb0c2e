"""The shared limiter when workers' clock readings and cache writes interleave.

A worker reads its clock, then talks to the cache; meanwhile another worker, whose
reading is a little later (it fell in the next bucket), may take a slot. Whichever of the
two counts last must see the other's call, or together they exceed the limit.
"""

from __future__ import annotations

from django.core.cache import cache

from django_voucherify_orders.conf import RateLimit
from django_voucherify_orders.sync.limiter import BUCKETS, SharedRateLimiter

LIMIT = RateLimit(5, 1.0)
WIDTH = LIMIT.period / BUCKETS
START = 1_700_000_000.0 // WIDTH * WIDTH + WIDTH / 2  # the middle of a bucket


def limiter_reading(times: list[float]) -> SharedRateLimiter:
    """A worker whose clock readings are ``times``, one per call, in order."""
    readings = iter(times)
    return SharedRateLimiter(LIMIT, cache=cache, clock=lambda: next(readings), sleep=None)


def test_a_call_counted_late_sees_a_call_in_the_next_bucket():
    behind = limiter_reading([START] * 5)  # its readings lag its cache writes
    ahead = limiter_reading([START + WIDTH])  # reads the clock in the next bucket
    for _ in range(4):
        assert behind.try_acquire() == 0

    assert ahead.try_acquire() == 0  # the fifth slot: taken
    assert behind.try_acquire() > 0  # read its clock before that, counts after it: refused


def test_a_call_counted_early_is_seen_by_the_next_bucket():
    behind = limiter_reading([START] * 5)
    ahead = limiter_reading([START + WIDTH])
    for _ in range(5):
        assert behind.try_acquire() == 0

    assert ahead.try_acquire() > 0
