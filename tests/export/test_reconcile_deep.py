"""voucherify_reconcile --deep: one GET per order, every field the mapper sends compared,
resumable after Ctrl-C or an outage, --fix included."""

from __future__ import annotations

import re

import pytest
from shop.models import Customer, Order, OrderItem

from django_voucherify_orders.client import VoucherifyClient
from django_voucherify_orders.conf import get_client
from django_voucherify_orders.models import ExportJob

from .test_reconcile_exit import exit_status

pytestmark = pytest.mark.django_db(transaction=True)

GET_ORDER = re.compile(r"^/v1/orders/ord_")


def order_gets(emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and GET_ORDER.match(r.path))


@pytest.fixture
def orders(synced_shop):
    """Orders with items, a customer, metadata (a note on one), a zero discount."""
    shop = synced_shop
    made = [
        shop.order(status="paid", items=[("mug", 2), ("tea", 1)]),
        shop.order(status="shipped", note="gift wrap"),
        shop.order(status="new", items=[("tea", 3), ("tea", 1)]),  # two lines of one product
        shop.order(status="cancelled"),
    ]
    return made


def line_of(out: str, order) -> str:
    return next(line for line in out.splitlines() if line.split()[1:2] == [str(order.pk)])


def test_a_clean_pair_reports_no_drift_with_one_get_per_order(orders, emulator, media):
    status, out, err = exit_status("--deep", "--no-progress")

    assert (status, err.splitlines()[-1]) == (0, "reconcile --deep: 4/4 orders checked")
    assert "Compared 4 local orders with 4 in Voucherify" in out and "No drift." in out
    assert order_gets(emulator) == 4


def test_changes_on_voucherify_side_are_reported_per_order_and_field(orders, emulator, media):
    first, noted, *_ = orders
    client = get_client()
    mug, tea = (dict(i) for i in first_payload_items(first))
    client.update_order(str(first.pk), {"items": [{**mug, "quantity": 3}, tea]})
    client.update_order(
        str(noted.pk),
        {"metadata": {"number": noted.number, "currency": "EUR", "note": "no wrap", "gift": True}},
    )
    other = Customer.objects.create(name="Bob", email="bob@example.com")
    client.update_order(str(orders[2].pk), {"customer": {"source_id": f"customer-{other.pk}"}})

    status, out, err = exit_status("--deep", "--no-progress")

    assert status == 1
    assert "Different in Voucherify (status or amount): 3" in out
    assert "items differ (quantity of product MUG 3 → 2)" in line_of(out, first)
    assert (
        "metadata.note differs (no wrap → gift wrap), metadata.gift only in Voucherify"
        in line_of(out, noted)
    )
    assert re.search(
        r"customer differs \(Voucherify's order points at cust_\w+; the last push left "
        r"cust_\w+\)",
        line_of(out, orders[2]),
    )
    assert "drift found: 0 missing, 3 different" in err


def first_payload_items(order):
    from django_voucherify_orders.mapping import get_mapper

    return get_mapper().build(order).to_json()["items"]


def test_changes_here_that_were_never_pushed_are_reported(orders, media):
    first, noted, third, _ = orders
    OrderItem.objects.filter(order=first, product__sku="TEA").update(quantity=4)  # no signal
    Order.objects.filter(pk=noted.pk).update(note="")
    other = Customer.objects.create(name="Bob")
    Order.objects.filter(pk=third.pk).update(customer=other)

    status, out, _ = exit_status("--deep", "--no-progress")

    assert status == 1
    assert (
        "amount differs (3300 → 5700), items differ (quantity of product TEA 1 → 4; "
        "amount of product TEA 800 → 3200)" in line_of(out, first)
    )
    assert "metadata.note only in Voucherify" in line_of(out, noted)
    assert "customer differs (changed here since the last push)" in line_of(out, third)


def test_the_shallow_run_does_not_see_what_deep_sees(orders, emulator, media):
    """Why --deep exists: item changes that keep the amounts are invisible to the export."""
    first = orders[0]
    mug, tea = first_payload_items(first)
    changed = [{**mug, "quantity": 1, "price": 2500}, {**tea, "metadata": {"engraving": "A"}}]
    get_client().update_order(str(first.pk), {"items": changed})

    assert exit_status()[0] == 0
    status, out, _ = exit_status("--deep", "--no-progress")
    assert status == 1
    assert (
        "items differ (quantity of product MUG 1 → 2; price of product MUG 2500 → 1250; "
        "metadata.engraving only in Voucherify of product TEA)" in line_of(out, first)
    )


