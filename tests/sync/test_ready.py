"""The mapper's ready(order): an order not ready is held back without an HTTP call, and
pushed by the change that makes it ready (docs/mapping.md, "Holding an order back")."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from shop.voucherify import ShopOrderMapper

from django_voucherify_orders.models import OrderSync, SyncState

from .conftest import remote


class DraftsWaitMapper(ShopOrderMapper):
    """A shop that redeems vouchers with an order once it is paid: push it from then on."""

    def ready(self, order):
        return order.status != "new"


@pytest.fixture
def drafts_wait():
    mapper = f"{__name__}.DraftsWaitMapper"
    with override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "MAPPER": mapper}):
        yield


def test_an_order_not_ready_is_skipped_without_a_call(drafts_wait, shop, emulator):
    order = shop.order(status="new")

    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.SKIPPED
    assert row.pushed_version == row.version  # settled: the sweep leaves it alone
    assert emulator.requests == []
    assert remote(emulator, order) is None


def test_the_change_that_makes_it_ready_pushes_it(drafts_wait, shop, emulator):
    order = shop.order(status="new")
    shop.item(order, "tea", 1)  # still not ready: still no call
    assert emulator.requests == []

    order.status = "paid"
    order.save()

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    held = remote(emulator, order)
    assert held["status"] == "PAID" and len(held["items"]) == 2
    assert [r.method for r in emulator.requests] == ["POST"]  # its first data is complete


def test_once_voucherify_holds_an_order_every_change_is_pushed(drafts_wait, shop, emulator):
    order = shop.order(status="paid")
    assert remote(emulator, order)["status"] == "PAID"

    order.status = "new"  # not "ready" any more, but Voucherify has it: keep it current
    order.save()

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    assert remote(emulator, order)["status"] == "CREATED"


def test_orders_are_ready_by_default(shop, emulator):
    order = shop.order(status="new")

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    assert remote(emulator, order)["status"] == "CREATED"
