"""No stale overwrite, for writes that outlive their lease or whose outcome is unknown.

Nothing stops a slow write at Voucherify: it lands when it lands. So the engine must
notice: a push that lost its lease (or timed out) leaves the order to be pushed again,
as it is then, once the old write can no longer land, and never records a hash that
does not say what Voucherify holds. Time is the test's (``clock``), the late landing is
the emulator's request held back and let through at a chosen moment.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.signals import before_push
from django_voucherify_orders.sync import push_many, sweep

from .conftest import remote


def is_order_write(method: str, url: str) -> bool:
    return method.upper() in ("POST", "PUT") and "/v1/orders" in url


class Voucherify:
    """The emulator's door, with the next order write held back (``hold_next_write``):
    ``on_arrival`` runs when it reaches Voucherify, and it lands when that returns, or
    only when the test calls ``land()`` (``timeout=True``: the client gives up first)."""

    def __init__(self, emulator, monkeypatch) -> None:
        self.emulator = emulator
        self._handle = emulator.handle
        self._hold: dict | None = None
        self._held: tuple | None = None
        monkeypatch.setattr(emulator, "handle", self._door)

    def hold_next_write(self, on_arrival=lambda: None, *, timeout: bool = False) -> None:
        self._hold = {"on_arrival": on_arrival, "timeout": timeout}

    def land(self) -> None:
        assert self._held is not None
        self._handle(*self._held)
        self._held = None

    def _door(self, method, url, headers, body=b""):
        hold, self._hold = self._hold, None
        if hold is None or not is_order_write(method, url):
            self._hold = hold
            return self._handle(method, url, headers, body)
        hold["on_arrival"]()
        if hold["timeout"]:
            self._held = (method, url, headers, body)
            raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)")
        return self._handle(method, url, headers, body)

    def status(self, order) -> str:
        return remote(self.emulator, order)["status"]

    def writes(self) -> int:
        return self.emulator.count(method="PUT") + self.emulator.count(method="POST")


@pytest.fixture
def voucherify(emulator, monkeypatch):
    return Voucherify(emulator, monkeypatch)


def change(order, status: str) -> None:
    """A committed change whose push has not run (it waits in a queue, say)."""
    order.status = status
    with paused_sync():
        order.save()


def lease_runs_out(order) -> None:
    """Worker 1's lease expires while its write is on the way."""
    OrderSync.objects.filter(pk=str(order.pk)).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )


def row(order) -> OrderSync:
    return OrderSync.objects.get(pk=str(order.pk))


def goes_quiet(clock) -> None:
    """Time passes and the sweep runs until nothing is left to push."""
    for _ in range(5):
        clock.advance(3600)
        if not sweep(now=clock.now()):
            return
    raise AssertionError("the sweep never went quiet")


def test_a_write_that_outlives_its_lease_and_lands_late_is_overwritten(shop, voucherify, clock):
    order = shop.order(status="new")  # synced: Voucherify holds it CREATED
    change(order, "paid")

    def worker_2_pushes_the_newer_version():
        lease_runs_out(order)
        change(order, "shipped")
        assert push_many([str(order.pk)])[str(order.pk)].outcome == "pushed"
        assert voucherify.status(order) == "FULFILLED"
        assert row(order).state == SyncState.SYNCED

    # Worker 1 sends "paid"; it reaches Voucherify only after worker 2's "shipped".
    voucherify.hold_next_write(worker_2_pushes_the_newer_version)
    push_many([str(order.pk)])

    assert voucherify.status(order) == "PAID"  # the late write landed
    late = row(order)
    assert late.state == SyncState.PENDING and late.payload_hash == ""
    assert late.next_attempt_at > timezone.now()  # once the late write can no longer land

    goes_quiet(clock)
    assert voucherify.status(order) == "FULFILLED"
    assert row(order).state == SyncState.SYNCED and row(order).payload_hash


def test_a_late_write_that_settles_while_the_newer_push_is_in_flight(shop, voucherify, clock):
    """Worker 2's write lands first, worker 1's after it, and worker 1 settles before
    worker 2 does: worker 2 must not settle synced with a hash Voucherify does not hold."""
    order = shop.order(status="new")
    change(order, "paid")
    worker_2_in_flight, worker_1_settled = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def worker_2():
        try:
            outcome["worker 2"] = push_many([str(order.pk)])[str(order.pk)].outcome
        finally:
            connection.close()

    real_handle = voucherify._handle

    def worker_2_waits_for_its_answer(method, url, headers, body=b""):
        answer = real_handle(method, url, headers, body)
        if threading.current_thread() is not threading.main_thread():
            worker_2_in_flight.set()  # worker 2's write landed; its answer is slow to come
            assert worker_1_settled.wait(10)
        return answer

    voucherify._handle = worker_2_waits_for_its_answer
    second = threading.Thread(target=worker_2)

    def worker_2_starts():
        lease_runs_out(order)
        change(order, "shipped")
        second.start()
        assert worker_2_in_flight.wait(10)
        assert voucherify.status(order) == "FULFILLED"

    voucherify.hold_next_write(worker_2_starts)
    outcome["worker 1"] = push_many([str(order.pk)])[str(order.pk)].outcome
    worker_1_settled.set()
    second.join(10)

    assert not second.is_alive()
    assert voucherify.status(order) == "PAID"  # worker 1's write landed last
    assert row(order).state == SyncState.PENDING and row(order).payload_hash == ""

    goes_quiet(clock)
    assert voucherify.status(order) == "FULFILLED"
    assert row(order).state == SyncState.SYNCED


