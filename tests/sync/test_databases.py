"""The outbox lives in, and is read from, the order model's database (issue 10).

A project whose DATABASE_ROUTERS put the shop on another database ("other" here): the
marks, enqueue_sync and the pushes must all use the database the routers give the
outbox, and the system check vo.E008 says when the routers split the outbox from the
orders.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.test import override_settings

from django_voucherify_orders import enqueue_sync
from django_voucherify_orders.checks import check_outbox_database, check_voucherify_settings
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

multi_db = pytest.mark.django_db(transaction=True, databases=["default", "other"])


class _Router:
    """Routes the listed apps to "other", everything else to "default"."""

    apps: frozenset[str] = frozenset()

    def db_for_read(self, model, **hints):
        return "other" if model._meta.app_label in self.apps else None

    db_for_write = db_for_read

    def allow_migrate(self, db, app_label, **hints):
        return (db == "other") == (app_label in self.apps)


class ShopAndOutboxOnOther(_Router):
    apps = frozenset({"shop", "voucherify_orders"})


class ShopOnOther(_Router):
    """The mistake: the shop's app routed, the outbox forgotten."""

    apps = frozenset({"shop"})


class OutboxReadFromAReplica:
    def db_for_read(self, model, **hints):
        return "replica" if model._meta.app_label == "voucherify_orders" else None

    def db_for_write(self, model, **hints):
        return "default"

    def allow_migrate_model(self, db, model):
        return True


def routed(router: type) -> override_settings:
    return override_settings(DATABASE_ROUTERS=[f"{__name__}.{router.__name__}"])


def checkout(status: str, emulator):
    """A checkout on the shop's database, as the shop writes it (atomic on its alias)."""
    from shop.models import Customer, Order, OrderItem, Product

    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    mug = Product.objects.create(sku="MUG", name="Mug", price=Decimal("12.50"))
    with transaction.atomic(using="other"):
        order = Order.objects.create(customer=customer, number="SO-1", status=status)
        OrderItem.objects.create(order=order, product=mug, quantity=2, unit_price=mug.price)
        assert emulator.count() == 0  # nothing is pushed before the order's commit
    return order


@pytest.fixture
def outbox_tables_only_on_default():
    """As in a project whose migrations follow the routers: no outbox tables in "other"."""
    with connections["other"].schema_editor() as editor:
        editor.delete_model(SyncAttempt)
        editor.delete_model(OrderSync)
    yield
    with connections["other"].schema_editor() as editor:
        editor.create_model(OrderSync)
        editor.create_model(SyncAttempt)


@multi_db
def test_an_order_on_the_shops_database_is_marked_and_pushed_there(voucherify_emulator):
    from shop.models import Order

    with routed(ShopAndOutboxOnOther):
        order = checkout("paid", voucherify_emulator)
        assert voucherify_emulator.get_order(str(order.pk))["status"] == "PAID"
        assert OrderSync.objects.using("other").get(pk=str(order.pk)).state == SyncState.SYNCED
        assert not OrderSync.objects.using("default").exists()

        # A path without signals: QuerySet.update, then enqueue_sync.
        Order.objects.filter(pk=order.pk).update(status="shipped")
        assert enqueue_sync(Order.objects.filter(pk=order.pk)) == 1

        assert voucherify_emulator.get_order(str(order.pk))["status"] == "FULFILLED"
        assert not OrderSync.objects.using("default").exists()


@multi_db
def test_an_order_whose_router_forgets_the_outbox_is_still_pushed(
    voucherify_emulator, outbox_tables_only_on_default
):
    """vo.E008 flags the configuration; the shop's saves still work and reach Voucherify
    (without the guarantee of one transaction for the order and its mark)."""
    with routed(ShopOnOther):
        order = checkout("paid", voucherify_emulator)

        assert voucherify_emulator.get_order(str(order.pk))["status"] == "PAID"
        assert OrderSync.objects.using("default").get(pk=str(order.pk)).state == SyncState.SYNCED

        key = str(order.pk)
        order.delete()  # on the shop's database; the outbox row is where the outbox is
        assert OrderSync.objects.using("default").get(pk=key).state == SyncState.DELETED


def test_the_check_says_when_the_routers_split_the_outbox_from_the_orders():
    with routed(ShopOnOther):
        errors = [message for message in check_voucherify_settings() if message.id == "vo.E008"]

    assert len(errors) == 1
    assert "the outbox is written to database 'default' and shop.Order to 'other'" in errors[0].msg
    assert '"voucherify_orders" like "shop"' in errors[0].hint


@pytest.mark.parametrize("router", [None, ShopAndOutboxOnOther])
def test_the_check_is_quiet_when_the_outbox_follows_the_orders(router):
    with routed(router) if router else override_settings():
        assert [m for m in check_voucherify_settings() if m.id == "vo.E008"] == []


def test_the_check_says_when_the_outbox_is_read_from_another_database():
    from shop.models import Order

    errors = check_outbox_database(Order, routers=OutboxReadFromAReplica())

    assert len(errors) == 1
    assert "the outbox is read from database 'replica' but written to 'default'" in errors[0].msg
