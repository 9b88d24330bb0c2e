"""Voucherify's 429s and our own RATE_LIMIT, through the push engine and the push task.

The wait Voucherify asks for (``Retry-After`` or ``X-Rate-Limit-Retry``) is written on
the row, used as the task's countdown, and shared with every other worker through the
cache; RATE_LIMIT is obeyed by the real SharedRateLimiter (its clock and sleep are fake,
so nothing here waits).
"""

from __future__ import annotations

import functools
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import override_settings
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.client import retry
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import due_for_push, engine, publisher, push_many
from django_voucherify_orders.sync.limiter import SharedRateLimiter
from django_voucherify_orders.tasks import push_orders

from .conftest import remote

WAIT = 30  # seconds Voucherify asks for: far above RETRY_BACKOFF_MAX (5 ms in tests)


def _settings(**changes) -> dict:
    from django.conf import settings

    return {**settings.VOUCHERIFY_ORDERS, **changes}


def keys(orders) -> list[str]:
    return [str(order.pk) for order in orders]


def writes(emulator) -> int:
    return emulator.count(method="POST", path_prefix="/v1/orders") + emulator.count(
        method="PUT", path_prefix="/v1/orders"
    )


class FakeClock:
    """The limiter's clock and sleep: a sleep moves the clock and is recorded."""

    def __init__(self) -> None:
        self.now = time.time()
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def backlog(shop):
    """Committed orders whose pushes have not run yet (queued on a worker, say)."""
    with paused_sync():
        return [shop.order(status="paid") for _ in range(3)]


@pytest.fixture
def broker(monkeypatch):
    """A broker that records what the push task re-enqueues: (order keys, countdown).
    Not eager: the task must hand its retries to the broker, not sleep through them."""
    sent: list[tuple[list[str], float]] = []
    monkeypatch.setattr(
        publisher, "_send_task", lambda task, batch, delay, queue: sent.append((batch, delay))
    )
    conf = push_orders.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    try:
        yield sent
    finally:
        conf.task_always_eager = eager


def answer_429(emulator, monkeypatch, *, headers: set[str]) -> None:
    """The next call gets a 429 asking for WAIT seconds, with only ``headers`` of
    Retry-After / X-Rate-Limit-Retry / X-Rate-Limit-Remaining."""
    emulator.faults.retry_after = WAIT
    emulator.faults.script([429])
    answer = emulator._fault_response
    optional = {"Retry-After", "X-Rate-Limit-Retry", "X-Rate-Limit-Remaining"}

    def with_only_those_headers(fault, request_id):
        response = answer(fault, request_id)
        for name in optional - headers:
            response.headers.pop(name, None)
        return response

    monkeypatch.setattr(emulator, "_fault_response", with_only_those_headers)


HEADER_SETS = {
    "retry-after": {"Retry-After"},
    "x-rate-limit-retry": {"X-Rate-Limit-Retry", "X-Rate-Limit-Remaining"},
    "x-rate-limit-retry-without-remaining": {"X-Rate-Limit-Retry"},
    "both": {"Retry-After", "X-Rate-Limit-Retry", "X-Rate-Limit-Remaining"},
}


# The wait is written on the row and used as the task's countdown -----------------------


@pytest.mark.parametrize("headers", list(HEADER_SETS.values()), ids=list(HEADER_SETS))
def test_a_429_retries_no_sooner_than_voucherify_asked(
    backlog, emulator, broker, monkeypatch, headers
):
    order = backlog[0]
    answer_429(emulator, monkeypatch, headers=headers)
    started = timezone.now()

    outcomes = push_orders.run([str(order.pk)])

    assert outcomes == {str(order.pk): "retry"}
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.PENDING and row.attempts == 1
    assert row.last_error_status == 429
    # X-Rate-Limit-Retry is a whole epoch second: it may say up to a second more or less.
    assert started + timedelta(seconds=WAIT - 1) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=WAIT + 2)
    [(batch, countdown)] = broker
    assert batch == [str(order.pk)]
    assert WAIT - 1 <= countdown <= WAIT + 2
    # The sweep leaves it alone until then, too.
    due = due_for_push(row.next_attempt_at - timedelta(seconds=1), grace=0)
    assert not due.filter(pk=row.pk).exists()
    assert due_for_push(row.next_attempt_at, grace=0).filter(pk=row.pk).exists()


@pytest.mark.parametrize("headers", list(HEADER_SETS.values()), ids=list(HEADER_SETS))
def test_a_429_pauses_every_other_worker_until_voucherify_says(
    backlog, emulator, broker, monkeypatch, headers
):
    first, second, third = keys(backlog)
    answer_429(emulator, monkeypatch, headers=headers)
    assert push_orders.run([first]) == {first: "retry"}  # worker one meets the 429
    calls = emulator.count()

    # Worker two, with its own limiter object, shares the pause through the cache.
    outcomes = push_orders.run([second, third])

    assert outcomes == {second: "throttled", third: "throttled"}
    assert emulator.count() == calls  # it did not spend a call to learn the same thing
    for key in (second, third):
        row = OrderSync.objects.get(pk=key)
        assert row.state == SyncState.PENDING and row.attempts == 0  # not a failure
        assert row.lease_token == ""  # free for whoever pushes it next
    (batch, countdown) = broker[-1]
    assert batch == [second, third]
    assert WAIT - 2 <= countdown <= WAIT + 2


