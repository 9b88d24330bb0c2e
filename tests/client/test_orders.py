"""Order calls of the client, against the emulator's `responses` door."""

from __future__ import annotations

import pytest

from django_voucherify_orders.client import NotFound, ValidationError
from django_voucherify_orders.client.schemas import Order, OrderCreate

ORDER = {
    "source_id": "shop-1001",
    "status": "PAID",
    "customer": {"source_id": "cust-7", "email": "ada@example.com", "name": "Ada"},
    "items": [
        {"source_id": "sku-1", "related_object": "sku", "quantity": 2, "price": 1500},
        {"product_id": "prod_1", "quantity": 1, "price": 999},
    ],
    "metadata": {"channel": "web"},
}


def test_create_order_fills_server_fields(client):
    order = client.create_order(ORDER)

    assert isinstance(order, Order)
    assert order.id.startswith("ord_")
    assert order.source_id == "shop-1001"
    assert order.amount == 2 * 1500 + 999
    assert [item.amount for item in order.items] == [3000, 999]
    assert order.customer is not None and order.customer.id == order.customer_id
    assert order.metadata == {"channel": "web"}


def test_create_order_upserts_by_source_id(client, voucherify_emulator):
    first = client.create_order(ORDER)
    second = client.create_order({**ORDER, "status": "FULFILLED", "items": ORDER["items"][:1]})

    assert second.id == first.id
    assert second.status == "FULFILLED"
    assert second.amount == 3000
    assert len(voucherify_emulator.orders()) == 1


def test_create_order_accepts_a_model(client):
    order = client.create_order(OrderCreate(source_id="m-1", status="CREATED"))
    assert order.status == "CREATED"


@pytest.mark.parametrize("source_id", ["plain", "with/slash", "with space", "q?x#y%z"])
def test_get_order_by_id_and_by_escaped_source_id(client, source_id):
    created = client.create_order({**ORDER, "source_id": source_id})

    assert client.get_order(created.id).source_id == source_id
    assert client.get_order(source_id).id == created.id


def test_get_missing_order_raises_not_found_with_voucherify_details(client):
    with pytest.raises(NotFound) as caught:
        client.get_order("no-such-order")

    error = caught.value
    assert error.status_code == 404
    assert error.key == "not_found"
    assert error.details == "Cannot find order with id no-such-order"
    assert error.request_id and error.request_id.startswith("v-")
    assert "GET /v1/orders/no-such-order -> HTTP 404 [not_found]" in str(error)


def test_update_order_changes_only_given_fields(client):
    client.create_order(ORDER)
    updated = client.update_order("shop-1001", {"status": "CANCELED"})

    assert updated.status == "CANCELED"
    assert updated.metadata == {"channel": "web"}
    assert updated.amount == 3999
    assert updated.updated_at is not None


def test_remote_validation_error_is_not_retried(client, voucherify_emulator, sleeps):
    client.create_order(ORDER)
    with pytest.raises(ValidationError) as caught:
        # Bypass local validation to see Voucherify's answer to a bad status.
        client._call("PUT", "/v1/orders/shop-1001", Order, json={"status": "SHIPPED"})

    assert caught.value.key == "invalid_payload"
    assert sleeps.calls == []


def test_list_orders_pages_and_totals(client):
    for n in range(25):
        client.create_order({"source_id": f"o-{n:02}", "status": "PAID"})

    page = client.list_orders(limit=10, page=3, order="created_at")

    assert page.total == 25
    assert [o.source_id for o in page.orders] == [f"o-{n:02}" for n in range(20, 25)]


def test_iter_orders_walks_every_page(client, voucherify_emulator):
    for n in range(205):
        client.create_order({"source_id": f"o-{n:03}"})
    before = voucherify_emulator.count(method="GET")

    seen = [order.source_id for order in client.iter_orders(page_size=100, order="created_at")]

    assert seen == [f"o-{n:03}" for n in range(205)]
    assert voucherify_emulator.count(method="GET") - before == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 100"),
        ({"limit": 101}, "limit must be between 1 and 100"),
        ({"page": 101}, "page must be between 1 and 100"),
        ({"order": "status"}, "order must be one of"),
    ],
)
def test_list_orders_rejects_bad_arguments_before_any_call(
    client, voucherify_emulator, kwargs, message
):
    with pytest.raises(ValueError, match=message):
        client.list_orders(**kwargs)
    assert voucherify_emulator.count() == 0


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"source_id": "x", "status": "SHIPPED"}, "status"),
        ({"source_id": "x", "amount": 10.5}, "amount"),
        ({"source_id": "x", "amount": -1}, "amount"),
        ({"source_id": "x", "items": [{"product_id": "p", "quantity": -1}]}, "items.0.quantity"),
        ({"source_id": "x", "items": [{"product": {"price": "1"}}]}, "items.0.product.price"),
        ({"source_id": "x", "items": [{"product_id": "p"}] * 501}, "items"),
        ({"source_id": "x", "metadata": {"when": object()}}, "metadata"),
        ({"source_id": "x", "stauts": "PAID"}, "stauts"),
        ({"source_id": "x", "created_at": "2024-01-01T00:00:00"}, "created_at"),
    ],
)
def test_bad_payloads_are_rejected_locally_naming_the_field(
    client, voucherify_emulator, order, field
):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        client.create_order(order)
    assert voucherify_emulator.count() == 0
