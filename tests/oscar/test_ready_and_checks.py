"""The mapper's ready() hook (an order is pushed once Oscar has placed it) and the checks."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_voucherify_orders.models import OrderSync, SyncState

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def with_oscar_options(**options):
    return override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "OSCAR": options})


def test_an_order_written_line_by_line_is_pushed_once_it_has_lines(oscar_shop, emulator):
    f = oscar_shop.factories
    order = f.OrderFactory()  # in autocommit, no lines yet: not placed

    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.SKIPPED
    assert emulator.count(method="POST") == 0
    assert emulator.get_order(order.number) is None

    product = oscar_shop.product("10.00", upc="TEA-1")
    f.OrderLineFactory(order=order, product=product, stockrecord=product.stockrecords.first())

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    held = emulator.get_order(order.number)
    assert [item["quantity"] for item in held["items"][:1]] == [1]
    assert emulator.count(method="POST") == 1  # the first data Voucherify saw is complete


@with_oscar_options(HOLD_STATUSES=["Pending"])
def test_hold_statuses_keep_an_order_back_until_it_moves_on(oscar_shop, emulator):
    order = oscar_shop.place()

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SKIPPED
    assert emulator.get_order(order.number) is None

    order.set_status("Being processed")

    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED
    assert emulator.get_order(order.number)["status"] == "PAID"


def check_errors() -> str:
    try:
        call_command("check", "--tag", "compatibility", stdout=None)
    except SystemCheckError as exc:
        return str(exc)
    return ""


def test_the_sandbox_pipeline_passes_the_checks(db):
    assert check_errors() == ""


@override_settings(
    OSCAR_ORDER_STATUS_PIPELINE={
        **settings.OSCAR_ORDER_STATUS_PIPELINE,
        "Pending": ("On hold", "Being processed", "Cancelled"),
        "On hold": ("Being processed",),
    }
)
def test_a_pipeline_status_without_a_voucherify_status_is_an_error(db):
    errors = check_errors()
    assert "vo.E102" in errors and "'On hold'" in errors
    assert '"STATUS_MAP": {"On hold": "PAID"}' in errors

    with with_oscar_options(STATUS_MAP={"On hold": "CREATED"}):
        assert check_errors() == ""


@with_oscar_options(STATUS_MAP={"Pending": "SHIPPED"}, TAX="incl")
def test_bad_oscar_options_are_named(db):
    errors = check_errors()
    assert "vo.E101" in errors
    assert "STATUS_MAP.Pending" in errors and "'TAX'" in errors
