from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import transaction
from shop.models import Customer, Order, OrderItem, Product

_numbers = itertools.count(1)


@pytest.fixture
def shop(transactional_db):
    """Makes shop orders. transactional_db: the app acts on real commits."""

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


@pytest.fixture
def emulator(voucherify_emulator):
    return voucherify_emulator


def remote(emulator, order):
    return emulator.get_order(str(order.pk))
