"""Outbox marks: a new order always ends pushed, and one outbox write per order per
transaction (issue 10)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from shop.voucherify import ShopOrderMapper

from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import enqueue_sync, sweep

from .conftest import remote

OUTBOX = '"voucherify_orders_ordersync"'


def posts(emulator) -> int:
    return emulator.count(method="POST", path_prefix="/v1/orders")


def outbox_queries(captured) -> list[str]:
    return [query["sql"] for query in captured if OUTBOX in query["sql"]]


def outbox_writes(captured) -> list[str]:
    return [sql for sql in outbox_queries(captured) if not sql.startswith("SELECT")]


class NumberMapper(ShopOrderMapper):
    """A custom source_id: the shop's order number, which a new order may reuse."""

    def source_id(self, order) -> str:
        return order.number


def number_mapper():
    from django.conf import settings

    return override_settings(
        VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "MAPPER": f"{__name__}.NumberMapper"}
    )


def recreate(shop, pk, *, number, status, items=(("tea", 3),)):
    from shop.models import Order

    with transaction.atomic():
        order = Order.objects.create(pk=pk, customer=shop.customer, number=number, status=status)
        for product, quantity in items:
            shop.item(order, product, quantity)
    return order


# A new order whose outbox row already exists -------------------------------------------------


def test_an_order_recreated_with_a_deleted_orders_key_is_pushed_as_a_new_order(shop, emulator):
    old = shop.order(status="shipped", items=[("mug", 2)])
    pk, number = old.pk, old.number
    old.delete()
    assert OrderSync.objects.get(pk=str(pk)).state == SyncState.DELETED
    before = posts(emulator)

    new = recreate(shop, pk, number=number, status="paid")

    pushed = remote(emulator, new)
    assert pushed["status"] == "PAID"
    assert [item["quantity"] for item in pushed["items"]] == [3]
    assert posts(emulator) == before + 1  # a POST (upsert) of the full payload, not a PUT
    row = OrderSync.objects.get(pk=str(pk))
    assert row.state == SyncState.SYNCED
    assert row.last_payload["status"] == "PAID"


def test_a_restored_order_is_pushed_even_if_its_payload_is_the_last_one_pushed(shop, emulator):
    """Same key, same content: the remote order may have been changed meanwhile; the new
    order's first push must send it, not find its hash "unchanged"."""
    old = shop.order(status="paid", items=[("tea", 3)])
    pk, number = old.pk, old.number
    created_at = old.created_at
    old.delete()
    before = posts(emulator)

    from shop.models import Order

    with transaction.atomic():
        new = Order.objects.create(
            pk=pk, customer=shop.customer, number=number, status="paid", created_at=created_at
        )
        shop.item(new, "tea", 3)

    assert posts(emulator) == before + 1
    assert OrderSync.objects.get(pk=str(pk)).state == SyncState.SYNCED


def test_a_new_order_reusing_a_deleted_orders_source_id_takes_it_over(shop, emulator):
    with number_mapper():
        from shop.models import Order

        with transaction.atomic():
            old = Order.objects.create(customer=shop.customer, number="SO-REUSED", status="new")
            shop.item(old, "mug", 2)
        assert emulator.get_order("SO-REUSED")["status"] == "CREATED"
        old_pk = old.pk
        old.delete()

        with transaction.atomic():
            new = Order.objects.create(customer=shop.customer, number="SO-REUSED", status="paid")
            shop.item(new, "tea", 1)
        new.status = "shipped"
        new.save()  # a later push of the new order too

    pushed = emulator.get_order("SO-REUSED")  # Voucherify's upsert updated the old order
    assert pushed["status"] == "FULFILLED"
    assert [item["quantity"] for item in pushed["items"]] == [1]
    row = OrderSync.objects.get(pk=str(new.pk))
    assert (row.state, row.source_id) == (SyncState.SYNCED, "SO-REUSED")
    freed = OrderSync.objects.get(pk=str(old_pk))
    assert (freed.state, freed.source_id) == (SyncState.DELETED, None)


def test_a_source_id_held_by_a_stale_row_is_taken_over(shop, emulator, caplog):
    """An order deleted without signals (QuerySet.delete in raw SQL...) left a row that
    still says pending: the new order wins it, with a warning naming both."""
    from shop.models import Order

    with number_mapper():
        with transaction.atomic():
            old = Order.objects.create(customer=shop.customer, number="SO-STALE", status="new")
            shop.item(old, "mug", 1)
        old_pk = old.pk
        with connection.cursor() as cursor:  # a clean-up script, past the ORM's signals
            cursor.execute("DELETE FROM shop_orderitem WHERE order_id = %s", [old_pk])
            cursor.execute("DELETE FROM shop_order WHERE id = %s", [old_pk])

        new = Order.objects.create(customer=shop.customer, number="SO-STALE", status="paid")

    assert emulator.get_order("SO-STALE")["status"] == "PAID"
    assert OrderSync.objects.get(pk=str(new.pk)).source_id == "SO-STALE"
    assert OrderSync.objects.get(pk=str(old_pk)).source_id is None
    assert f"order {new.pk} takes over source_id 'SO-STALE' from order {old_pk}" in caplog.text


