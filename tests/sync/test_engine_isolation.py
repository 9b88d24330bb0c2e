"""One order's push that raises fails that order, with the error on its row; the rest
of its batch is pushed (invariant 5: "any exception while pushing one order fails that
one order, never the worker or the rest of the batch")."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.db import OperationalError, transaction
from shop.voucherify import ShopOrderMapper

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.signals import after_push, before_push, push_failed
from django_voucherify_orders.sync import push_many

from .conftest import remote


@pytest.fixture
def backlog(shop):
    """Ten committed orders whose pushes have not run yet."""
    with paused_sync():
        return [shop.order(status="paid", items=[("mug", n + 1)]) for n in range(10)]


def keys(orders) -> list[str]:
    return [str(order.pk) for order in orders]


@pytest.fixture
def receiver():
    """Connect a signal receiver for the test only."""
    connected = []

    def connect(signal, function):
        signal.connect(function, weak=False)
        connected.append((signal, function))

    yield connect
    for signal, function in connected:
        signal.disconnect(function)


def assert_the_others_are_pushed(backlog, emulator, results, bad) -> None:
    others = [order for order in backlog if order.pk != bad.pk]
    assert [results[str(order.pk)].outcome for order in others] == ["pushed"] * 9
    assert all(remote(emulator, order) for order in others)
    assert set(OrderSync.objects.filter(pk__in=keys(others)).values_list("state", flat=True)) == {
        SyncState.SYNCED
    }
    assert not OrderSync.objects.exclude(lease_token="").exists()  # no lease left behind


def test_a_before_push_receiver_that_raises_fails_its_order_and_the_batch_goes_on(
    backlog, emulator, receiver
):
    third = backlog[2]

    def explode(sender, order, **kwargs):
        if order.pk == third.pk:
            raise RuntimeError("a bug in a before_push receiver")

    receiver(before_push, explode)
    results = push_many(keys(backlog))

    assert results[str(third.pk)].outcome == "failed"
    assert remote(emulator, third) is None
    row = OrderSync.objects.get(pk=str(third.pk))
    assert row.state == SyncState.FAILED and row.attempts == 1
    assert row.last_error_key == "RuntimeError"
    assert row.last_error_message == f"order {third.pk}: a bug in a before_push receiver"
    assert_the_others_are_pushed(backlog, emulator, results, third)
    assert SyncAttempt.objects.count() == 9


def test_a_source_id_that_raises_fails_its_order_naming_the_field(backlog, emulator):
    fourth = backlog[3]
    real = ShopOrderMapper.source_id

    def source_id(self, order):
        if order.pk == fourth.pk:
            raise KeyError("region")
        return real(self, order)

    with mock.patch.object(ShopOrderMapper, "source_id", source_id):
        results = push_many(keys(backlog))

    assert results[str(fourth.pk)].outcome == "failed"
    row = OrderSync.objects.get(pk=str(fourth.pk))
    assert row.state == SyncState.FAILED
    assert row.last_error_key == "invalid_local_data"
    assert f"order {fourth.pk}" in row.last_error_message
    assert "source_id: KeyError: 'region'" in row.last_error_message
    assert_the_others_are_pushed(backlog, emulator, results, fourth)


def test_a_source_id_another_row_holds_fails_that_order_only(backlog, emulator):
    """Even inside a transaction: the duplicate must not abort it (PostgreSQL)."""
    sixth = backlog[5]
    OrderSync.objects.filter(pk=str(sixth.pk)).update(source_id=None)
    OrderSync.objects.create(order_pk="gone-42", source_id=str(sixth.pk), state=SyncState.DELETED)

    with transaction.atomic():  # e.g. a management command that wraps its work
        results = push_many(keys(backlog))

    assert results[str(sixth.pk)].outcome == "failed"
    assert remote(emulator, sixth) is None
    row = OrderSync.objects.get(pk=str(sixth.pk))
    assert row.state == SyncState.FAILED and row.source_id is None
    assert row.last_error_key == "duplicate_source_id"
    assert f"order {sixth.pk}" in row.last_error_message
    assert "already used by order gone-42" in row.last_error_message
    assert_the_others_are_pushed(backlog, emulator, results, sixth)


def test_an_after_push_receiver_that_raises_leaves_the_landed_write_synced(
    backlog, emulator, receiver, caplog
):
    first = backlog[0]

    def explode(sender, order, **kwargs):
        if order.pk == first.pk:
            raise RuntimeError("a bug in an after_push receiver")

    receiver(after_push, explode)
    with caplog.at_level(logging.ERROR, logger="django_voucherify_orders.sync"):
        results = push_many(keys(backlog))

    # Voucherify accepted the write: the row says synced, with the hash of what it holds,
    # so the next identical payload costs no call.
    assert results[str(first.pk)].outcome == "pushed"
    row = OrderSync.objects.get(pk=str(first.pk))
    assert row.state == SyncState.SYNCED and row.payload_hash
    assert remote(emulator, first)["status"] == "PAID"
    assert "an after_push receiver raised for order" in caplog.text
    assert "a bug in an after_push receiver" in caplog.text
    assert_the_others_are_pushed(backlog, emulator, results, backlog[-1])
    calls = emulator.count()
    OrderSync.objects.filter(pk=str(first.pk)).update(state=SyncState.PENDING)
    assert push_many([str(first.pk)])[str(first.pk)].outcome == "unchanged"
    assert emulator.count() == calls


def test_a_push_failed_receiver_that_raises_does_not_stop_the_batch(backlog, emulator, receiver):
    backlog[7].status = "lost-in-transit"  # bad local data: push_failed is sent
    with paused_sync():
        backlog[7].save()

    def explode(sender, **kwargs):
        raise RuntimeError("a bug in a push_failed receiver")

    receiver(push_failed, explode)
    results = push_many(keys(backlog))

    assert results[str(backlog[7].pk)].outcome == "failed"
    row = OrderSync.objects.get(pk=str(backlog[7].pk))
    assert row.state == SyncState.FAILED and row.last_error_key == "invalid_local_data"
    assert_the_others_are_pushed(backlog, emulator, results, backlog[7])


class RedisDown(Exception):
    """What redis-py raises when the cache server is gone (a RedisError, not an OSError)."""

    __module__ = "redis.exceptions"


@pytest.mark.parametrize(
    "outage",
    [
        OperationalError("server closed the connection unexpectedly"),
        RedisDown("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["database", "cache", "socket"],
)
def test_an_outage_of_the_shops_own_services_retries_the_order_not_fails_it(
    backlog, emulator, receiver, outage
):
    """A database or cache that fails for a moment is nobody's order's fault: the order is
    retried like after a 5xx (the chaos run's Redis restart had failed one for good)."""
    fifth = backlog[4]

    def outage_meanwhile(sender, order, **kwargs):
        if order.pk == fifth.pk:
            raise outage

    receiver(before_push, outage_meanwhile)
    results = push_many(keys(backlog))

    assert results[str(fifth.pk)].outcome == "retry"
    row = OrderSync.objects.get(pk=str(fifth.pk))
    assert (row.state, row.attempts, row.lease_token) == (SyncState.PENDING, 1, "")
    assert row.last_error_key == type(outage).__name__
    assert row.next_attempt_at is not None
    assert_the_others_are_pushed(backlog, emulator, results, fifth)

    before_push.disconnect(outage_meanwhile)  # the service is back: the retry delivers it
    assert push_many([str(fifth.pk)])[str(fifth.pk)].outcome == "pushed"
    assert remote(emulator, fifth)["status"] == "PAID"


def test_a_cache_outage_lets_a_rate_limited_push_through(shop, emulator, settings):
    """The shared limiter lives in the cache; without it, Voucherify's own 429s still
    protect the quota, so the push goes rather than failing or waiting for the cache."""
    from django_voucherify_orders.sync import limiter

    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "RATE_LIMIT": "5/s"}
    with paused_sync():
        order = shop.order(status="paid")

    class DownCache:
        def __getattr__(self, name):
            def down(*args, **kwargs):
                raise RedisDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

            return down

    with mock.patch.object(limiter, "default_cache", DownCache()):
        assert push_many([str(order.pk)])[str(order.pk)].outcome == "pushed"

    assert remote(emulator, order)["status"] == "PAID"


