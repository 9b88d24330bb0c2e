"""The shared rate limiter never lets more than the limit through in any window."""

from __future__ import annotations

import random

from django.core.cache import cache

from django_voucherify_orders.conf import RateLimit
from django_voucherify_orders.sync.limiter import SharedRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_sliding_window_ever_holds_more_than_the_limit():
    clock = Clock()
    workers = [
        SharedRateLimiter(RateLimit(20, 60.0), cache=cache, clock=clock, sleep=clock.sleep)
        for _ in range(3)
    ]  # three workers, one shared cache
    admitted: list[float] = []
    rng = random.Random(3)
    while clock.now < 1_700_000_000 + 600:
        clock.now += rng.expovariate(2.0)  # calls arrive at ~2/s, far above 20/min
        if rng.choice(workers).try_acquire() == 0:
            admitted.append(clock.now)

    worst = max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)
    assert worst <= 20
    assert len(admitted) >= 9 * 20  # and the limit is used, not starved


def test_a_refused_call_is_told_how_long_to_wait():
    clock = Clock()
    limiter = SharedRateLimiter(RateLimit(2, 1.0), cache=cache, clock=clock, sleep=clock.sleep)
    assert limiter.try_acquire() == 0
    assert limiter.try_acquire() == 0
    wait = limiter.try_acquire()
    assert 0 < wait <= 1.0 / 60 + 0.01

    assert limiter.acquire(max_wait=5) == 0  # sleeps (on the fake clock) until a slot frees
    assert clock.now > 1_700_000_000


def test_voucherifys_quota_signal_pauses_every_worker():
    clock = Clock()
    one = SharedRateLimiter(None, cache=cache, clock=clock, sleep=clock.sleep)
    two = SharedRateLimiter(None, cache=cache, clock=clock, sleep=clock.sleep)
    one.pause_until(clock.now + 30)

    assert 29 < two.try_acquire() <= 30
    assert two.acquire(max_wait=5) > 25  # too long to wait here: the task is rescheduled
    clock.now += 31
    assert two.try_acquire() == 0
