"""VoucherifySyncAdminMixin in the example shop's OrderAdmin."""

from __future__ import annotations

from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from shop.models import Order

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

from .conftest import SHOP_ORDERS, texts


def changelist_queries(client, url: str = SHOP_ORDERS) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", [SHOP_ORDERS, f"{SHOP_ORDERS}?voucherify_sync=failed"])
def test_the_sync_column_costs_no_query_per_row(superuser_client, make_order, url):
    for _ in range(5):
        make_order()
    five = changelist_queries(superuser_client, url)
    for _ in range(45):
        make_order()
    OrderSync.objects.filter(
        pk__in=list(OrderSync.objects.values_list("pk", flat=True)[:20])
    ).update(state=SyncState.FAILED, last_error_key="invalid_order")
    assert changelist_queries(superuser_client, url) == five


def test_the_column_and_the_filter(superuser_client, make_order, voucherify_emulator):
    synced, failed, untracked = make_order(), make_order(), make_order()
    OrderSync.objects.filter(pk=str(synced.pk)).update(state=SyncState.SYNCED)
    OrderSync.objects.filter(pk=str(failed.pk)).update(
        state=SyncState.FAILED, last_error_key="invalid_order"
    )
    OrderSync.objects.filter(pk=str(untracked.pk)).delete()

    response = superuser_client.get(SHOP_ORDERS)
    page = unescape(response.content.decode())

    assert voucherify_emulator.count() == 0
    assert '<th scope="col" class="sortable column-voucherify_sync_state">' in page
    assert 'title="invalid_order">Failed</span>' in page
    assert ">Synced</span>" in page and ">not tracked</span>" in page

    def shown(query: str) -> list[int]:
        return [
            o.pk for o in superuser_client.get(f"{SHOP_ORDERS}?{query}").context["cl"].result_list
        ]

    assert shown("voucherify_sync=failed") == [failed.pk]
    assert shown("voucherify_sync=none") == [untracked.pk]
    column = response.context["cl"].list_display.index("voucherify_sync_state")
    by_state = shown(f"o={column}")  # sortable: failed < pending < synced, untracked first/last
    assert by_state.index(failed.pk) < by_state.index(synced.pk)


def test_the_actions_follow_permissions(superuser_client, staff_client, db):
    def actions(client) -> list[str]:
        form = client.get(SHOP_ORDERS).context["action_form"]
        return [name for name, _ in form.fields["action"].choices if name]

    assert {"push_now", "fetch_from_voucherify", "retry_failed"} <= set(actions(superuser_client))
    assert actions(staff_client("view_order", "delete_order")) == ["delete_selected"]
    assert "push_now" in actions(staff_client("view_order", "push_ordersync"))


@pytest.mark.django_db(transaction=True)
def test_push_now_from_the_shops_changelist(superuser_client, make_order, voucherify_emulator):
    with paused_sync():
        order = make_order()

    response = superuser_client.post(
        SHOP_ORDERS, {"action": "push_now", "_selected_action": [order.pk]}
    )

    assert response.status_code == 302
    assert voucherify_emulator.get_order(str(order.pk))["status"] == "PAID"
    assert f"Order {order.pk} is in Voucherify." in texts(response)


@pytest.mark.django_db(transaction=True)
def test_fetch_from_the_shops_changelist(superuser_client, make_order, voucherify_emulator):
    order = make_order()

    response = superuser_client.post(
        SHOP_ORDERS, {"action": "fetch_from_voucherify", "_selected_action": [order.pk]}
    )

    assert response.status_code == 200
    assert "in step" in response.content.decode()


def test_the_change_page_panel(superuser_client, staff_client, make_order):
    order = make_order()
    row = OrderSync.objects.get(pk=str(order.pk))
    OrderSync.objects.filter(pk=row.pk).update(
        state=SyncState.FAILED,
        voucherify_id="ord_abc",
        last_error_key="invalid_order",
        last_error_message="amount is wrong",
    )
    from django.utils import timezone

    SyncAttempt.objects.create(
        sync=row, started_at=timezone.now(), method="POST", path="/v1/orders", status_code=400
    )
    url = f"{SHOP_ORDERS}{order.pk}/change/"

    page = unescape(superuser_client.get(url).content.decode())

    assert "<h2>Voucherify</h2>" in page or ">Voucherify</h2>" in page
    for text in ("ord_abc", "invalid_order", "amount is wrong", "POST /v1/orders", "Failed"):
        assert text in page
    for action in ("push_now", "retry_failed", "fetch_from_voucherify"):
        assert f'value="{action}"' in page
    assert f'formaction="{SHOP_ORDERS}"' in page
    assert f"/admin/voucherify_orders/ordersync/{order.pk}/change/" in page

    viewer = unescape(staff_client("view_order").get(url).content.decode())
    assert "ord_abc" in viewer
    assert 'value="push_now"' not in viewer and "formaction" not in viewer


def test_the_add_page_has_no_panel(superuser_client, db):
    page = superuser_client.get(f"{SHOP_ORDERS}add/").content.decode()
    assert "voucherify_sync_panel" not in page and "Sync state" not in page


@pytest.mark.django_db(transaction=True)
def test_the_panel_buttons_push_and_come_back(superuser_client, make_order, voucherify_emulator):
    with paused_sync():
        order = make_order()
    url = f"{SHOP_ORDERS}{order.pk}/change/"
    # The button submits the change form to the changelist: its fields come along.
    form = {
        "customer": order.customer_id,
        "number": "CHANGED-NOT-SAVED",
        "status": "paid",
        "action": "push_now",
        "_selected_action": str(order.pk),
        "_voucherify_next": url,
    }

    response = superuser_client.post(SHOP_ORDERS, form)

    assert response.status_code == 302
    assert response["Location"] == url
    assert voucherify_emulator.get_order(str(order.pk)) is not None
    assert Order.objects.get(pk=order.pk).number == order.number  # the form was not saved
