"""An Oscar shop's history: voucherify_import, then export and reconcile, all clean."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from django.core.management import call_command

from django_voucherify_orders import paused_sync
from django_voucherify_orders.mapping import to_minor_units
from django_voucherify_orders.models import ExportJob, OrderSync, SyncState

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# 300 in CI (placing an order Oscar's way costs ~60 ms); VOUCHERIFY_OSCAR_HISTORY=3000 for
# a longer history, a batch boundary crossed.
HISTORY = int(os.environ.get("VOUCHERIFY_OSCAR_HISTORY", "300"))


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def place_history(oscar_shop, count: int) -> list:
    """Orders of every kind Oscar makes: registered and guest customers, taxed and not,
    shipping, surcharges, three currencies, every status of the pipeline."""
    f = oscar_shop.factories
    f.create_offer(name="Site 20%")
    users = [f.UserFactory() for _ in range(5)]
    products = {
        currency: [oscar_shop.product(price, currency=currency) for price in prices]
        for currency, prices in {
            "GBP": ("9.99", "12.34", "0.99"),
            "JPY": ("1234", "99"),
            "KWD": ("12.34", "7.07"),
        }.items()
    }
    walks = [(), ("Being processed",), ("Being processed", "Complete"), ("Cancelled",)]
    kinds = itertools.cycle(itertools.product(products, walks, (True, False)))
    orders = []
    with paused_sync():
        for index in range(count):
            currency, walk, taxed = next(kinds)
            catalogue = products[currency]
            lines = [
                (catalogue[(index + k) % len(catalogue)], 1 + (index + k) % 3) for k in range(2)
            ]
            order = oscar_shop.place(
                lines,
                user=users[index % 5] if index % 3 else None,
                guest_email="" if index % 3 else f"guest{index}@example.com",
                shipping=("3.00", "3.60") if index % 2 else None,
                surcharges=[("0.50", "0.60")] if index % 7 == 0 else (),
                taxed=taxed,
            )  # fmt: skip
            for status in walk:
                order.set_status(status)
            orders.append(order)
    return orders


def test_the_history_is_imported_exported_and_reconciled_clean(
    oscar_shop, emulator, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    orders = place_history(oscar_shop, HISTORY)
    assert emulator.count(method="POST") == 0  # paused: nothing went live
    OrderSync.objects.all().delete()  # the history of a shop that installs the app now

    out = run("voucherify_import", "--no-progress")

    assert f"{HISTORY} orders selected, {HISTORY} imported, 0 failed" in out
    assert OrderSync.objects.filter(state=SyncState.SYNCED).count() == HISTORY
    for order in orders:
        order.refresh_from_db()
        held = emulator.get_order(order.number)
        assert held["total_amount"] == to_minor_units(order.total_incl_tax, order.currency), order
    statuses = {emulator.get_order(o.number)["status"] for o in orders}
    assert statuses == {"CREATED", "PAID", "FULFILLED", "CANCELED"}

    assert "No drift." in run("voucherify_reconcile", "--poll-interval", "0")
    run("voucherify_export", "--poll-interval", "0")
    assert ExportJob.objects.latest("pk").row_count == HISTORY


def test_ids_take_oscar_order_numbers(oscar_shop, emulator):
    with paused_sync():
        orders = [oscar_shop.place() for _ in range(3)]

    run("voucherify_import", "--ids", f"{orders[0].number},{orders[2].number}", "--no-progress")

    assert {o["source_id"] for o in emulator.orders()} == {orders[0].number, orders[2].number}