def test_a_5xx_for_one_order_of_a_batch_leaves_the_others_untouched(backlog, emulator):
    """The retry is written to that order's row only: the orders after it in the batch
    are pushed and settled as usual (not held, not counted as failing)."""
    emulator.faults.script([503])  # the batch's first call
    results = push_many(keys(backlog))

    first = backlog[0]
    assert results[str(first.pk)].outcome == "retry"
    assert_the_others_are_pushed(backlog, emulator, results, first)
    others = OrderSync.objects.exclude(pk=str(first.pk))
    assert set(others.values_list("attempts", "last_error_key")) == {(0, "")}


def test_push_failed_tells_receivers_the_row_the_order_the_error_and_whether_final(
    backlog, emulator, receiver
):
    heard = []

    def listen(sender, sync, order, error, final, **kwargs):
        heard.append((sender, sync.pk, order.pk, getattr(error, "status_code", None), final))

    receiver(push_failed, listen)
    first, second = backlog[0], backlog[1]
    emulator.faults.script([503, 400])
    push_many([str(first.pk)])
    push_many([str(second.pk)])

    assert heard == [
        (OrderSync, str(first.pk), first.pk, 503, False),  # retried
        (OrderSync, str(second.pk), second.pk, 400, True),  # refused: failed for good
    ]
