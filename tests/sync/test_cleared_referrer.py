"""No lost change, for a referrer taken away. ``referrer_id`` is nullable in Voucherify's
documents, and an update leaves a field it does not send unchanged: so when the shop clears
an order's referrer, the push sends ``"referrer_id": null``, whether the mapper says ``None``
or stops sending the key, and Voucherify holds no referrer any more."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from shop.voucherify import ShopOrderMapper

from django_voucherify_orders.client.schemas import OrderCreate, OrderUpdate
from django_voucherify_orders.models import OrderSync, SyncState

from .conftest import remote


class SaysNone(ShopOrderMapper):
    """The referrer (a Voucherify customer id) kept in the order's note, None when empty."""

    def to_voucherify(self, order: Any) -> dict[str, Any]:
        return {**super().to_voucherify(order), "referrer_id": order.note or None}


class LeavesItOut(ShopOrderMapper):
    def to_voucherify(self, order: Any) -> dict[str, Any]:
        payload = super().to_voucherify(order)
        if order.note:
            payload["referrer_id"] = order.note
        return payload


@pytest.mark.parametrize("mapper", [SaysNone, LeavesItOut])
def test_clearing_the_referrer_reaches_voucherify(shop, emulator, caplog, mapper):
    referrer = emulator.add_customer(source_id="friend", name="Friend")
    config = {**settings.VOUCHERIFY_ORDERS, "MAPPER": f"{__name__}.{mapper.__name__}"}
    with override_settings(VOUCHERIFY_ORDERS=config):
        order = shop.order(status="paid", note=referrer["id"])
        assert remote(emulator, order)["referrer_id"] == referrer["id"]

        with caplog.at_level(logging.WARNING, logger="django_voucherify_orders.sync"):
            order.note = ""
            order.save()

    cleared = remote(emulator, order)
    assert cleared["referrer_id"] is None
    assert "referrer" not in cleared
    assert [r.method for r in emulator.requests][-1] == "PUT"
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    assert "Voucherify keeps the old value" not in caplog.text


def test_a_referrer_given_as_none_is_sent_as_null_one_not_given_is_not_sent():
    assert OrderUpdate(referrer_id=None).to_json() == {"referrer_id": None}
    assert OrderUpdate(status="PAID").to_json() == {"status": "PAID"}
    assert "referrer_id" not in OrderCreate(source_id="1").to_json()
    # Other fields are not nullable in the documents: None still means "not sent".
    assert OrderUpdate(discount_amount=None, metadata=None).to_json() == {}
