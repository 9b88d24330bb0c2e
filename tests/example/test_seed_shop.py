"""manage.py seed_shop: counts, spread, determinism, --sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from shop.models import Customer, Order, OrderItem, Product
from shop.voucherify import ShopOrderMapper

import django_voucherify_orders

pytestmark = pytest.mark.django_db

END = "2025-06-30"


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_shop", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything seeded, without primary keys (they differ between databases)."""
    return {
        "customers": sorted(
            Customer.objects.values_list("email", "name", "phone", "city", "country")
        ),
        "products": sorted(Product.objects.values_list("sku", "name", "price", "currency")),
        "orders": sorted(
            Order.objects.values_list(
                "number", "customer__email", "status", "currency", "discount", "note", "created_at"
            )
        ),
        "items": sorted(
            OrderItem.objects.values_list("order__number", "product__sku", "quantity", "unit_price")
        ),
    }


def wipe() -> None:
    OrderItem.objects.all().delete()
    Order.objects.all().delete()
    Product.objects.all().delete()
    Customer.objects.all().delete()


def test_creates_exactly_what_was_asked() -> None:
    out = seed("--orders=40", "--items=3", "--customers=7", "--products=9", f"--end={END}")

    assert (Customer.objects.count(), Product.objects.count()) == (7, 9)
    assert Order.objects.count() == 40
    assert OrderItem.objects.count() == 120
    per_order = set(Order.objects.annotate(n=Count("items")).values_list("n", flat=True))
    assert per_order == {3}
    assert set(Order.objects.values_list("status", flat=True)) <= {
        "new", "paid", "shipped", "cancelled",
    }  # fmt: skip
    assert "40 orders SO-000001..SO-000040 with 120 items" in out
    assert "Not queued for Voucherify" in out


def test_history_spans_two_years_before_end_and_every_status() -> None:
    seed("--orders=400", "--items=1", f"--end={END}")
    end = datetime(2025, 7, 1, tzinfo=UTC)
    dates = list(Order.objects.values_list("created_at", flat=True))
    assert all(end - timedelta(days=730) <= moment < end for moment in dates)
    assert max(dates) - min(dates) > timedelta(days=600)
    assert set(Order.objects.values_list("status", flat=True)) == {
        "new", "paid", "shipped", "cancelled",
    }  # fmt: skip


def test_same_seed_same_data_other_seed_other_data() -> None:
    args = ("--orders=30", "--items=2", "--customers=6", f"--end={END}")
    seed(*args, "--seed=7")
    first = snapshot()
    wipe()
    seed(*args, "--seed=7")
    assert snapshot() == first
    wipe()
    seed(*args, "--seed=8")
    assert snapshot() != first


def test_running_again_reuses_customers_and_products_and_continues_numbers() -> None:
    seed("--orders=5", "--items=2", "--customers=4", "--products=6", f"--end={END}")
    out = seed("--orders=5", "--items=2", "--customers=4", "--products=6", f"--end={END}")
    assert "Created 0 customers (4 reused), 0 products (6 reused)" in out
    assert (Customer.objects.count(), Product.objects.count(), Order.objects.count()) == (4, 6, 10)
    assert Order.objects.order_by("-number").values_list("number", flat=True)[0] == "SO-000010"


@pytest.mark.parametrize(("currency", "places"), [("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_prices_fit_the_currency(currency: str, places: int) -> None:
    seed("--orders=20", "--items=3", f"--currency={currency.lower()}", f"--end={END}")
    assert set(Order.objects.values_list("currency", flat=True)) == {currency}
    assert set(Product.objects.values_list("currency", flat=True)) == {currency}
    quantum = Decimal(1).scaleb(-places)
    for value in [
        *OrderItem.objects.values_list("unit_price", flat=True),
        *Order.objects.values_list("discount", flat=True),
    ]:
        assert value == value.quantize(quantum)
        assert value >= 0


def test_more_items_than_products_repeats_products() -> None:
    seed("--orders=3", "--items=12", "--products=4", f"--end={END}")
    assert OrderItem.objects.count() == 36


def test_every_seeded_order_maps(django_assert_max_num_queries) -> None:
    seed("--orders=60", "--items=3", "--currency=KWD", f"--end={END}")
    mapper = ShopOrderMapper(Order)
    with django_assert_max_num_queries(3):
        payloads = [mapper.build(order) for order in mapper.get_queryset()]
    assert len(payloads) == 60
    assert all(len(payload.items) == 3 for payload in payloads)


@pytest.mark.parametrize(
    "args",
    [("--orders=0",), ("--orders=1", "--items=0"), ("--orders=1", "--currency=EURO")],
)
def test_bad_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        seed(*args)


def test_sync_queues_the_created_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[int] = []

    def enqueue_sync(orders: Any) -> int:
        pks = [order.pk for order in orders]
        queued.extend(pks)
        return len(pks)

    monkeypatch.setattr(django_voucherify_orders, "enqueue_sync", enqueue_sync, raising=False)
    out = seed("--orders=25", "--items=1", "--batch-size=10", "--sync", f"--end={END}")

    assert sorted(queued) == sorted(Order.objects.values_list("pk", flat=True))
    assert "Queued 25 orders for Voucherify." in out


def test_without_sync_nothing_is_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    def enqueue_sync(orders: Any) -> int:
        raise AssertionError("seeded orders are historical: not queued without --sync")

    monkeypatch.setattr(django_voucherify_orders, "enqueue_sync", enqueue_sync, raising=False)
    seed("--orders=5", "--items=1", f"--end={END}")
