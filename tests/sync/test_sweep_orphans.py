"""The sweep finds recent orders that have no outbox row at all (issue 10).

In autocommit Django commits a new order's INSERT before post_save runs: a process that
dies in between leaves an order that no row, no push and no sweep of pending rows sees.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import sweep
from django_voucherify_orders.sync.sweep import mark_orphans

from .conftest import remote


class ProcessKilled(BaseException):
    """The worker process dies (SIGKILL, OOM) between the commit and post_save."""


@pytest.fixture(params=["anti-join", "compared in Python"])
def lookup(request):
    """Integer and text keys are found by one SQL anti-join; others (a UUID in SQLite,
    whose text in SQL is not str(pk)) are compared in Python."""
    if request.param == "anti-join":
        yield
        return
    with mock.patch("django_voucherify_orders.sync.sweep._CAST_IS_STR", frozenset()):
        yield


def after_grace(moment):
    return moment + timedelta(seconds=get_settings().sweep_after + 1)


def test_an_order_created_in_autocommit_by_a_process_that_died_is_swept(shop, emulator, lookup):
    from shop.models import Order

    dies = mock.patch("django_voucherify_orders.sync.marks.mark_changed", side_effect=ProcessKilled)
    with dies, pytest.raises(ProcessKilled):
        Order.objects.create(customer=shop.customer, number="SO-DIED", status="paid")
    order = Order.objects.get(number="SO-DIED")  # committed: autocommit
    assert not OrderSync.objects.filter(pk=str(order.pk)).exists()

    assert sweep(now=order.created_at + timedelta(seconds=1)) == 0  # its post_save may run
    assert sweep(now=after_grace(order.created_at)) == 1

    assert remote(emulator, order)["status"] == "PAID"
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED


def test_the_sweep_marks_only_orphans_within_the_window(shop, emulator, lookup):
    from shop.models import Order

    now = timezone.now()
    synced = shop.order(status="paid", created_at=now - timedelta(hours=1))
    version = OrderSync.objects.get(pk=str(synced.pk)).version
    orphans = Order.objects.bulk_create(  # bulk_create sends no signals
        [
            Order(customer=shop.customer, number="SO-FRESH", created_at=now - timedelta(seconds=5)),
            Order(customer=shop.customer, number="SO-HOUR", created_at=now - timedelta(hours=1)),
            Order(customer=shop.customer, number="SO-OLD", created_at=now - timedelta(days=2)),
        ]
    )
    fresh, hour, old = (Order.objects.get(number=order.number) for order in orphans)

    assert sweep(now=now) == 1

    assert remote(emulator, hour)["metadata"]["number"] == "SO-HOUR"
    assert remote(emulator, fresh) is None  # younger than SWEEP_AFTER: its post_save may run
    assert remote(emulator, old) is None  # older than SWEEP_ORPHANS_WITHIN: left alone
    assert OrderSync.objects.get(pk=str(synced.pk)).version == version
    assert sweep(now=now) == 0  # the orphan has a row now


def test_looking_for_orphans_is_one_query(shop, emulator):
    shop.order(status="paid")
    now = after_grace(timezone.now())

    with CaptureQueriesContext(connection) as captured:
        assert mark_orphans(now) == []

    assert len(captured) == 1


def test_sweep_orphans_within_0_does_not_look(shop, emulator):
    from shop.models import Order

    Order.objects.bulk_create([Order(customer=shop.customer, number="SO-BULK")])
    config = {**settings.VOUCHERIFY_ORDERS, "SWEEP_ORPHANS_WITHIN": 0}

    with override_settings(VOUCHERIFY_ORDERS=config):
        assert sweep(now=after_grace(timezone.now())) == 0

    assert not OrderSync.objects.exists()
