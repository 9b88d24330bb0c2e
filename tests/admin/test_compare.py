"""Fetch and compare, for zero discounts. Voucherify leaves zero discount fields out of the
orders it returns ("zero/absent discount fields are omitted (not 0)", API-NOTES 5.6), and
the client's response model reads that absence as None. The mapper sends a discount of 0
(so that a removed discount is cleared), and the compare must count it in step with what
Voucherify answers; only those fields, and only a 0."""

from __future__ import annotations

from decimal import Decimal
from html import unescape

import pytest
from shop.models import Order

from django_voucherify_orders.admin.diff import compare

from .conftest import SYNC_LIST


def statuses(local, remote) -> dict[str, str]:
    return {diff.path: diff.status for diff in compare(local, remote)}


# --- compare() ------------------------------------------------------------------------------


@pytest.mark.parametrize("remote", [{}, {"discount_amount": None}], ids=["absent", "null"])
def test_a_zero_discount_voucherify_leaves_out_is_the_same(remote):
    assert statuses({"discount_amount": 0}, remote) == {"discount_amount": "same"}


@pytest.mark.parametrize("field", ["discount_amount", "discount_quantity"])
def test_a_zero_item_discount_voucherify_leaves_out_is_the_same(field):
    local = {"items": [{"source_id": "MUG", field: 0}]}
    remote = {"items": [{"source_id": "MUG", "discount_amount": None}]}
    assert statuses(local, remote)[f"items[0].{field}"] == "same"


def test_a_zero_discount_beside_a_real_one_differs():
    rows = compare({"discount_amount": 0}, {"discount_amount": 1000})
    assert [(r.path, r.local, r.remote, r.status) for r in rows] == [
        ("discount_amount", "0", "1000", "differs")
    ]
    assert rows[0].is_difference


def test_a_discount_voucherify_lacks_is_missing():
    assert statuses({"discount_amount": 1000}, {}) == {"discount_amount": "missing"}
    assert statuses({"discount_amount": 1000}, {"discount_amount": None}) == {
        "discount_amount": "differs"
    }


@pytest.mark.parametrize(
    ("local", "path"),
    [
        ({"amount": 0}, "amount"),  # not a discount field: an absent amount is missing
        ({"initial_amount": 0}, "initial_amount"),
        ({"items": [{"amount": 0}]}, "items[0].amount"),
        ({"items": [{"quantity": 0}]}, "items[0].quantity"),
        ({"metadata": {"discount_amount": 0}}, "metadata.discount_amount"),  # shop's own key
        ({"discount_quantity": 0}, "discount_quantity"),  # no such order-level field
        ({"discount_amount": False}, "discount_amount"),  # not the integer 0
        ({"discount_amount": "0"}, "discount_amount"),
    ],
)
def test_missing_is_not_blanket_equal_to_zero(local, path):
    assert statuses(local, {"items": [{}], "metadata": {}})[path] == "missing"


# --- the admin action, against the emulator -------------------------------------------------


def fetch(client, *orders):
    response = client.post(
        SYNC_LIST,
        {"action": "fetch_from_voucherify", "_selected_action": [str(o.pk) for o in orders]},
    )
    assert response.status_code == 200
    return response


def diffs_of(response, order) -> dict[str, tuple[str, str, str]]:
    (item,) = [r for r in response.context["results"] if r.key == str(order.pk)]
    return {d.path: (d.local, d.remote, d.status) for d in item.diffs}


@pytest.mark.django_db(transaction=True)
def test_an_order_with_zero_discount_shows_no_difference_after_a_push(
    superuser_client, make_order, voucherify_emulator
):
    order = make_order()  # pushed at commit, discount 0
    assert "discount_amount" not in voucherify_emulator.get_order(str(order.pk))

    response = fetch(superuser_client, order)

    diffs = diffs_of(response, order)
    assert diffs["discount_amount"] == ("0", "null", "same")
    flagged = [path for path, (_, _, status) in diffs.items() if status != "same"]
    assert all(diffs[path][2] == "not_echoed" for path in flagged), flagged
    page = unescape(response.content.decode())
    assert "in step" in page
    assert '<tr class="vo-differs"' not in page
    assert '<tr class="vo-missing"' not in page
    assert '<tr class="vo-same" title="same">' in page


@pytest.mark.django_db(transaction=True)
def test_a_removed_discount_is_in_step_once_pushed(
    superuser_client, make_order, voucherify_emulator
):
    order = make_order(discount=Decimal("10.00"))
    assert voucherify_emulator.get_order(str(order.pk))["discount_amount"] == 1000

    order.discount = Decimal(0)
    order.save()  # pushed at commit: the PUT carries discount_amount 0
    assert "discount_amount" not in voucherify_emulator.get_order(str(order.pk))

    response = fetch(superuser_client, order)

    assert diffs_of(response, order)["discount_amount"] == ("0", "null", "same")
    assert response.context["results"][0].differences == 0


@pytest.mark.django_db(transaction=True)
def test_a_removed_discount_not_yet_pushed_is_a_difference(
    superuser_client, make_order, voucherify_emulator
):
    order = make_order(discount=Decimal("10.00"))
    Order.objects.filter(pk=order.pk).update(discount=Decimal(0))  # no signal, no push

    response = fetch(superuser_client, order)

    assert diffs_of(response, order)["discount_amount"] == ("0", "1000", "differs")
    assert response.context["results"][0].differences == 1
    assert "1 difference" in unescape(response.content.decode())
