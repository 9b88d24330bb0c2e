"""How changes reach the outbox: requests, related models, deletes, bulk paths, switches."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings
from shop.models import Order, OrderItem

from django_voucherify_orders import enqueue_sync, paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.signals import CancelPush, after_push, before_push, push_failed
from django_voucherify_orders.sync import prune_attempts

from .conftest import remote


def _settings(**changes) -> dict:
    from django.conf import settings

    return {**settings.VOUCHERIFY_ORDERS, **changes}


@pytest.fixture
def atomic_requests():
    settings_dict = connections.settings["default"]
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = True
    settings_dict["ATOMIC_REQUESTS"] = True
    yield
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = False
    settings_dict["ATOMIC_REQUESTS"] = False


def test_atomic_requests_push_once_after_the_response(shop, emulator, client, atomic_requests):
    order = shop.order(status="new", items=[("mug", 1)])
    before = emulator.count()

    assert client.get(f"/orders/{order.pk}/status/?status=paid").status_code == 200

    assert emulator.count() == before + 1  # two saves, one push
    assert remote(emulator, order)["status"] == "PAID"
    assert remote(emulator, order)["items"][0]["quantity"] == 5  # read at push time


def test_atomic_requests_that_fail_push_nothing(shop, emulator, client, atomic_requests):
    order = shop.order(status="new")
    before = emulator.count()
    client.raise_request_exception = False

    assert client.get(f"/orders/{order.pk}/status/?status=paid&fail=1").status_code == 500

    assert emulator.count() == before
    assert remote(emulator, order)["status"] == "CREATED"


def test_saving_or_deleting_an_item_repushes_its_order(shop, emulator):
    order = shop.order(status="paid", items=[("mug", 1)])
    item = shop.item(order, "tea", 2)
    assert len(remote(emulator, order)["items"]) == 2

    item.delete()

    assert len(remote(emulator, order)["items"]) == 1
    assert remote(emulator, order)["amount"] == 1250


def test_a_deleted_order_is_marked_and_not_pushed(shop, emulator):
    order = shop.order(status="paid")
    key = str(order.pk)
    before = emulator.count()

    order.delete()

    row = OrderSync.objects.get(pk=key)
    assert row.state == SyncState.DELETED
    assert emulator.count() == before  # Voucherify has no DELETE for orders


def test_enqueue_sync_covers_bulk_create_and_queryset_update(shop, emulator):
    orders = Order.objects.bulk_create(
        [Order(customer=shop.customer, number=f"BULK-{n}", status="paid") for n in range(5)]
    )
    OrderItem.objects.bulk_create(
        [
            OrderItem(order=o, product=shop.mug, quantity=1, unit_price=Decimal("12.50"))
            for o in orders
        ]
    )
    assert emulator.count() == 0  # bulk_create sends no signals

    assert enqueue_sync(Order.objects.filter(number__startswith="BULK-")) == 5
    assert all(remote(emulator, o)["status"] == "PAID" for o in orders)

    Order.objects.filter(number__startswith="BULK-").update(status="shipped")
    enqueue_sync(Order.objects.filter(number__startswith="BULK-"))
    assert all(remote(emulator, o)["status"] == "FULFILLED" for o in orders)


@pytest.mark.parametrize("switch", ["setting", "context manager"])
def test_paused_sync_marks_but_does_not_push_until_voucherify_sync(shop, emulator, switch, capsys):
    if switch == "setting":
        with override_settings(VOUCHERIFY_ORDERS=_settings(AUTO_SYNC=False)):
            order = shop.order(status="paid")
    else:
        with paused_sync():
            order = shop.order(status="paid")
    assert emulator.count() == 0
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.PENDING

    call_command("voucherify_sync", "--dry-run")
    assert "Would push 1 pending orders" in capsys.readouterr().out
    assert emulator.count() == 0

    call_command("voucherify_sync", "--inline")
    assert "1 pushed" in capsys.readouterr().out
    assert remote(emulator, order)["status"] == "PAID"


def test_voucherify_sync_retries_failed_orders_after_a_fix(shop, emulator, capsys):
    emulator.faults.script([400])
    order = shop.order(status="paid")
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.FAILED

    call_command("voucherify_sync")
    assert "1 orders have failed; --failed retries them" in capsys.readouterr().out
    call_command("voucherify_sync", "--failed", "--inline")

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    assert remote(emulator, order)["status"] == "PAID"


def test_voucherify_sync_all_resyncs_every_order(shop, emulator, capsys):
    orders = Order.objects.bulk_create(
        [Order(customer=shop.customer, number=f"OLD-{n}", status="paid") for n in range(3)]
    )
    call_command("voucherify_sync", "--all", "--dry-run")
    assert "Would mark 3 orders" in capsys.readouterr().out
    with paused_sync():
        call_command("voucherify_sync", "--all")
    call_command("voucherify_sync", "--inline")
    assert all(remote(emulator, o) is not None for o in orders)


def test_fixtures_loaded_with_loaddata_are_not_changes(shop, emulator, tmp_path):
    fixture = tmp_path / "orders.json"
    fields = {
        "customer": shop.customer.pk, "number": "FIX-1", "status": "paid", "currency": "EUR",
        "discount": "0", "note": "", "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }  # fmt: skip
    fixture.write_text(json.dumps([{"model": "shop.order", "pk": 9001, "fields": fields}]))
    call_command("loaddata", str(fixture), verbosity=0)
    assert not OrderSync.objects.filter(pk="9001").exists()


def test_before_push_can_cancel_and_the_other_signals_fire(shop, emulator):
    seen = []

    def cancel(sender, sync, order, payload, **kwargs):
        if order.note == "internal":
            raise CancelPush

    def pushed(sender, sync, order, remote_order, method, **kwargs):
        seen.append(("pushed", method, remote_order.status))

    def failed(sender, sync, order, error, final, **kwargs):
        seen.append(("failed", getattr(error, "status_code", None), final))

    before_push.connect(cancel)
    after_push.connect(pushed)
    push_failed.connect(failed)
    try:
        internal = shop.order(status="paid", note="internal")
        shop.order(status="paid")
        emulator.faults.script([400])
        shop.order(status="new")
    finally:
        before_push.disconnect(cancel)
        after_push.disconnect(pushed)
        push_failed.disconnect(failed)

    assert OrderSync.objects.get(pk=str(internal.pk)).state == SyncState.SKIPPED
    assert remote(emulator, internal) is None
    assert seen == [("pushed", "POST", "PAID"), ("failed", 400, True)]


def test_old_attempts_are_pruned_in_batches(shop, emulator):
    from datetime import timedelta

    from django.utils import timezone

    shop.order(status="paid")
    row = OrderSync.objects.get()
    old = timezone.now() - timedelta(days=30)
    SyncAttempt.objects.bulk_create(
        [SyncAttempt(sync=row, started_at=old, method="POST", path="/v1/orders") for _ in range(25)]
    )

    assert prune_attempts(batch_size=10) == 25
    assert SyncAttempt.objects.count() == 1  # the recent one stays
