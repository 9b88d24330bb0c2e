"""The "Orders in Voucherify" page (calls the API, only when asked) and the health page
(never calls it)."""

from __future__ import annotations

import time
from datetime import timedelta
from html import unescape

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_voucherify_orders.health import hourly_attempts, hourly_chart_svg
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.sync import LAST_RATE_LIMIT_KEY

from .conftest import HEALTH, REMOTE, texts


@pytest.fixture
def remote_orders(voucherify_emulator, make_order):
    """Voucherify holds 7 of our orders (rows linked) and 5 orders the shop never sent."""
    from django_voucherify_orders.conf import get_client

    client = get_client()
    ours = []
    for _ in range(7):
        order = make_order()
        ours.append(order)
        client.create_order(
            {"source_id": str(order.pk), "status": "PAID", "amount": 100, "items": []}
        )
        # The row live sync keeps (a push would have set source_id).
        OrderSync.objects.update_or_create(
            order_pk=str(order.pk), defaults={"source_id": str(order.pk)}
        )
    for n in range(5):
        client.create_order({"source_id": f"elsewhere-{n}", "amount": 50})
    return ours


def test_opening_the_page_calls_nothing(superuser_client, remote_orders, voucherify_emulator):
    before = voucherify_emulator.count()

    response = superuser_client.get(REMOTE)

    assert response.status_code == 200
    assert voucherify_emulator.count() == before
    assert "Load from Voucherify" in response.content.decode()


def test_a_page_of_remote_orders_with_links_to_ours(
    superuser_client, remote_orders, voucherify_emulator
):
    before = voucherify_emulator.count(method="GET")

    response = superuser_client.get(REMOTE, {"page": 1, "limit": 10, "order": "created_at"})

    assert voucherify_emulator.count(method="GET") == before + 1
    page = unescape(response.content.decode())
    assert "Orders 1\N{EN DASH}10 of 12 held by Voucherify (page 1 of 2)." in page
    rows = response.context["orders"]
    assert [r["order"].source_id for r in rows[:7]] == [str(o.pk) for o in remote_orders]
    first = remote_orders[0]
    assert f'<a href="/admin/shop/order/{first.pk}/change/">{first.number}</a>' in page
    assert rows[8]["local_url"] is None and "not ours" in page
    assert response.context["next_url"] == "?page=2&limit=10&order=created_at"

    second = superuser_client.get(REMOTE + response.context["next_url"])
    assert [r["order"].source_id for r in second.context["orders"]] == [
        "elsewhere-3",
        "elsewhere-4",
    ]
    assert second.context["previous_url"] == "?page=1&limit=10&order=created_at"


def test_amounts_are_shown_in_the_currency_the_order_names(superuser_client, voucherify_emulator):
    """The example shop (like most) keeps the currency in metadata; Voucherify has none."""
    from django_voucherify_orders.conf import get_client

    client = get_client()
    for source_id, amount, currency in [("eur", 1999, "EUR"), ("jpy", 1500, "JPY"),
                                        ("kwd", 12345, "KWD"), ("none", 700, None)]:  # fmt: skip
        metadata = {"currency": currency} if currency else {}
        client.create_order({"source_id": source_id, "amount": amount, "metadata": metadata})

    response = superuser_client.get(REMOTE, {"page": 1, "limit": 10, "order": "created_at"})

    cells = [row["amount"] for row in response.context["orders"]]
    assert cells == ["19.99 EUR", "1500 JPY", "12.345 KWD", "700"]
    page = unescape(response.content.decode())
    assert "An amount without a currency is in minor units (1999 is 19.99)." in page


def test_only_orders_without_a_currency_get_the_minor_units_note(
    superuser_client, voucherify_emulator
):
    from django_voucherify_orders.conf import get_client

    get_client().create_order({"source_id": "jpy", "amount": 1500, "metadata": {"currency": "JPY"}})

    page = unescape(superuser_client.get(REMOTE, {"page": 1, "limit": 10}).content.decode())
    assert "1500 JPY" in page
    assert "minor units" not in page


def test_imported_orders_learn_their_voucherify_id_from_the_list(
    superuser_client, remote_orders, voucherify_emulator
):
    """The bulk import answers with no ids: the row has none until Voucherify shows it."""
    assert set(OrderSync.objects.values_list("voucherify_id", flat=True)) == {""}

    superuser_client.get(REMOTE, {"page": 1, "limit": 25})

    ids = dict(OrderSync.objects.values_list("source_id", "voucherify_id"))
    assert ids == {str(o.pk): voucherify_emulator.get_order(str(o.pk))["id"] for o in remote_orders}


@pytest.mark.parametrize("ordering", ["created_at", "-created_at", "updated_at", "-updated_at"])
def test_the_four_orderings(superuser_client, remote_orders, ordering):
    response = superuser_client.get(REMOTE, {"page": 1, "limit": 25, "order": ordering})

    assert response.status_code == 200
    sources = [r["order"].source_id for r in response.context["orders"]]
    assert len(sources) == 12
    if ordering == "-created_at":
        assert sources[0] == "elsewhere-4"


