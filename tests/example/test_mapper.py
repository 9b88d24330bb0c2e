"""ShopOrderMapper: the shop's orders as Voucherify order payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from shop.models import Order
from shop.voucherify import ShopOrderMapper

from django_voucherify_orders.client.schemas import OrderCreate
from django_voucherify_orders.mapping import MappingError, get_mapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def mapper() -> ShopOrderMapper:
    return ShopOrderMapper(Order)


def test_the_configured_mapper_is_the_shops() -> None:
    assert type(get_mapper()) is ShopOrderMapper


def test_payload_validates_and_carries_every_field(mapper, make_order) -> None:
    created = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    order = make_order(
        status="paid",
        items=[("MUG-BLU", "Blue mug", "19.99", 2), ("TEA-01", "Green tea", "4.50", 1)],
        discount="5.00",
        note="Gift wrap, please",
        created_at=created,
    )
    payload = mapper.build(order)

    assert isinstance(payload, OrderCreate)
    assert payload.to_json() == {
        "source_id": str(order.pk),
        "status": "PAID",
        "amount": 2 * 1999 + 450,
        "discount_amount": 500,
        "items": [
            {
                "source_id": "MUG-BLU",
                "related_object": "product",
                "quantity": 2,
                "price": 1999,
                "amount": 3998,
                "product": {"name": "Blue mug"},
            },
            {
                "source_id": "TEA-01",
                "related_object": "product",
                "quantity": 1,
                "price": 450,
                "amount": 450,
                "product": {"name": "Green tea"},
            },
        ],
        "customer": {
            "source_id": f"customer-{order.customer.pk}",
            "name": order.customer.name,
            "email": order.customer.email,
            "phone": "+49 30 1234567",
            "address": {"city": "Berlin", "country": "DE"},
        },
        "created_at": "2025-03-14T09:26:53Z",
        "metadata": {"number": order.number, "currency": "EUR", "note": "Gift wrap, please"},
    }
    assert payload.created_at == created


def test_source_id_is_the_primary_key_as_text(mapper, make_order) -> None:
    order = make_order()
    assert mapper.source_id(order) == str(order.pk)
    assert mapper.build(order).source_id == str(order.pk)


@pytest.mark.parametrize(
    ("currency", "unit_price", "price"),
    [
        ("EUR", "19.99", 1999),
        ("EUR", "0.005", 1),  # half up, to the cent
        ("JPY", "1500", 1500),
        ("JPY", "1500.5", 1501),
        ("KWD", "12.345", 12345),
        ("KWD", "0.001", 1),
    ],
)
def test_amounts_are_minor_units_of_the_orders_currency(
    mapper, make_order, currency, unit_price, price
) -> None:
    order = make_order(currency=currency, items=[(f"SKU-{currency}", "Thing", unit_price, 3)])
    payload = mapper.build(order)
    (item,) = payload.items
    assert (item.price, item.quantity, item.amount) == (price, 3, 3 * price)
    assert payload.amount == 3 * price
    assert payload.metadata["currency"] == currency


@pytest.mark.parametrize(
    ("currency", "discount", "minor"),
    [("EUR", "2.50", 250), ("JPY", "300", 300), ("KWD", "1.250", 1250)],
)
def test_discount_in_minor_units(mapper, make_order, currency, discount, minor) -> None:
    order = make_order(
        currency=currency, discount=discount, items=[(f"D-{currency}", "Thing", "100", 1)]
    )
    assert mapper.build(order).discount_amount == minor


def test_no_discount_no_note_no_blank_contact_fields(mapper, make_order) -> None:
    from shop.models import Customer

    customer = Customer.objects.create(name="Ada", email="ada@example.com")
    payload = mapper.build(make_order(customer=customer)).to_json()
    # No discount is sent as 0, never left out: leaving it out would keep a removed one.
    assert payload["discount_amount"] == 0
    assert payload["metadata"] == {"number": payload["metadata"]["number"], "currency": "EUR"}
    assert payload["customer"] == {
        "source_id": f"customer-{customer.pk}",
        "name": "Ada",
        "email": "ada@example.com",
    }


@pytest.mark.parametrize(
    ("shop_status", "voucherify_status"),
    [("new", "CREATED"), ("paid", "PAID"), ("shipped", "FULFILLED"), ("cancelled", "CANCELED")],
)
def test_status_translation(mapper, make_order, shop_status, voucherify_status) -> None:
    assert mapper.build(make_order(status=shop_status)).status == voucherify_status


def test_unknown_status_names_the_order_and_the_field(mapper, make_order) -> None:
    order = make_order()
    Order.objects.filter(pk=order.pk).update(status="refunded")
    order.refresh_from_db()

    with pytest.raises(MappingError) as caught:
        mapper.build(order)

    error = caught.value
    assert error.order_pk == order.pk
    assert error.source_id == str(order.pk)
    assert f"order {order.pk}" in str(error)
    assert "status" in str(error)
    assert "'refunded'" in str(error)


def test_naive_created_at_is_a_mapping_error(mapper, make_order) -> None:
    order = make_order()
    order.created_at = datetime(2025, 1, 1, 12, 0)  # what USE_TZ = False would give
    with pytest.raises(MappingError, match="created_at"):
        mapper.build(order)


def _queries_to_map(mapper: ShopOrderMapper, count: int) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        payloads = [mapper.build(order) for order in mapper.get_queryset()]
    assert len(payloads) == count
    return len(queries), sum(len(payload.items or ()) for payload in payloads)


def test_mapping_n_orders_costs_a_fixed_number_of_queries(mapper, make_order) -> None:
    items = [("A", "Apple", "1.00", 1), ("B", "Banana", "2.00", 2), ("C", "Cherry", "3.00", 3)]
    for _ in range(5):
        make_order(items=items)
    five, lines = _queries_to_map(mapper, 5)
    assert lines == 15

    for _ in range(45):
        make_order(items=items)
    fifty, lines = _queries_to_map(mapper, 50)
    assert lines == 150

    assert five == fifty == 3  # orders + customers, items, products


def test_a_removed_discount_is_sent_as_zero(mapper, make_order) -> None:
    """Voucherify keeps a field an update leaves out, so a discount going from 10.00 to 0
    must be in the payload as 0: a mapper that drops it would lose the change."""
    order = make_order(discount="10.00")
    assert mapper.build(order).to_json()["discount_amount"] == 1000

    order.discount = Decimal(0)
    order.save()
    order = mapper.get_queryset().get(pk=order.pk)

    payload = mapper.build(order).to_json()
    assert "discount_amount" in payload
    assert payload["discount_amount"] == 0


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_zero_discount_is_zero_in_every_currency(mapper, make_order, currency) -> None:
    order = make_order(currency=currency, items=[(f"Z-{currency}", "Thing", "100", 1)])
    assert mapper.build(order).discount_amount == 0


def test_a_negative_discount_is_bad_local_data(mapper, make_order) -> None:
    """The model refuses a negative discount; one written around its validators fails the
    order by name instead of being sent or silently dropped."""
    order = make_order()
    Order.objects.filter(pk=order.pk).update(discount=Decimal("-1.00"))
    order = mapper.get_queryset().get(pk=order.pk)

    with pytest.raises(MappingError, match="discount_amount"):
        mapper.build(order)
