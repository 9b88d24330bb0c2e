"""Voucherify's pause and the shared gate, as the workers sharing one cache see them: a
pause lasts as long as Voucherify asked, a shorter one seen later does not cut it, and a
call with no slot is refused however short the wait (issue 11)."""

from __future__ import annotations

import time
import types

import pytest
from django.core.cache import cache
from django.core.cache.backends import base, locmem

from django_voucherify_orders.client import RateLimitBusy
from django_voucherify_orders.conf import RateLimit
from django_voucherify_orders.sync.limiter import SharedRateLimiter, SlotGate


class Clock:
    """The limiter's clock and the cache's (its expiry), one fake time for both."""

    def __init__(self) -> None:
        self.now = float(time.time() // 60 + 1) * 60  # a bucket boundary

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    fake_time = types.SimpleNamespace(time=fake)
    monkeypatch.setattr(base, "time", fake_time)
    monkeypatch.setattr(locmem, "time", fake_time)
    cache.clear()
    yield fake
    cache.clear()


def worker(clock: Clock, limit: str | None = None) -> SharedRateLimiter:
    return SharedRateLimiter(RateLimit.parse(limit) if limit else None, clock=clock)


def test_a_pause_lasts_as_long_as_voucherify_asked(clock):
    worker(clock).pause_until(clock.now + 60)  # a 429: retry in 60 s

    clock.now += 59.5

    assert worker(clock).try_acquire() == pytest.approx(0.5)
    clock.now += 0.5
    assert worker(clock).try_acquire() == 0.0


def test_a_shorter_pause_seen_later_does_not_cut_a_longer_one(clock):
    worker(clock).pause_until(clock.now + 60)
    worker(clock).pause_until(clock.now + 10)  # another worker's answer, a moment later

    clock.now += 30

    assert worker(clock).try_acquire() == pytest.approx(30)


def test_a_call_with_no_slot_is_refused_even_when_the_slot_is_a_moment_away(clock):
    worker(clock, "1/m").try_acquire()  # the minute's one call
    clock.now += 59.5  # its bucket leaves the window in half a second
    gate = SlotGate(worker(clock, "1/m"), max_wait=0)

    with pytest.raises(RateLimitBusy) as refused:
        gate("GET", "/v1/orders")

    assert str(refused.value).startswith("GET /v1/orders: not sent")
    assert 0 < refused.value.retry_in <= 1
