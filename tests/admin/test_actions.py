"""The actions: push now, fetch and compare, retry failed; their permissions; Voucherify
errors shown as messages, never as 500 pages. Real commits (transaction=True): the
pushes run after commit, in-process (CELERY_TASK_ALWAYS_EAGER)."""

from __future__ import annotations

from html import unescape

import pytest
from shop.models import Order

from django_voucherify_orders import paused_sync
from django_voucherify_orders.admin.actions import FETCH_LIMIT
from django_voucherify_orders.models import OrderSync, SyncState

from .conftest import SYNC_LIST, texts

pytestmark = pytest.mark.django_db(transaction=True)


def act(client, action: str, *keys, url: str = SYNC_LIST, **extra):
    return client.post(url, {"action": action, "_selected_action": list(keys), **extra})


@pytest.fixture
def pending_orders(make_order):
    """Orders marked for a push that never went (as if the broker had been down)."""

    def make(count: int, **fields):
        with paused_sync():
            return [make_order(**fields) for _ in range(count)]

    return make


def test_push_now_pushes_the_selected_orders(superuser_client, pending_orders, voucherify_emulator):
    orders = pending_orders(3)
    keys = [str(o.pk) for o in orders]
    assert voucherify_emulator.count() == 0

    response = act(superuser_client, "push_now", *keys[:2])

    assert response.status_code == 302
    assert voucherify_emulator.get_order(keys[0])["status"] == "PAID"
    assert voucherify_emulator.get_order(keys[1]) is not None
    assert voucherify_emulator.get_order(keys[2]) is None
    states = dict(OrderSync.objects.values_list("pk", "state"))
    assert [states[k] for k in keys] == [SyncState.SYNCED, SyncState.SYNCED, SyncState.PENDING]
    messages = texts(response)
    assert f"Order {keys[0]} is in Voucherify." in messages
    assert f"Order {keys[1]} is in Voucherify." in messages
    assert any(
        m.startswith("2 orders sent to the push queue: 2 in Voucherify now") for m in messages
    )


def test_push_now_sends_an_unchanged_order_again(superuser_client, make_order, voucherify_emulator):
    order = make_order()  # pushed at commit
    assert voucherify_emulator.count(method="POST") == 1

    act(superuser_client, "push_now", str(order.pk))

    assert voucherify_emulator.count(method="POST") == 2


def test_push_messages_name_a_handful_and_sum_up_the_rest(
    superuser_client, pending_orders, voucherify_emulator
):
    keys = [str(o.pk) for o in pending_orders(12)]

    messages = texts(act(superuser_client, "push_now", *keys))

    assert messages[0] == (
        "12 orders sent to the push queue: 12 in Voucherify now, 0 queued, 0 failed. "
        "5 of them are listed, failures first."
    )
    assert len(messages) == 6
    assert all(m.endswith("is in Voucherify.") for m in messages[1:])


def test_push_messages_list_failures_first(superuser_client, pending_orders, voucherify_emulator):
    orders = pending_orders(7)
    Order.objects.filter(pk=orders[-1].pk).update(status="lost")

    messages = texts(act(superuser_client, "push_now", *[str(o.pk) for o in orders]))

    assert messages[0].startswith(
        "7 orders sent to the push queue: 6 in Voucherify now, 0 queued, 1 failed."
    )
    assert messages[1].startswith(f"Order {orders[-1].pk}: the push failed (invalid_local_data): ")
    assert len(messages) == 6


def test_a_failed_push_is_an_error_message(superuser_client, pending_orders, voucherify_emulator):
    (order,) = pending_orders(1)
    voucherify_emulator.faults.script([400])

    response = act(superuser_client, "push_now", str(order.pk))

    assert response.status_code == 302
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.FAILED
    assert any("the push failed (bad_request)" in m for m in texts(response))


def test_a_deleted_local_order_is_reported(superuser_client, make_syncs, voucherify_emulator):
    row = make_syncs(1, state=SyncState.DELETED)[0]

    response = act(superuser_client, "push_now", row.pk)

    assert texts(response) == [f"Order {row.pk} no longer exists locally; nothing to push."]
    assert voucherify_emulator.count() == 0


def test_retry_failed_pushes_only_failed_rows(
    superuser_client, pending_orders, voucherify_emulator
):
    failed, pending = pending_orders(2)
    OrderSync.objects.filter(pk=str(failed.pk)).update(
        state=SyncState.FAILED, last_error_key="invalid_order"
    )

    response = act(superuser_client, "retry_failed", str(failed.pk), str(pending.pk))

    assert voucherify_emulator.get_order(str(failed.pk)) is not None
    assert voucherify_emulator.get_order(str(pending.pk)) is None
    assert OrderSync.objects.get(pk=str(failed.pk)).state == SyncState.SYNCED
    assert "1 selected order has not failed; it was left alone." in texts(response)


