"""Suite-wide fixtures. The emulator fixtures come from the package's pytest plugin."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal
from pathlib import Path

import pytest
from celery import Celery
from django.db import transaction

# A Celery app configured from tests.settings (CELERY_TASK_ALWAYS_EAGER: no broker).
celery_app = Celery("tests")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.set_default()
celery_app.set_current()

OSCAR_SETTINGS = "tests.oscar.settings"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """tests/oscar runs in a pass of its own, with Oscar's apps (--ds=tests.oscar.settings);
    every other test needs the example shop's settings."""
    oscar_dir = Path(__file__).parent / "oscar"
    if collection_path in oscar_dir.parents:
        return None  # tests/ itself: look inside
    in_oscar = oscar_dir in (collection_path, *collection_path.parents)
    oscar_pass = os.environ.get("DJANGO_SETTINGS_MODULE") == OSCAR_SETTINGS
    return True if oscar_pass != in_oscar else None


@pytest.fixture(scope="session", autouse=True)
def _database_features_known(django_db_setup, django_db_blocker):
    """Django's system checks, which every management command runs, ask each database
    whether it supports JSONField; on SQLite the answer takes a query, which a test not
    allowed on that database (the second alias, "other") refuses. Whether the answer was
    cached by an earlier test depended on the order (Django 6 ran into it). Ask once."""
    from django.db import connections

    with django_db_blocker.unblock():
        for alias in connections:
            connections[alias].features.supports_json_field  # noqa: B018 - cached here


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The queued-push markers and rate-limit counters live in the cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _private_export_dir(tmp_path, monkeypatch):
    """Export CSVs go to a private directory in /tmp by default: this test's own one."""
    from django_voucherify_orders import export_storage

    monkeypatch.setattr(export_storage, "DEFAULT_LOCATION", str(tmp_path / "vo-exports"))


_numbers = itertools.count(1)


@pytest.fixture
def shop(transactional_db):
    """Makes shop orders. transactional_db: the app acts on real commits."""

    from shop.models import Customer, Order, OrderItem, Product

    class Shop:
        customer = Customer.objects.create(name="Ada", email="ada@example.com", city="Berlin")
        mug = Product.objects.create(sku="MUG", name="Mug", price=Decimal("12.50"))
        tea = Product.objects.create(sku="TEA", name="Tea", price=Decimal("8.00"))

        def order(self, status="new", items=(("mug", 2),), **fields) -> Order:
            """A checkout: the order and its items in one transaction."""
            with transaction.atomic():
                order = Order.objects.create(
                    customer=self.customer, number=f"SO-{next(_numbers):06}", status=status,
                    **fields,
                )  # fmt: skip
                for product, quantity in items:
                    self.item(order, product, quantity)
            return order

        def item(self, order, product="mug", quantity=1) -> OrderItem:
            product = getattr(self, product)
            return OrderItem.objects.create(
                order=order, product=product, quantity=quantity, unit_price=product.price
            )

    return Shop()