def test_a_batch_stops_at_a_429_and_requeues_the_rest_after_the_wait(
    backlog, emulator, broker, monkeypatch
):
    first, second, third = keys(backlog)
    answer_429(emulator, monkeypatch, headers=HEADER_SETS["both"])

    outcomes = push_orders.run([first, second, third])

    assert outcomes == {first: "retry", second: "throttled", third: "throttled"}
    assert emulator.count() == 1
    queued = {key: countdown for batch, countdown in broker for key in batch}
    assert set(queued) == {first, second, third}
    assert all(WAIT - 2 <= countdown <= WAIT + 2 for countdown in queued.values()), queued


# The backoff of other transient failures -------------------------------------------------


def test_transient_failures_back_off_exponentially_up_to_the_cap(
    backlog, emulator, broker, monkeypatch
):
    """Each failure writes next_attempt_at = now + backoff, and the task re-enqueues with
    that backoff as its countdown. (The jitter's draw is pinned to its upper end.)"""
    monkeypatch.setattr(retry, "random", SimpleNamespace(uniform=lambda low, high: high))
    order = backlog[0]
    key = str(order.pk)
    emulator.faults.script([500, 503, 500])
    knobs = {"RETRY_BACKOFF_BASE": 10, "RETRY_BACKOFF_MAX": 25, "MAX_ATTEMPTS": 8}

    with override_settings(VOUCHERIFY_ORDERS=_settings(**knobs)):
        for attempt, backoff in enumerate([10, 20, 25], start=1):
            started = timezone.now()
            assert push_orders.run([key]) == {key: "retry"}
            row = OrderSync.objects.get(pk=key)
            assert row.attempts == attempt
            assert started + timedelta(seconds=backoff) <= row.next_attempt_at
            assert row.next_attempt_at <= timezone.now() + timedelta(seconds=backoff)
            assert broker[-1] == ([key], pytest.approx(backoff))

        assert push_orders.run([key]) == {key: "pushed"}

    row = OrderSync.objects.get(pk=key)
    assert row.state == SyncState.SYNCED and row.attempts == 0 and row.next_attempt_at is None
    assert len(broker) == 3  # nothing re-enqueued after the success
    assert remote(emulator, order)["status"] == "PAID"


def test_the_last_allowed_attempt_fails_the_order_and_queues_nothing(backlog, emulator, broker):
    key = str(backlog[0].pk)
    emulator.faults.script([500, 500])

    with override_settings(VOUCHERIFY_ORDERS=_settings(MAX_ATTEMPTS=2)):
        assert push_orders.run([key]) == {key: "retry"}
        assert push_orders.run([key]) == {key: "failed"}

    row = OrderSync.objects.get(pk=key)
    assert row.state == SyncState.FAILED and row.attempts == 2
    assert len(broker) == 1


# RATE_LIMIT, with the real limiter ---------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The engine's limiter, real, on a fake clock (the emulator stamps requests with it)."""
    fake = FakeClock()
    monkeypatch.setattr(
        engine,
        "SharedRateLimiter",
        functools.partial(SharedRateLimiter, clock=fake, sleep=fake.sleep),
    )
    return fake


def test_rate_limit_is_never_exceeded_in_any_window(shop, emulator, clock):
    emulator.clock = clock  # requests are stamped with the limiter's time
    with paused_sync():
        orders = [shop.order(status="paid") for _ in range(12)]

    with override_settings(VOUCHERIFY_ORDERS=_settings(RATE_LIMIT="4/s")):
        results = push_many(keys(orders))

    assert {result.outcome for result in results.values()} == {"pushed"}
    sent = [at for record, at in emulator.request_log() if record.method in ("POST", "PUT")]
    assert len(sent) == 12
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= 4, sent
    assert sum(clock.waits) >= 2.0  # 12 calls at 4/s: the batch waited for its slots


def test_a_long_wait_for_a_slot_reschedules_instead_of_sleeping(shop, emulator, broker, clock):
    with paused_sync():
        orders = [shop.order(status="paid") for _ in range(4)]

    with override_settings(VOUCHERIFY_ORDERS=_settings(RATE_LIMIT="2/m")):
        outcomes = push_orders.run(keys(orders))

    assert list(outcomes.values()) == ["pushed", "pushed", "throttled", "throttled"]
    assert writes(emulator) == 2
    assert sum(clock.waits) <= engine.MAX_THROTTLE_WAIT  # a worker is not held for a minute
    [(batch, countdown)] = broker
    assert batch == keys(orders)[2:]
    assert countdown > 0
    assert all(OrderSync.objects.get(pk=k).state == SyncState.PENDING for k in batch)
