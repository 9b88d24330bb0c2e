"""OscarOrderMapper on the real django-oscar: orders placed Oscar's way, checked in the emulator.

Every case ends with the amount Voucherify holds (its ``total_amount``) equal to Oscar's
``total_incl_tax`` (or ``total_excl_tax``) in the currency's minor units.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.db import transaction
from django.test import override_settings

from django_voucherify_orders.mapping import to_minor_units
from django_voucherify_orders.models import OrderSync, SyncState

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def remote(emulator, order):
    held = emulator.get_order(order.number)
    assert held is not None, f"Voucherify has no order {order.number}"
    return held


def assert_total(emulator, order, basis="incl"):
    order.refresh_from_db()
    expected = getattr(order, f"total_{basis}_tax")
    held = remote(emulator, order)
    assert held["total_amount"] == to_minor_units(expected, order.currency)
    assert held["amount"] == sum(item["amount"] for item in held["items"])
    return held


def sync_row(order):
    return OrderSync.objects.get(pk=str(order.pk))


def test_the_status_pipeline(oscar_shop, emulator):
    order = oscar_shop.place()
    assert remote(emulator, order)["status"] == "CREATED"

    order.set_status("Being processed")
    assert remote(emulator, order)["status"] == "PAID"
    order.set_status("Complete")
    held = assert_total(emulator, order)
    assert held["status"] == "FULFILLED"
    assert held["metadata"]["oscar_status"] == "Complete"

    other = oscar_shop.place()
    other.set_status("Cancelled")
    assert remote(emulator, other)["status"] == "CANCELED"


def test_a_rolled_back_status_change_sends_nothing(oscar_shop, emulator):
    order = oscar_shop.place()
    calls = len(emulator.requests)

    with pytest.raises(RuntimeError), transaction.atomic():
        order.set_status("Being processed")
        raise RuntimeError("payment gateway said no")

    assert len(emulator.requests) == calls
    assert remote(emulator, order)["status"] == "CREATED"
    assert sync_row(order).state == SyncState.SYNCED


def test_one_line_one_item_with_quantity_unit_price_and_amount(oscar_shop, emulator):
    mug = oscar_shop.product("12.50", upc="MUG-1", title="Mug")
    order = oscar_shop.place([(mug, 3), (oscar_shop.product("8.00"), 1)])

    held = assert_total(emulator, order)
    mug_item = held["items"][0]
    assert mug_item["source_id"] == "MUG-1"
    assert (mug_item["quantity"], mug_item["price"], mug_item["amount"]) == (3, 1250, 3750)
    assert held["items"][1]["amount"] == 800
    assert held["created_at"].startswith(order.date_placed.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_voucher_s_offer_is_an_item_discount_and_metadata(oscar_shop, emulator):
    f = oscar_shop.factories
    voucher = f.create_voucher(code="WELCOME")
    order = oscar_shop.place(
        [(oscar_shop.product("10.00"), 2)], vouchers=[voucher], user=f.UserFactory()
    )

    held = assert_total(emulator, order)
    line = order.lines.get()
    item = held["items"][0]
    assert item["amount"] == to_minor_units(line.line_price_before_discounts_incl_tax, "GBP")
    assert item["discount_amount"] == to_minor_units(line.discount_incl_tax, "GBP") > 0
    assert held["metadata"]["vouchers"] == ["WELCOME"]
    assert held["metadata"]["offers"] == [voucher.offers.get().name]  # its 20% off
    assert held["total_discount_amount"] == item["discount_amount"]


def test_shipping_is_voucherify_s_shipping_product_with_its_discount(oscar_shop, emulator):
    from oscar.apps.offer.models import Benefit

    f = oscar_shop.factories
    everything, _ = f.Range.objects.get_or_create(name="All", includes_all_products=True)
    f.create_offer(
        name="2 off shipping",
        benefit=Benefit.objects.create(range=everything, type=Benefit.SHIPPING_ABSOLUTE, value=2),
    )
    order = oscar_shop.place(shipping=("5.00", "6.00"))

    held = assert_total(emulator, order)
    shipping = held["items"][-1]
    assert shipping["product_id"] == "prod_5h1pp1ng"
    assert order.shipping_incl_tax == D("4.00")
    assert (shipping["amount"], shipping["discount_amount"]) == (600, 200)
    assert held["metadata"]["offers"] == ["2 off shipping"]


def test_surcharges_are_items(oscar_shop, emulator):
    order = oscar_shop.place(surcharges=[("1.00", "1.20"), ("0.50", "0.60")], taxed=True)

    held = assert_total(emulator, order)
    fees = [item for item in held["items"] if item.get("source_id", "").startswith("surcharge")]
    assert [(fee["source_id"], fee["amount"]) for fee in fees] == [
        ("surcharge-fee-0", 120),
        ("surcharge-fee-1", 60),
    ]


@override_settings(
    VOUCHERIFY_ORDERS={
        **__import__("django.conf").conf.settings.VOUCHERIFY_ORDERS,
        "OSCAR": {"TAX_INCLUSIVE": False},
    }
)
def test_tax_exclusive_amounts(oscar_shop, emulator):
    order = oscar_shop.place(shipping=("5.00", "6.00"), surcharges=[("1.00", "1.20")], taxed=True)

    held = assert_total(emulator, order, basis="excl")
    assert order.total_excl_tax != order.total_incl_tax
    assert held["metadata"]["tax_inclusive"] is False


def test_customers_registered_guests_and_deleted_users(oscar_shop, emulator):
    user = oscar_shop.factories.UserFactory(email="ada@example.com")
    registered = oscar_shop.place(user=user)
    guest = oscar_shop.place(guest_email="Grace@Example.com")

    ada = remote(emulator, registered)["customer_id"]
    assert sync_row(registered).last_payload["customer"]["source_id"] == f"user-{user.pk}"
    assert sync_row(guest).last_payload["customer"] == {
        "source_id": "grace@example.com",
        "email": "Grace@Example.com",
    }
    assert remote(emulator, guest)["customer_id"] not in (None, ada)

    user.delete()  # Oscar keeps the order, its user set to NULL
    registered.refresh_from_db()
    registered.set_status("Being processed")

    assert sync_row(registered).state == SyncState.SYNCED
    held = remote(emulator, registered)
    assert held["status"] == "PAID"
    assert held["customer_id"] == ada  # Voucherify keeps who placed it


def test_cancelled_and_deleted_lines_are_left_out(oscar_shop, emulator):
    order = oscar_shop.place([(oscar_shop.product(p), 1) for p in ("10.00", "4.00", "2.50")])
    _, second, third = order.lines.all()

    second.set_status("Being processed")
    second.set_status("Cancelled")
    third.delete()

    held = remote(emulator, order)
    assert [item["amount"] for item in held["items"]] == [1000]
    assert held["total_amount"] == 1000  # Oscar keeps the total it was placed with


@pytest.mark.parametrize(
    ("currency", "price", "expected_unit"),
    [("JPY", "1234", 1481), ("KWD", "12.34", 14810), ("USD", "12.34", 1481)],
)
def test_every_currency_exponent_adds_up_exactly(
    oscar_shop, emulator, currency, price, expected_unit
):
    # UK's 20% VAT on 1234 JPY is 246.80: each line costs 1480.80, three of them 4442.40.
    products = [oscar_shop.product(price, currency=currency) for _ in range(3)]
    order = oscar_shop.place([(product, 1) for product in products], taxed=True)

    assert order.currency == currency
    held = assert_total(emulator, order)
    assert held["metadata"]["currency"] == currency
    assert held["items"][0]["price"] == expected_unit
    if currency == "JPY":  # rounding each line would make 4443
        assert held["total_amount"] == 4442


def test_a_deleted_product_falls_back_to_the_partner_sku(oscar_shop, emulator):
    product = oscar_shop.product("10.00", upc="GONE-1")
    order = oscar_shop.place([(product, 1)])
    assert remote(emulator, order)["items"][0]["source_id"] == "GONE-1"
    sku = order.lines.get().partner_sku

    product.delete()  # SET_NULL on the line, without a signal to it
    order.set_status("Being processed")

    held = assert_total(emulator, order)
    assert held["items"][0]["source_id"] == sku
    assert held["status"] == "PAID"


def test_an_unmapped_status_fails_that_order_naming_the_setting(oscar_shop, emulator):
    order = oscar_shop.place()
    order.status = "On hold"  # a status the shop added to its pipeline, not to our map
    order.save()

    row = sync_row(order)
    assert row.state == SyncState.FAILED
    assert row.last_error_key == "invalid_local_data"
    assert "'On hold'" in row.last_error_message
    assert 'VOUCHERIFY_ORDERS["OSCAR"]["STATUS_MAP"]' in row.last_error_message

    from django.conf import settings

    mapped = {**settings.VOUCHERIFY_ORDERS, "OSCAR": {"STATUS_MAP": {"On hold": "PAID"}}}
    with override_settings(VOUCHERIFY_ORDERS=mapped):
        order.save()
        assert sync_row(order).state == SyncState.SYNCED
        assert remote(emulator, order)["status"] == "PAID"


def test_mapping_n_orders_costs_a_fixed_number_of_queries(oscar_shop, emulator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_voucherify_orders.mapping import get_mapper

    oscar_shop.factories.create_offer()
    for index in range(6):
        oscar_shop.place(
            [(oscar_shop.product(), 2), (oscar_shop.product("3.00"), 1)],
            guest_email=f"g{index}@example.com", shipping=("1.00", "1.20"),
            surcharges=[("0.10", "0.12")],
        )  # fmt: skip
    mapper = get_mapper()

    def queries(count: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            for order in mapper.get_queryset().order_by("pk")[:count]:
                mapper.build(order)
        return len(captured)

    # orders, lines (with products), line discounts, order discounts, surcharges, payments
    assert queries(1) == queries(6) <= 6


def test_a_payment_event_makes_an_order_paid_when_asked(oscar_shop, emulator, settings):
    """Oscar has no "paid" status: shops that record payments as events can say which."""
    from oscar.apps.order.processing import EventHandler
    from oscar.core.loading import get_model

    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        "OSCAR": {"PAID_EVENT_TYPES": ["Settled"]},
    }
    settled = get_model("order", "PaymentEventType").objects.create(name="Settled")
    authorised = get_model("order", "PaymentEventType").objects.create(name="Authorised")
    order = oscar_shop.place()
    assert remote(emulator, order)["status"] == "CREATED"

    with transaction.atomic():
        EventHandler().create_payment_event(order, authorised, order.total_incl_tax)
    assert remote(emulator, order)["status"] == "CREATED"

    with transaction.atomic():  # as a payment gateway's callback records it
        EventHandler().create_payment_event(order, settled, order.total_incl_tax)
    assert remote(emulator, order)["status"] == "PAID"

    order.set_status("Cancelled")  # a status that maps to something else still wins
    assert remote(emulator, order)["status"] == "CANCELED"


def test_payment_events_change_nothing_unless_asked(oscar_shop, emulator):
    from oscar.apps.order.processing import EventHandler
    from oscar.core.loading import get_model

    settled = get_model("order", "PaymentEventType").objects.create(name="Settled")
    order = oscar_shop.place()
    with transaction.atomic():
        EventHandler().create_payment_event(order, settled, order.total_incl_tax)
    assert remote(emulator, order)["status"] == "CREATED"