def test_one_query_for_the_local_links_whatever_the_page_size(superuser_client, remote_orders):
    def queries(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            superuser_client.get(REMOTE, {"page": 1, "limit": limit})
        return len(captured)

    assert queries(10) == queries(100)


@pytest.mark.parametrize(
    "query", [{"page": 1, "limit": 500}, {"page": 0}, {"page": 1, "order": "status"}]
)
def test_bad_controls_are_refused_without_a_call(
    superuser_client, remote_orders, voucherify_emulator, query
):
    before = voucherify_emulator.count()

    response = superuser_client.get(REMOTE, query)

    assert response.status_code == 200
    assert voucherify_emulator.count() == before
    assert response.context["form"].errors


@pytest.mark.parametrize("fault", [500, 401, "drop"])
def test_errors_are_messages(superuser_client, remote_orders, voucherify_emulator, fault):
    voucherify_emulator.faults.script([fault] * 5)

    response = superuser_client.get(REMOTE, {"page": 1, "limit": 10})

    assert response.status_code == 200
    (message,) = texts(response)
    assert message.startswith("Voucherify answered with an error: ")
    assert "test-secret-key" not in message


def test_the_remote_page_needs_its_permission(staff_client, voucherify_emulator):
    viewer = staff_client("view_ordersync")

    assert viewer.get(REMOTE).status_code == 403
    assert viewer.get(REMOTE, {"page": 1}).status_code == 403
    assert (
        "Orders in Voucherify"
        not in viewer.get("/admin/voucherify_orders/ordersync/").content.decode()
    )
    assert voucherify_emulator.count() == 0
    assert staff_client("view_ordersync", "view_remote_orders").get(REMOTE).status_code == 200


# --- health ----------------------------------------------------------------------------------


def test_health_counts_ages_failures_chart_and_rate_limit(
    superuser_client, make_syncs, voucherify_emulator
):
    make_syncs(4)
    make_syncs(2, state=SyncState.FAILED, last_error_key="invalid_order")
    make_syncs(1, state=SyncState.FAILED, last_error_key="not_found")
    (oldest, _) = make_syncs(2, state=SyncState.PENDING)
    OrderSync.objects.filter(pk=oldest.pk).update(updated_at=timezone.now() - timedelta(hours=3))
    row = OrderSync.objects.first()
    now = timezone.now()
    SyncAttempt.objects.bulk_create(
        SyncAttempt(sync=row, started_at=now - ago, method="POST", path="/v1/orders", status_code=s)
        for ago, s in [
            *[(timedelta(hours=2), 200)] * 3,
            (timedelta(minutes=1), 500),
            (timedelta(days=2), 200),  # older than a day: not counted
        ]
    )
    cache.set(
        LAST_RATE_LIMIT_KEY,
        {
            "limit": 300,
            "remaining": 240,
            "retry_at": None,
            "limit_type": None,
            "seen_at": time.time(),
        },
    )

    response = superuser_client.get(HEALTH)

    assert response.status_code == 200
    assert voucherify_emulator.count() == 0
    health = response.context["health"]
    counts = {state: count for state, _, count in health.counts}
    assert counts == {"pending": 2, "synced": 4, "failed": 3, "skipped": 0, "deleted": 0}
    assert health.oldest_pending.pk == oldest.pk
    assert health.failures_by_key == [("invalid_order", 2), ("not_found", 1)]
    assert (health.calls_last_day, health.failed_calls_last_day) == (4, 1)
    page = unescape(response.content.decode())
    assert "3\xa0hours" in page
    assert "<svg" in page and "<script" not in page.split("<svg", 1)[1].split("</svg>")[0]
    assert "240 / 300 (80%)" in page
    assert "?state__exact=failed&error_key=invalid_order" in page


def test_health_runs_a_fixed_number_of_queries(superuser_client, make_syncs):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert superuser_client.get(HEALTH).status_code == 200
        return len(captured)

    make_syncs(5)
    few = queries()
    make_syncs(50, state=SyncState.FAILED, last_error_key="x")
    assert queries() == few


def test_health_needs_the_view_permission(staff_client):
    assert staff_client("view_importjob").get(HEALTH).status_code == 403
    assert staff_client("view_ordersync").get(HEALTH).status_code == 200


def test_the_chart_has_24_bars_with_tooltips(db):
    now = timezone.now()
    hours = hourly_attempts(now)
    svg = hourly_chart_svg(hours)

    assert len(hours) == 24
    assert hours[-1].start == now.replace(minute=0, second=0, microsecond=0)
    assert svg.count('<g class="vo-bar">') == 24
    assert svg.count("<title>") == 24


@pytest.mark.django_db(transaction=True)
def test_a_push_remembers_the_rate_limit_it_saw(make_order, voucherify_emulator):
    from django_voucherify_orders import paused_sync
    from django_voucherify_orders.sync import push

    voucherify_emulator.rate_limit_per_minute = 100
    with paused_sync():
        order = make_order()
    assert cache.get(LAST_RATE_LIMIT_KEY) is None

    result = push(str(order.pk))

    assert result.outcome == "pushed", result
    seen = cache.get(LAST_RATE_LIMIT_KEY)
    assert seen, voucherify_emulator.requests
    assert seen["limit"] == 100
    assert seen["remaining"] == 100 - voucherify_emulator.count()
    assert seen["seen_at"] > time.time() - 60
