"""Which saves and deletes reach the outbox: moved and detached lines, proxies and
multi-table children, saves in autocommit, and the models the app leaves alone."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models.deletion import Collector
from django.db.models.signals import post_delete, post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from shop.models import Order, OrderItem

from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import marks, paused_sync, sweep
from tests.testapp.models import (
    GiftOrder,
    GiftWrapItem,
    Note,
    OrderItemProxy,
    OrderProxy,
    Widget,
)

from .conftest import remote


def lines(emulator, order) -> list[tuple[str, int]]:
    """The order's lines in Voucherify, as (sku, quantity), sorted."""
    return sorted(
        (item["source_id"], item["quantity"]) for item in remote(emulator, order)["items"]
    )


def after_sweep_grace():
    return timezone.now() + timedelta(seconds=get_settings().sweep_after + 1)


def state(order_pk) -> str:
    return OrderSync.objects.get(pk=str(order_pk)).state


@pytest.fixture
def notes_sync():
    """Notes are a trigger too, and the mapper puts them in the order's metadata."""
    from django.conf import settings

    config = settings.VOUCHERIFY_ORDERS
    with override_settings(
        VOUCHERIFY_ORDERS={
            **config,
            "MAPPER": "tests.testapp.voucherify.NotedOrderMapper",
            "TRIGGERS": {**config["TRIGGERS"], "testapp.Note": "order"},
        }
    ):
        yield


def notes(emulator, order) -> list[str]:
    return remote(emulator, order)["metadata"].get("notes", [])


# A line moved to another order, or detached from it ----------------------------------------


@pytest.mark.parametrize("in_transaction", [True, False], ids=["atomic", "autocommit"])
def test_a_line_moved_to_another_order_leaves_neither_stale(shop, emulator, in_transaction):
    first = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    second = shop.order(status="paid", items=[("mug", 3)])
    tea = OrderItem.objects.get(order=first, product=shop.tea)

    tea.order = second
    with transaction.atomic() if in_transaction else contextlib.nullcontext():
        tea.save()

    assert lines(emulator, first) == [("MUG", 1)]
    assert lines(emulator, second) == [("MUG", 3), ("TEA", 2)]


def test_a_line_moved_twice_leaves_the_middle_order_clean(shop, emulator):
    first, second, third = (shop.order(status="paid", items=[("mug", 1)]) for _ in range(3))
    tea = shop.item(first, "tea", 2)

    tea.order = second
    tea.save()
    tea.order = third
    tea.save()  # leaves second, not first

    assert lines(emulator, first) == [("MUG", 1)]
    assert lines(emulator, second) == [("MUG", 1)]
    assert lines(emulator, third) == [("MUG", 1), ("TEA", 2)]


def test_a_line_loaded_without_its_order_field_and_moved_leaves_no_stale_order(shop, emulator):
    first = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    second = shop.order(status="paid", items=[("mug", 3)])
    tea = OrderItem.objects.only("quantity").get(order=first, product=shop.tea)

    tea.order = second
    with transaction.atomic():
        tea.save()

    assert lines(emulator, first) == [("MUG", 1)]
    assert lines(emulator, second) == [("MUG", 3), ("TEA", 2)]


def test_a_line_loaded_without_its_order_field_and_deleted_repushes_its_order(shop, emulator):
    order = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])

    OrderItem.objects.only("quantity").get(order=order, product=shop.tea).delete()

    assert lines(emulator, order) == [("MUG", 1)]


def test_a_save_whose_update_fields_leave_the_order_out_does_not_move_the_line(shop, emulator):
    first = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    second = shop.order(status="paid", items=[("mug", 3)])
    tea = OrderItem.objects.get(order=first, product=shop.tea)

    tea.order = second  # not written by the first save: update_fields leaves it out
    tea.quantity = 5
    tea.save(update_fields=["quantity"])
    assert lines(emulator, first) == [("MUG", 1), ("TEA", 5)]

    tea.save()  # now it moves, from the first order
    assert lines(emulator, first) == [("MUG", 1)]
    assert lines(emulator, second) == [("MUG", 3), ("TEA", 5)]