def test_fix_in_deep_mode_pushes_and_the_next_run_is_clean(orders, emulator, media):
    first, noted, *_ = orders
    OrderItem.objects.filter(order=first, product__sku="TEA").update(quantity=4)
    get_client().update_order(str(noted.pk), {"metadata": {"gift": True}})

    status, out, _ = exit_status("--deep", "--fix", "--no-progress")

    assert status == 0
    assert "2 orders marked changed and pushed, run again to confirm." in out
    status, out, _ = exit_status("--deep", "--no-progress")
    assert (status, "No drift." in out) == (0, True)


@pytest.fixture
def many(synced_shop):
    return [synced_shop.order(status="paid") for _ in range(5)]


def stop_at_get(monkeypatch, number: int, stop) -> list[str]:
    """The ``number``-th GET of an order runs ``stop()`` first (Ctrl-C, an outage)."""
    seen: list[str] = []
    real = VoucherifyClient.get_order

    def get_order(self, order_id):
        seen.append(order_id)
        if len(seen) == number:
            stop()
        return real(self, order_id)

    monkeypatch.setattr(VoucherifyClient, "get_order", get_order)
    return seen


@pytest.mark.parametrize("how", ["ctrl-c", "voucherify down"])
def test_an_interrupted_deep_run_says_how_to_continue_and_continuing_checks_only_the_rest(
    many, emulator, media, monkeypatch, how
):
    second, fifth = many[1], many[4]
    Order.objects.filter(pk=second.pk).update(status="cancelled")  # drift in the first batch
    Order.objects.filter(pk=fifth.pk).update(status="cancelled")  # and in the last

    def stop() -> None:
        if how == "ctrl-c":
            raise KeyboardInterrupt
        emulator.faults.script([503] * 10)  # down for longer than the client retries

    seen = stop_at_get(monkeypatch, 3, stop)  # the first order of the second batch
    status, out, err = exit_status("--deep", "--batch-size", "2", "--no-progress")

    assert status == 2
    assert "Compared 2 local orders" in out and f"{second.pk} " in out  # batch 1 reported
    why = "interrupted" if how == "ctrl-c" else "stopped (GET /v1/orders/"
    assert f"reconcile {why}" in err
    assert (
        f"Continue with: manage.py voucherify_reconcile --deep --batch-size 2 "
        f"--resume-after {second.pk}" in err
    )

    emulator.faults.clear()
    before = len(seen)
    status, out, err = exit_status(
        "--deep", "--batch-size", "2", "--no-progress", "--resume-after", str(second.pk)
    )
    assert status == 1, err
    assert len(seen) - before == 3  # third, fourth, fifth: not the two checked before
    assert "Compared 3 local orders with 5 in Voucherify" in out
    assert f"{fifth.pk} " in out and f"{second.pk} " not in out
    assert "0 remote only" in err  # the orders checked before are not "Voucherify's only"


def test_the_export_is_not_kept_unless_asked(many, media):
    exit_status("--deep", "--no-progress")
    exit_status("--keep-export")

    plain, kept = ExportJob.objects.order_by("pk")
    assert plain.file.name == "" and kept.file.name
    assert sorted(p.name for p in media.rglob("*.csv")) == [kept.file.name.rsplit("/", 1)[1]]


def test_a_deep_run_stopped_by_a_busy_rate_limiter_says_how_to_continue(
    many, emulator, media, monkeypatch
):
    """Live sync saw a 429 asking every worker to wait an hour: the deep run's next GET
    gets no slot. It is an interruption to continue later, not a crash."""
    import time

    from django.core.cache import cache

    from django_voucherify_orders.sync.limiter import SharedRateLimiter

    second = many[1]

    def stop() -> None:
        SharedRateLimiter(None).pause_until(time.time() + 3600)

    seen = stop_at_get(monkeypatch, 3, stop)  # the first order of the second batch
    try:
        status, out, err = exit_status("--deep", "--batch-size", "2", "--no-progress")
    finally:
        cache.clear()

    assert status == 2, err
    assert "Compared 2 local orders" in out  # the first batch's findings are kept
    assert "shared rate limit is busy" in err
    assert (
        f"Continue with: manage.py voucherify_reconcile --deep --batch-size 2 "
        f"--resume-after {second.pk}" in err
    )
    assert len(seen) == 3
