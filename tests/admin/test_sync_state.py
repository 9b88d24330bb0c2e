"""The OrderSync admin: the list (fixed queries, no API call), filters, search, read-only
rows, and the change page (payload, snapshot, attempt log)."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_voucherify_orders.admin.sync_state import ATTEMPT_LOG_LIMIT
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

from .conftest import SYNC_LIST


def list_queries(client, url: str = SYNC_LIST) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", [SYNC_LIST, f"{SYNC_LIST}?state__exact=failed&q=src"])
def test_the_list_runs_a_fixed_number_of_queries(superuser_client, make_syncs, url):
    make_syncs(5)
    make_syncs(0)
    five = list_queries(superuser_client, url)

    make_syncs(45, state=SyncState.FAILED, last_error_key="not_found")
    fifty = list_queries(superuser_client, url)

    assert five == fifty


def test_the_list_makes_no_http_call(superuser_client, make_syncs, voucherify_emulator):
    make_syncs(20)
    make_syncs(3, state=SyncState.FAILED, last_error_key="invalid_order")

    response = superuser_client.get(SYNC_LIST)
    superuser_client.get(f"{SYNC_LIST}?error_key=invalid_order")

    assert response.status_code == 200
    assert voucherify_emulator.count() == 0


def test_the_list_shows_state_ids_attempts_and_error_key(superuser_client, make_syncs):
    row = make_syncs(1, state=SyncState.FAILED, attempts=3, last_error_key="duplicate_found")[0]

    page = superuser_client.get(SYNC_LIST).content.decode()

    for text in (row.source_id, row.voucherify_id, "Failed", "duplicate_found"):
        assert text in page
    assert '<td class="field-attempts">3</td>' in page


def test_filters_by_state_and_error_key(superuser_client, make_syncs):
    synced = make_syncs(2)
    failed = make_syncs(2, state=SyncState.FAILED, last_error_key="not_found")
    other = make_syncs(1, state=SyncState.FAILED, last_error_key="invalid_order")

    def shown(query: str) -> set[str]:
        response = superuser_client.get(f"{SYNC_LIST}?{query}")
        return {row.source_id for row in response.context["cl"].result_list}

    assert shown("state__exact=synced") == {r.source_id for r in synced}
    assert shown("error_key=not_found") == {r.source_id for r in failed}
    assert shown("error_key=-") == {r.source_id for r in synced}
    page = superuser_client.get(SYNC_LIST).content.decode()
    assert "?error_key=invalid_order" in page and other[0].source_id in page


def test_search_by_source_id_and_voucherify_id(superuser_client, make_syncs):
    first, second = make_syncs(2)

    by_source = superuser_client.get(SYNC_LIST, {"q": first.source_id})
    by_remote = superuser_client.get(SYNC_LIST, {"q": second.voucherify_id})

    assert [r.pk for r in by_source.context["cl"].result_list] == [first.pk]
    assert [r.pk for r in by_remote.context["cl"].result_list] == [second.pk]


def test_rows_are_read_only(superuser_client, staff_client, make_syncs):
    row = make_syncs(1)[0]
    change = f"{SYNC_LIST}{row.pk}/change/"

    assert superuser_client.get(f"{SYNC_LIST}add/").status_code == 403
    page = superuser_client.get(change)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert superuser_client.post(change, {"state": "failed"}).status_code == 403
    assert OrderSync.objects.get(pk=row.pk).state == SyncState.SYNCED

    # Deleting is for superusers only, even with the delete permission.
    staff = staff_client("view_ordersync", "delete_ordersync")
    assert staff.get(f"{SYNC_LIST}{row.pk}/delete/").status_code == 403
    assert "delete_selected" not in staff.get(SYNC_LIST).content.decode()
    assert superuser_client.post(f"{SYNC_LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not OrderSync.objects.filter(pk=row.pk).exists()


def test_the_change_page_shows_payload_snapshot_and_newest_attempts(superuser_client, make_syncs):
    row = make_syncs(
        1,
        last_payload={"source_id": "src", "status": "PAID", "amount": 2500},
        remote_snapshot={"id": "ord_x", "object": "order", "note": "<b>not html</b>"},
    )[0]
    start = timezone.now() - timedelta(hours=2)
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            sync=row,
            started_at=start + timedelta(minutes=i),
            method="POST",
            path=f"/v1/orders#{i}",
            status_code=200,
        )
        for i in range(ATTEMPT_LOG_LIMIT + 10)
    )

    page = superuser_client.get(f"{SYNC_LIST}{row.pk}/change/").content.decode()

    assert '"amount": 2500' in unescape(page)  # pretty JSON, sorted keys, indented
    assert '"id": "ord_x"' in unescape(page)
    assert "&lt;b&gt;not html&lt;/b&gt;" in page
    newest, oldest_shown = ATTEMPT_LOG_LIMIT + 9, 10
    assert f"/v1/orders#{newest}" in page
    assert page.index(f"/v1/orders#{newest}<") < page.index(f"/v1/orders#{newest - 1}<")
    assert f"/v1/orders#{oldest_shown}<" in page
    assert f"/v1/orders#{oldest_shown - 1}<" not in page
    assert f"The newest {ATTEMPT_LOG_LIMIT} attempts are shown." in page


def test_the_change_page_costs_the_same_whatever_the_attempt_count(superuser_client, make_syncs):
    row = make_syncs(1)[0]
    url = f"{SYNC_LIST}{row.pk}/change/"
    few = list_queries(superuser_client, url)
    SyncAttempt.objects.bulk_create(
        SyncAttempt(sync=row, started_at=timezone.now(), method="PUT", path="/v1/orders/x")
        for _ in range(80)
    )
    assert list_queries(superuser_client, url) == few


def test_the_app_index_lists_the_tools_the_user_may_use(superuser_client, staff_client):
    page = superuser_client.get("/admin/voucherify_orders/").content.decode()
    for text in ("Orders in Voucherify", "Sync health", "Start an import", "Start an export"):
        assert text in page

    viewer = staff_client("view_ordersync", "view_importjob", "view_exportjob")
    page = viewer.get("/admin/voucherify_orders/").content.decode()
    assert "Sync health" in page
    for text in ("Orders in Voucherify", "Start an import", "Start an export"):
        assert text not in page