def test_moving_a_loaded_line_reads_nothing_back(shop, emulator):
    first = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    second = shop.order(status="paid", items=[("mug", 3)])
    tea = OrderItem.objects.get(order=first, product=shop.tea)

    tea.order = second
    with CaptureQueriesContext(connection) as captured, paused_sync(), transaction.atomic():
        tea.save()

    assert [query["sql"] for query in captured if query["sql"].startswith("SELECT")] == []
    assert {row.order_pk: row.state for row in OrderSync.objects.all()} == {
        str(first.pk): SyncState.PENDING,
        str(second.pk): SyncState.PENDING,
    }


def test_a_note_detached_from_its_order_leaves_it(shop, emulator, notes_sync):
    order = shop.order(status="paid")
    note = Note.objects.create(order=order, text="gift")
    assert notes(emulator, order) == ["gift"]

    note = Note.objects.get(pk=note.pk)
    note.order = None
    note.save()

    assert notes(emulator, order) == []


def test_a_line_moved_then_its_old_order_deleted_in_one_transaction(shop, emulator):
    first = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    second = shop.order(status="paid", items=[("mug", 3)])
    tea = OrderItem.objects.get(order=first, product=shop.tea)
    first_pk = first.pk

    with transaction.atomic():
        tea.order = second
        tea.save()
        first.delete()

    assert state(first_pk) == SyncState.DELETED
    assert lines(emulator, second) == [("MUG", 3), ("TEA", 2)]


def test_a_note_moved_after_its_old_order_was_deleted_in_one_transaction(
    shop, emulator, notes_sync
):
    first = shop.order(status="paid")
    second = shop.order(status="paid")
    note = Note.objects.create(order=first, text="gift")
    first_pk = first.pk

    with transaction.atomic():
        first.delete()  # SET_NULL: the note row loses its order, the instance does not know
        note.order = second
        note.save()  # marks the deleted order as well: its push finds it gone

    assert state(first_pk) == SyncState.DELETED
    assert notes(emulator, second) == ["gift"]


def test_a_deleted_line_repushes_its_order_and_a_deleted_note_its_order(shop, emulator, notes_sync):
    order = shop.order(status="paid", items=[("mug", 1), ("tea", 2)])
    Note.objects.create(order=order, text="gift")

    OrderItem.objects.get(order=order, product=shop.tea).delete()
    Note.objects.get().delete()

    assert lines(emulator, order) == [("MUG", 1)]
    assert notes(emulator, order) == []


# Proxies and multi-table children ------------------------------------------------------------


@pytest.mark.parametrize("model", [OrderProxy, GiftOrder], ids=["proxy", "child"])
def test_orders_saved_and_deleted_through_a_proxy_or_child_are_synced(shop, emulator, model):
    order = model.objects.create(customer=shop.customer, number="SO-X-1", status="new")
    assert remote(emulator, order)["status"] == "CREATED"

    order = model.objects.get(pk=order.pk)
    order.status = "paid"
    order.save()
    assert remote(emulator, order)["status"] == "PAID"

    order_pk = order.pk
    order.delete()
    assert state(order_pk) == SyncState.DELETED


@pytest.mark.parametrize("model", [OrderItemProxy, GiftWrapItem], ids=["proxy", "child"])
def test_lines_saved_moved_and_deleted_through_a_proxy_or_child_are_synced(shop, emulator, model):
    first = shop.order(status="paid", items=[("mug", 1)])
    second = shop.order(status="paid", items=[("mug", 3)])

    line = model.objects.create(order=first, product=shop.tea, quantity=2, unit_price=8)
    assert lines(emulator, first) == [("MUG", 1), ("TEA", 2)]

    line = model.objects.get(pk=line.pk)
    line.order = second
    line.save()
    assert lines(emulator, first) == [("MUG", 1)]
    assert lines(emulator, second) == [("MUG", 3), ("TEA", 2)]

    line.delete()
    assert lines(emulator, second) == [("MUG", 3)]


# Models that are not orders keep Django's fast delete ---------------------------------------