def test_fetch_shows_both_sides_marks_differences_and_refreshes_the_snapshot(
    superuser_client, make_order, voucherify_emulator
):
    order = make_order()
    key = str(order.pk)
    OrderSync.objects.filter(pk=key).update(remote_snapshot=None)
    # Changed locally without a push: the payload now differs from Voucherify's copy.
    Order.objects.filter(pk=order.pk).update(status="shipped")
    gets = voucherify_emulator.count(method="GET")

    response = act(superuser_client, "fetch_from_voucherify", key)

    assert response.status_code == 200
    assert voucherify_emulator.count(method="GET") == gets + 1
    page = unescape(response.content.decode())
    assert "Orders in Voucherify" in page
    assert "1 difference" in page
    assert '<tr class="vo-differs" title="differs">' in page
    assert "FULFILLED" in page and "PAID" in page
    assert '<tr class="vo-same" title="same">' in page  # amount, items ...
    snapshot = OrderSync.objects.get(pk=key).remote_snapshot
    assert snapshot["status"] == "PAID"
    assert snapshot["source_id"] == key
    assert "1 order fetched from Voucherify; its stored snapshot was refreshed." in texts(response)


def test_fetch_of_an_order_voucherify_lacks(superuser_client, pending_orders, voucherify_emulator):
    (order,) = pending_orders(1)

    response = act(superuser_client, "fetch_from_voucherify", str(order.pk))

    assert response.status_code == 200
    assert f"Voucherify has no order {order.pk}." in unescape(response.content.decode())
    assert OrderSync.objects.get(pk=str(order.pk)).remote_snapshot is None


@pytest.mark.parametrize("fault", [500, 401, 429, "drop"])
def test_voucherify_errors_become_messages(
    superuser_client, make_order, voucherify_emulator, fault
):
    orders = [make_order() for _ in range(3)]
    voucherify_emulator.faults.script([fault] * 20)

    response = act(superuser_client, "fetch_from_voucherify", *[str(o.pk) for o in orders])

    assert response.status_code == 302  # back to the list, with messages
    messages = texts(response)
    assert any("Voucherify answered with an error" in m for m in messages)
    # The same failure would repeat: the other orders are not tried.
    assert "Stopped: 2 more orders were not fetched." in messages
    assert "test-secret-key" not in " ".join(messages)


def test_fetch_is_capped(superuser_client, make_syncs, voucherify_emulator):
    rows = make_syncs(FETCH_LIMIT + 5)

    response = act(superuser_client, "fetch_from_voucherify", *[r.pk for r in rows])

    assert response.status_code == 200
    assert voucherify_emulator.count(method="GET") == FETCH_LIMIT
    assert (
        f"Fetching the first {FETCH_LIMIT} of the {FETCH_LIMIT + 5} selected orders "
        "(one call to Voucherify each); select fewer to see the others."
    ) in texts(response)


# --- permissions -----------------------------------------------------------------------------


def action_names(client) -> list[str]:
    response = client.get(SYNC_LIST)
    assert response.status_code == 200
    form = response.context["action_form"]
    if form is None:  # no action at all: no action bar
        return []
    return [name for name, _ in form.fields["action"].choices if name]


def test_each_action_needs_its_permission(staff_client, db):
    assert action_names(staff_client("view_ordersync")) == []
    assert action_names(staff_client("view_ordersync", "push_ordersync")) == [
        "push_now",
        "retry_failed",
    ]
    assert action_names(staff_client("view_ordersync", "view_remote_orders")) == [
        "fetch_from_voucherify"
    ]


def test_the_change_page_buttons_follow_permissions(staff_client, superuser_client, make_syncs):
    row = make_syncs(1, state=SyncState.FAILED)[0]
    url = f"{SYNC_LIST}{row.pk}/change/"

    page = superuser_client.get(url).content.decode()
    for action in ("push_now", "retry_failed", "fetch_from_voucherify"):
        assert f'value="{action}"' in page
    page = staff_client("view_ordersync").get(url).content.decode()
    for action in ("push_now", "retry_failed", "fetch_from_voucherify"):
        assert f'value="{action}"' not in page


def test_a_change_page_button_comes_back_to_the_change_page(
    superuser_client, pending_orders, voucherify_emulator
):
    (order,) = pending_orders(1)
    url = f"{SYNC_LIST}{order.pk}/change/"

    response = act(superuser_client, "push_now", str(order.pk), _voucherify_next=url)

    assert response.status_code == 302
    assert response["Location"] == url
    assert voucherify_emulator.get_order(str(order.pk)) is not None
    # Only paths of this site: anything else goes back to the list.
    response = act(
        superuser_client, "push_now", str(order.pk), _voucherify_next="https://evil.example/"
    )
    assert response["Location"] == SYNC_LIST


def test_an_order_held_back_by_ready_is_not_reported_queued(
    superuser_client, pending_orders, voucherify_emulator, settings
):
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        "MAPPER": "tests.testapp.voucherify.NothingReadyMapper",
    }
    key = str(pending_orders(1)[0].pk)

    response = act(superuser_client, "push_now", key)

    assert voucherify_emulator.get_order(key) is None
    messages = texts(response)
    assert any(m.startswith("1 order sent to the push queue: 0 in Voucherify now, 0 queued, "
                            "1 not pushed, 0 failed.") for m in messages), messages  # fmt: skip
    assert (
        f"Order {key} was not pushed: the mapper's ready() or a before_push receiver "
        "held it back." in messages
    )
