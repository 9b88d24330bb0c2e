"""Factories for the example shop's tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

_serial = itertools.count(1)


@pytest.fixture
def make_order(db: Any) -> Callable[..., Any]:
    """``make_order(currency="EUR", items=[("MUG", "Mug", "19.99", 2)], ...)`` -> an Order."""
    from shop.models import Customer, Order, OrderItem, Product

    def make(
        *,
        currency: str = "EUR",
        status: str = "new",
        items: list[tuple[str, str, str, int]] | None = None,
        discount: str = "0",
        note: str = "",
        customer: Customer | None = None,
        created_at: datetime | None = None,
    ) -> Order:
        n = next(_serial)
        if customer is None:
            customer = Customer.objects.create(
                name=f"Customer {n}",
                email=f"customer{n}@example.com",
                phone="+49 30 1234567",
                city="Berlin",
                country="DE",
            )
        order = Order.objects.create(
            customer=customer,
            number=f"SO-{n:06d}",
            status=status,
            currency=currency,
            discount=Decimal(discount),
            note=note,
            created_at=created_at or datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC),
        )
        for sku, name, unit_price, quantity in items or [("MUG", "Mug", "12.50", 1)]:
            product, _ = Product.objects.get_or_create(
                sku=sku,
                defaults={"name": name, "price": Decimal(unit_price), "currency": currency},
            )
            OrderItem.objects.create(
                order=order, product=product, quantity=quantity, unit_price=Decimal(unit_price)
            )
        return order

    return make