def test_deleting_rows_of_other_models_stays_a_fast_delete(shop, emulator):
    Widget.objects.bulk_create([Widget(name=f"w{n}") for n in range(300)])
    collector = Collector(DEFAULT_DB_ALIAS)

    assert collector.can_fast_delete(Widget.objects.all())
    assert collector.can_fast_delete(Session.objects.all())
    with CaptureQueriesContext(connection) as captured:
        Widget.objects.all().delete()
    statements = [query["sql"].split()[0] for query in captured]
    assert "SELECT" not in statements  # one DELETE; not loaded row by row to send signals
    assert statements.count("DELETE") == 1
    assert not Widget.objects.exists()

    # The synced models are still watched, so their deletes are not fast.
    for model in (Order, OrderProxy, GiftOrder, OrderItem, OrderItemProxy, GiftWrapItem):
        assert post_delete.has_listeners(model), model
    assert not collector.can_fast_delete(GiftWrapItem.objects.all())


def test_a_model_becomes_watched_and_unwatched_with_the_settings(shop, emulator):
    order = shop.order(status="paid")
    collector = Collector(DEFAULT_DB_ALIAS)
    assert collector.can_fast_delete(Note.objects.all())

    from django.conf import settings

    config = settings.VOUCHERIFY_ORDERS
    with override_settings(
        VOUCHERIFY_ORDERS={
            **config,
            "MAPPER": "tests.testapp.voucherify.NotedOrderMapper",
            "TRIGGERS": {"testapp.Note": "order"},
        }
    ):
        assert not collector.can_fast_delete(Note.objects.all())
        assert not post_delete.has_listeners(OrderItem)  # no longer a trigger
        Note.objects.create(order=order, text="gift")
        assert notes(emulator, order) == ["gift"]

    assert collector.can_fast_delete(Note.objects.all())
    before = emulator.count()
    Note.objects.create(order=order, text="unwatched")
    assert emulator.count() == before


def test_settings_naming_no_model_connect_nothing_and_do_not_break_saves(shop, emulator):
    from django.conf import settings

    with override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "ORDER_MODEL": "x.Y"}):
        order = shop.order(status="paid")
        assert not post_save.has_listeners(Order)
    assert remote(emulator, order) is None
    assert not OrderSync.objects.exists()


# Autocommit: the row's UPDATE commits before post_save ---------------------------------------


def _dies_before_post_save():
    """The process dies (or the outbox write fails) after the row's UPDATE committed."""
    return mock.patch.object(post_save, "send", side_effect=ConnectionError("worker killed"))


def test_an_order_saved_in_autocommit_whose_process_dies_before_post_save_is_still_delivered(
    shop, emulator
):
    order = shop.order(status="new")
    assert state(order.pk) == SyncState.SYNCED

    order.status = "paid"
    with _dies_before_post_save(), pytest.raises(ConnectionError):
        order.save()  # the UPDATE of the order committed before post_save
    assert Order.objects.get(pk=order.pk).status == "paid"
    assert remote(emulator, order)["status"] == "CREATED"

    assert sweep(now=after_sweep_grace()) == 1
    assert remote(emulator, order)["status"] == "PAID"


def test_a_line_saved_in_autocommit_whose_process_dies_before_post_save_is_still_delivered(
    shop, emulator
):
    order = shop.order(status="paid", items=[("mug", 1)])
    mug = order.items.get()

    mug.quantity = 4
    with _dies_before_post_save(), pytest.raises(ConnectionError):
        mug.save()

    assert sweep(now=after_sweep_grace()) == 1
    assert lines(emulator, order) == [("MUG", 4)]


def test_a_save_in_a_transaction_marks_once_per_order(shop, emulator):
    order = shop.order(status="new", items=[("mug", 1)])
    with (
        mock.patch.object(marks, "mark_changed", wraps=marks.mark_changed) as mark,
        transaction.atomic(),
    ):
        order.status = "paid"
        order.save()
    assert mark.call_count == 1  # post_save only: it is in the same transaction
    assert remote(emulator, order)["status"] == "PAID"


def test_an_order_saved_in_autocommit_is_queued_for_one_push(shop, emulator):
    from django_voucherify_orders.tasks import push_orders

    order = shop.order(status="new")
    order.status = "paid"
    with mock.patch.object(push_orders, "apply_async", wraps=push_orders.apply_async) as queued:
        order.save()  # the mark before the UPDATE does not queue a push of the old row

    assert queued.call_count == 1
    assert remote(emulator, order)["status"] == "PAID"