def test_a_create_after_a_plain_mark_in_the_same_transaction_still_takes_the_row_over(
    shop, emulator
):
    from shop.models import Order

    order = shop.order(status="shipped", items=[("mug", 2)])
    pk, number = order.pk, order.number
    before = posts(emulator)
    with transaction.atomic():
        order.note = "changed, then deleted and created again"
        order.save()  # a plain mark: the row is marked in this transaction
        order.delete()
        new = Order.objects.create(pk=pk, customer=shop.customer, number=number, status="paid")
        shop.item(new, "tea", 1)

    assert remote(emulator, new)["status"] == "PAID"
    assert posts(emulator) == before + 1
    assert OrderSync.objects.get(pk=str(pk)).state == SyncState.SYNCED


def test_enqueue_sync_of_orders_bulk_created_with_deleted_orders_keys(shop, emulator):
    from shop.models import Order

    old = shop.order(status="shipped", items=[])
    pk, number = old.pk, old.number
    old.delete()
    before = posts(emulator)

    Order.objects.bulk_create([Order(pk=pk, customer=shop.customer, number=number, status="new")])
    enqueue_sync(Order.objects.filter(pk=pk))

    assert emulator.get_order(str(pk))["status"] == "CREATED"
    assert posts(emulator) == before + 1


# One outbox write per order per transaction ---------------------------------------------------


def test_a_20_item_checkout_in_one_transaction_writes_the_outbox_once(shop, emulator):
    # The queries of the checkout's transaction, not those of the push after its commit.
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        order = shop.order(status="paid", items=[("mug", 1)] * 20)

    assert len(outbox_writes(captured)) == 1  # the INSERT of the new order's row
    assert len(remote(emulator, order)["items"]) == 20


def test_saves_of_an_existing_order_in_one_transaction_write_the_outbox_once(shop, emulator):
    order = shop.order(status="new")
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        order.status = "paid"
        order.save()
        for _ in range(5):
            shop.item(order, "tea")
        order.note = "gift"
        order.save()

    writes = outbox_writes(captured)
    assert len(writes) == 1 and writes[0].startswith("UPDATE")
    assert remote(emulator, order)["status"] == "PAID"
    assert remote(emulator, order)["metadata"]["note"] == "gift"


def test_a_mark_undone_by_a_rolled_back_savepoint_is_made_again(shop, emulator):
    order = shop.order(status="new")
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            order.status = "paid"
            order.save()
            raise RuntimeError
        with CaptureQueriesContext(connection) as captured:
            shop.item(order, "tea", 4)

    assert len(outbox_writes(captured)) == 1
    assert [item["quantity"] for item in remote(emulator, order)["items"]] == [2, 4]
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED


def test_a_mark_in_a_released_savepoint_counts_for_the_transaction(shop, emulator):
    order = shop.order(status="new")
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        with transaction.atomic():
            order.status = "paid"
            order.save()
        with pytest.raises(RuntimeError), transaction.atomic():
            shop.item(order, "tea", 4)  # marked already: no write to undo here
            raise RuntimeError
        order.note = "after"
        order.save()

    assert len(outbox_writes(captured)) == 1
    pushed = remote(emulator, order)
    assert pushed["status"] == "PAID"
    assert pushed["metadata"]["note"] == "after"
    assert [item["quantity"] for item in pushed["items"]] == [2]


def test_in_autocommit_every_save_writes_the_outbox(shop, emulator):
    order = shop.order(status="new")
    with CaptureQueriesContext(connection) as captured:
        order.status = "paid"
        order.save()
        order.status = "shipped"
        order.save()

    assert len(outbox_writes(captured)) >= 2
    assert remote(emulator, order)["status"] == "FULFILLED"


@pytest.mark.django_db
def test_in_a_testcase_each_executed_on_commit_capture_is_a_commit(
    emulator, django_capture_on_commit_callbacks
):
    """A user's TestCase-style test: one transaction for the whole test, commits simulated
    by running the on_commit callbacks. A save after that is marked and pushed again."""
    from shop.models import Customer, Order

    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        order = Order.objects.create(customer=customer, number="SO-TC", status="new")
    assert remote(emulator, order)["status"] == "CREATED"

    with django_capture_on_commit_callbacks(execute=True):
        order.status = "paid"
        order.save()

    assert remote(emulator, order)["status"] == "PAID"


def test_an_old_order_edited_while_the_import_records_it_reaches_voucherify(
    shop, emulator, monkeypatch
):
    """An order from before the app was installed has no row. Its first edit since finds
    none, so it inserts one; if the import writes its synced row for the order in that
    moment (after the edit's check, before its insert), the edit must still be pushed."""
    from django_voucherify_orders.conf import get_client
    from django_voucherify_orders.importer import rows
    from django_voucherify_orders.mapping import get_mapper
    from django_voucherify_orders.sync import marks

    order = shop.order(status="new")
    OrderSync.objects.filter(pk=str(order.pk)).delete()  # as if placed before the install
    emulator.reset()
    as_imported = get_mapper().build(order).to_json()
    get_client().create_order(as_imported)  # the import's batch reached Voucherify

    real_bulk_create = QuerySet.bulk_create
    landed = []

    def import_lands_first(self, objs, *args, **kwargs):
        if self.model is OrderSync and not landed:  # the edit's insert of a new row
            landed.append(rows.mark_synced({str(order.pk): as_imported}, {}))
        return real_bulk_create(self, objs, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "bulk_create", import_lands_first)
    # The push queued after commit is lost (the broker was down, the worker killed): the
    # outbox row is all that remembers the edit, and the sweep pushes what it holds.
    monkeypatch.setattr(marks, "push_after_commit", lambda key, database: None)
    with transaction.atomic():
        order.status = "paid"
        order.save()

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.PENDING
    sweep(now=timezone.now() + timedelta(hours=1))
    assert remote(emulator, order)["status"] == "PAID"
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
