"""No lost change, for a value taken away: a discount removed from an order must be cleared
in Voucherify too. An update leaves every field it does not send unchanged there
("Any parameters not provided will be left unchanged", PUT /v1/orders/{id}), so the mapper
sends the 0 and the push engine's diff-based PUT must carry the 1000 -> 0 change. Voucherify
then answers with no discount at all: it leaves zero discount fields out of the order
(API-NOTES 5.6)."""

from __future__ import annotations

import logging
from decimal import Decimal
from unittest import mock

import pytest

from django_voucherify_orders.client import VoucherifyClient
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync.engine import _send

from .conftest import remote

AMOUNT = 2 * 1250  # the shop fixture's default order: two mugs at 12.50


def test_removing_a_discount_reaches_voucherify(shop, emulator, caplog):
    order = shop.order(status="paid", discount=Decimal("10.00"))
    pushed = remote(emulator, order)
    assert pushed["discount_amount"] == 1000
    assert pushed["total_discount_amount"] == 1000
    assert pushed["total_amount"] == AMOUNT - 1000
    puts = emulator.count(method="PUT", path_prefix="/v1/orders")

    with (
        mock.patch.object(
            VoucherifyClient, "update_order", autospec=True,
            side_effect=VoucherifyClient.update_order,
        ) as update,
        caplog.at_level(logging.WARNING, logger="django_voucherify_orders.sync"),
    ):  # fmt: skip
        order.discount = Decimal(0)
        order.save()

    # Only the change goes, and it is there: a 0, not a missing field.
    (_, source_id, changes), _ = update.call_args
    assert (source_id, changes) == (str(order.pk), {"discount_amount": 0})
    assert emulator.count(method="PUT", path_prefix="/v1/orders") == puts + 1
    assert "Voucherify keeps the old value" not in caplog.text

    # Voucherify holds no discount now, and shows it as Voucherify does: by leaving it out.
    cleared = remote(emulator, order)
    for field in ("discount_amount", "total_discount_amount"):
        assert field not in cleared
    assert cleared["amount"] == AMOUNT
    assert cleared["total_amount"] == AMOUNT
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.SYNCED
    assert row.last_payload["discount_amount"] == 0
    assert row.remote_snapshot.get("discount_amount") is None  # absent, read as None


def test_a_discount_given_again_after_removal_is_pushed(shop, emulator):
    order = shop.order(status="paid", discount=Decimal("10.00"))
    order.discount = Decimal(0)
    order.save()
    assert "discount_amount" not in remote(emulator, order)

    order.discount = Decimal("2.50")
    order.save()

    again = remote(emulator, order)
    assert again["discount_amount"] == 250
    assert again["total_amount"] == AMOUNT - 250


def test_an_order_without_a_discount_sends_zero_from_the_start(shop, emulator):
    order = shop.order(status="paid")

    pushed = remote(emulator, order)
    assert "discount_amount" not in pushed  # a zero is not echoed
    assert pushed["total_amount"] == AMOUNT
    assert OrderSync.objects.get(pk=str(order.pk)).last_payload["discount_amount"] == 0


class _Row:
    voucherify_id = "ord_x"
    payload_hash = "0f3c"  # Voucherify is known to hold last_payload

    def __init__(self, last_payload):
        self.last_payload = last_payload


@pytest.mark.parametrize(
    ("before", "after", "sent"),
    [
        ({"discount_amount": 1000}, {"discount_amount": 0}, {"discount_amount": 0}),
        ({"discount_amount": 0}, {"discount_amount": 1000}, {"discount_amount": 1000}),
        # An order last pushed by a mapper that left a zero discount out.
        ({}, {"discount_amount": 0}, {"discount_amount": 0}),
        ({"metadata": {"note": "x"}}, {"metadata": {}}, {"metadata": {}}),
        ({"items": [{"amount": 1}]}, {"items": []}, {"items": []}),
    ],
)
def test_the_put_carries_a_value_going_to_empty(before, after, sent):
    """The update body is every key whose value differs from the last pushed payload; a
    falsy new value (0, {}, []) is a change like any other."""
    client = mock.Mock(spec=VoucherifyClient)
    client.update_order.return_value = "order"
    last = {"source_id": "7", "status": "PAID", **before}
    payload = {"source_id": "7", "status": "PAID", **after}

    assert _send(client, _Row(last), "7", payload) == ("order", "PUT")
    client.update_order.assert_called_once_with("7", sent)
    client.create_order.assert_not_called()
