"""Fixtures for the admin tests: users with chosen permissions, shop orders, sync rows."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from django_voucherify_orders.models import OrderSync, SyncState

_serial = itertools.count(1)

ADMIN = "/admin/voucherify_orders"
SYNC_LIST = f"{ADMIN}/ordersync/"
REMOTE = f"{ADMIN}/ordersync/remote/"
HEALTH = f"{ADMIN}/ordersync/health/"
SHOP_ORDERS = "/admin/shop/order/"


@pytest.fixture
def staff_client(db) -> Callable[..., Client]:
    """``staff_client("view_ordersync", "push_ordersync")``: a logged-in staff user with
    exactly these permissions (codenames; shop.* and voucherify_orders.* both searched)."""

    def make(*codenames: str) -> Client:
        user = User.objects.create_user(
            f"staff{next(_serial)}", password="pw", is_staff=True
        )  # fmt: skip
        perms = Permission.objects.filter(
            codename__in=codenames, content_type__app_label__in=["voucherify_orders", "shop"]
        )
        assert perms.count() == len(codenames), codenames
        user.user_permissions.set(perms)
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def superuser_client(db) -> Client:
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def make_order(db) -> Callable[..., Any]:
    """A shop order with one item (no push: on_commit callbacks of ``db`` tests never run)."""
    from shop.models import Customer, Order, OrderItem, Product

    def make(status: str = "paid", **fields: Any) -> Order:
        n = next(_serial)
        customer = Customer.objects.create(name=f"C{n}", email=f"c{n}@example.com", city="Berlin")
        product, _ = Product.objects.get_or_create(
            sku="MUG", defaults={"name": "Mug", "price": Decimal("12.50")}
        )
        order = Order.objects.create(
            customer=customer, number=f"SO-{n:06d}", status=status, **fields
        )
        OrderItem.objects.create(
            order=order, product=product, quantity=2, unit_price=Decimal("12.50")
        )
        return order

    return make


@pytest.fixture
def make_syncs(db) -> Callable[..., list[OrderSync]]:
    def make(count: int, state: str = SyncState.SYNCED, **fields: Any) -> list[OrderSync]:
        now = timezone.now()
        rows = []
        for _ in range(count):
            n = next(_serial)
            rows.append(
                OrderSync(
                    order_pk=f"9{n:05d}",
                    source_id=f"src-{n}",
                    voucherify_id=f"ord_{n:08d}",
                    state=state,
                    synced_at=now if state == SyncState.SYNCED else None,
                    **fields,
                )
            )
        return OrderSync.objects.bulk_create(rows)

    return make


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]