def test_a_timed_out_write_that_lands_later_is_overwritten(shop, voucherify, clock):
    order = shop.order(status="new")

    voucherify.hold_next_write(timeout=True)
    order.status = "paid"
    order.save()  # pushed after commit: the client gives up, the write is still on its way

    waiting = row(order)
    assert waiting.state == SyncState.PENDING and waiting.attempts == 1
    assert waiting.payload_hash == ""  # Voucherify may hold PAID or NEW: nobody knows
    assert waiting.last_error_key == "VoucherifyTransportError"
    writes = voucherify.writes()

    order.status = "shipped"
    order.save()  # nobody pushes it while the old write may still land
    assert voucherify.writes() == writes
    assert voucherify.status(order) == "CREATED"

    voucherify.land()  # the timed-out "paid" lands at last
    assert voucherify.status(order) == "PAID"

    goes_quiet(clock)
    assert voucherify.status(order) == "FULFILLED"
    assert row(order).state == SyncState.SYNCED and row(order).attempts == 0


def test_an_order_changed_back_after_a_timed_out_write_is_sent_again(shop, voucherify, clock):
    """Its payload equals the last one Voucherify accepted, but the timed-out write may
    have landed since: the hash no longer vouches for what Voucherify holds."""
    order = shop.order(status="new")

    voucherify.hold_next_write(timeout=True)
    order.status = "paid"
    order.save()
    voucherify.land()
    order.status = "new"  # the shop takes the change back, and gives a discount
    order.discount = Decimal("1.00")
    order.save()

    goes_quiet(clock)
    assert voucherify.status(order) == "CREATED"  # not only the discount: all of it
    assert remote(voucherify.emulator, order)["discount_amount"] == 100
    assert row(order).state == SyncState.SYNCED


def test_a_push_in_flight_does_not_undo_a_local_delete(shop, voucherify):
    order = shop.order(status="new", items=())  # no items: only the order's delete marks it
    change(order, "paid")

    def the_shop_deletes_it(sender, order, **kwargs):
        before_push.disconnect(the_shop_deletes_it)
        type(order).objects.filter(pk=order.pk).delete()

    before_push.connect(the_shop_deletes_it, weak=False)
    try:
        push_many([str(order.pk)])
    finally:
        before_push.disconnect(the_shop_deletes_it)

    assert row(order).state == SyncState.DELETED


def test_a_timed_out_last_try_still_holds_the_order_until_its_write_can_land(
    shop, voucherify, clock, settings
):
    """The run's last try times out: the order fails, but its write is still on its way;
    a change made meanwhile must not be sent before it, or the old write overwrites it."""
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "MAX_ATTEMPTS": 1}
    order = shop.order(status="new")
    voucherify.hold_next_write(timeout=True)
    order.status = "paid"
    order.save()  # its only try times out: failed, the write still on its way
    assert row(order).state == SyncState.FAILED
    order.status = "shipped"
    order.save()  # a new change while the old write may still land
    voucherify.land()  # the timed-out "paid" lands after it
    goes_quiet(clock)

    assert voucherify.status(order) == "FULFILLED"
    assert row(order).state == SyncState.SYNCED


def test_a_retry_arriving_just_before_the_late_write_hold_ends_comes_back_then(
    shop, emulator, clock
):
    """The retry queued for the end of the hold may reach a worker a moment early (a
    broker's ETA is not exact): it must come back when the hold ends, not be dropped as
    "busy" and left to the sweep a minute later."""
    from django_voucherify_orders import tasks

    with paused_sync():
        order = shop.order(status="paid")
    hold_ends = timezone.now() + timedelta(seconds=13)
    OrderSync.objects.filter(pk=str(order.pk)).update(
        state=SyncState.PENDING, lease_until=hold_ends, lease_token="late-abc",
        next_attempt_at=hold_ends,
    )  # fmt: skip
    clock.advance(12.9)  # 0.1 s early

    result = push_many([str(order.pk)])[str(order.pk)]

    assert result.outcome == "retry"
    assert 0.1 <= result.retry_in <= 0.5
    assert remote(emulator, order) is None  # nothing sent while the old write may land
    queued = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.sync, "enqueue_pushes", lambda keys, countdown: queued.append(
            (keys, countdown)))  # fmt: skip
        patch.setitem(tasks.push_orders.app.conf, "task_always_eager", False)
        tasks.push_orders([str(order.pk)])
    assert queued and queued[0][0] == [str(order.pk)] and 0.1 <= queued[0][1] <= 0.5
