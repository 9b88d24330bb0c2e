"""manage.py voucherify_import against the emulator."""

from __future__ import annotations

import csv
import math
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from shop.models import Order

from django_voucherify_orders.importer import ImportParameters, create_job, run_import
from django_voucherify_orders.models import ImportJob, JobStatus, OrderSync, SyncState

pytestmark = pytest.mark.django_db(transaction=True)


def seed(n: int, items: int = 3) -> None:
    call_command("seed_shop", orders=n, items=items, stdout=StringIO())


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("voucherify_import", *args, "--no-progress", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_posts(emulator) -> int:
    return emulator.count(method="POST", path_prefix="/v1/orders/import")


def test_orders_are_imported_and_marked_synced(voucherify_emulator):
    seed(30)

    out, err = run()

    assert "30 orders selected, 30 imported, 0 failed, 1 batches" in out
    assert "import #" in err  # plain progress lines when not on a terminal
    assert len(voucherify_emulator.orders()) == 30
    order = Order.objects.first()
    remote = voucherify_emulator.get_order(str(order.pk))
    assert len(remote["items"]) == 3
    assert OrderSync.objects.filter(state=SyncState.SYNCED).count() == 30
    assert ImportJob.objects.get().status == JobStatus.DONE


@pytest.mark.parametrize("count", [1, 1999, 2000, 2001, 4001])
def test_batches_are_at_most_2000_orders(voucherify_emulator, count):
    seed(count, items=1)

    run()

    job = ImportJob.objects.get()
    assert job.imported == count
    assert [b["count"] for b in job.batches] == [
        min(2000, count - start) for start in range(0, count, 2000)
    ]
    assert import_posts(voucherify_emulator) == math.ceil(count / 2000)
    assert len(voucherify_emulator.orders()) == count


def test_a_smaller_batch_size(voucherify_emulator):
    seed(25, items=1)
    run("--batch-size", "10")
    assert [b["count"] for b in ImportJob.objects.get().batches] == [10, 10, 5]


@pytest.mark.parametrize("size", ["0", "2001"])
def test_batch_size_is_bounded(voucherify_emulator, size):
    with pytest.raises(CommandError, match="batch size must be 1 to 2000"):
        run("--batch-size", size)


def test_selection_options(voucherify_emulator):
    seed(40, items=1)
    orders = list(Order.objects.order_by("created_at"))
    middle = orders[20].created_at

    run("--since", middle.isoformat(), "--status", "paid,shipped")
    expected = {
        str(o.pk) for o in orders if o.created_at >= middle and o.status in ("paid", "shipped")
    }
    assert {o["source_id"] for o in voucherify_emulator.orders()} == expected

    voucherify_emulator.reset()
    some = [str(o.pk) for o in orders[:3]]
    run("--ids", ",".join(some))
    assert {o["source_id"] for o in voucherify_emulator.orders()} == set(some)


def test_skip_synced_leaves_out_what_live_sync_delivered(voucherify_emulator):
    seed(10, items=1)
    delivered = Order.objects.order_by("pk")[:4]
    for order in delivered:
        OrderSync.objects.create(order_pk=str(order.pk), state=SyncState.SYNCED)

    out, _ = run("--skip-synced")

    assert "6 orders selected, 6 imported" in out
    assert len(voucherify_emulator.orders()) == 6


def test_an_invalid_order_is_reported_and_the_rest_go_on(voucherify_emulator, tmp_path):
    seed(5, items=1)
    bad = Order.objects.order_by("pk")[2]
    Order.objects.filter(pk=bad.pk).update(status="lost")
    report = tmp_path / "failures.csv"

    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--failures-csv", str(report))

    assert len(voucherify_emulator.orders()) == 4
    rows = list(csv.DictReader(report.open()))
    assert [(r["order_pk"], r["stage"]) for r in rows] == [(str(bad.pk), "local")]
    assert "status" in rows[0]["reason"] and "'lost'" in rows[0]["reason"]
    assert ImportJob.objects.get().status == JobStatus.DONE_WITH_FAILURES


def test_orders_voucherify_refuses_are_reported_with_its_reason(voucherify_emulator, tmp_path):
    seed(5, items=1)
    refused = str(Order.objects.order_by("pk")[1].pk)
    voucherify_emulator.faults.fail_import([refused], "Customer is blocked")
    report = tmp_path / "failures.csv"

    with pytest.raises(CommandError) as caught:
        run("--failures-csv", str(report))

    assert "1 orders were not imported" in str(caught.value)
    rows = list(csv.DictReader(report.open()))
    assert rows == [
        {
            "source_id": refused,
            "order_pk": refused,
            "stage": "remote",
            "reason": "Customer is blocked",
        }
    ]
    assert not OrderSync.objects.filter(pk=refused).exists()  # not marked synced


def test_dry_run_validates_and_counts_without_http(voucherify_emulator):
    seed(12, items=1)
    out, _ = run("--dry-run")
    assert "12 orders selected, 12 would be sent, 0 failed" in out
    assert voucherify_emulator.count() == 0
    assert not OrderSync.objects.exists()


def test_resume_after_an_interruption_sends_no_order_twice(voucherify_emulator):
    seed(5000, items=1)
    # The first batch goes through; polling the second one fails for longer than retries last.
    voucherify_emulator.faults.script([None] * 4 + [503] * 10)

    with pytest.raises(CommandError, match=r"Resume after order \d+ with: .*--resume"):
        run()

    job = ImportJob.objects.get()
    assert job.status == JobStatus.INTERRUPTED
    assert [b["state"] for b in job.batches] == ["done", "submitted"]
    voucherify_emulator.faults.clear()

    out, _ = run("--resume", str(job.pk))

    assert "5000 imported, 0 failed, 3 batches" in out
    assert import_posts(voucherify_emulator) == 3  # the second batch was polled, not resent
    assert len(voucherify_emulator.orders()) == 5000


def test_a_connection_dropped_while_sending_is_resumable(voucherify_emulator, caplog):
    seed(3, items=1)
    voucherify_emulator.faults.script(["drop"])  # did Voucherify get it? We can't know.

    with pytest.raises(CommandError, match="unreachable or failing"):
        run()
    job = ImportJob.objects.get()
    assert job.status == JobStatus.INTERRUPTED and job.imported == 0
    assert [(b["state"], b["action_id"]) for b in job.batches] == [("sending", None)]

    run("--resume", str(job.pk))
    assert "may or may not have reached Voucherify; sending it again" in caplog.text
    assert len(voucherify_emulator.orders()) == 3


def test_voucherify_unreachable_is_resumable_and_nothing_is_in_doubt(voucherify_emulator):
    seed(3, items=1)
    with (
        override_settings(
            VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "API_URL": "http://127.0.0.1:9"}
        ),
        pytest.raises(CommandError, match="unreachable or failing"),
    ):
        run()
    job = ImportJob.objects.get()
    assert (job.status, job.batches) == (JobStatus.INTERRUPTED, [])  # never connected

    run("--resume", str(job.pk))
    assert len(voucherify_emulator.orders()) == 3


def test_a_batch_refused_with_400_stops_the_job(voucherify_emulator):
    seed(3, items=1)
    voucherify_emulator.faults.script([400])

    with pytest.raises(CommandError, match="refused the batch of orders"):
        run()
    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and job.batches == [] and job.last_pk == ""


def test_a_finished_job_cannot_be_resumed(voucherify_emulator):
    seed(1, items=1)
    run()
    with pytest.raises(CommandError, match="already finished"):
        run("--resume", str(ImportJob.objects.get().pk))
    with pytest.raises(CommandError, match="no import job 999"):
        run("--resume", "999")


def test_async_queues_a_celery_task(voucherify_emulator):
    seed(3, items=1)
    out, _ = run("--async")  # tests run Celery eagerly
    job = ImportJob.objects.get()
    assert out.splitlines() == [
        "Path: bulk import (no events, distributions or earning rules fire).",
        f"Import job {job.pk} queued.",
    ]
    assert job.status == JobStatus.DONE


def test_an_unwritable_failures_csv_is_refused_before_anything_is_sent(voucherify_emulator):
    seed(2, items=1)
    with pytest.raises(CommandError, match="cannot write"):
        run("--failures-csv", "/nonexistent/dir/failures.csv")
    assert voucherify_emulator.count() == 0


def test_queries_per_batch_do_not_grow_with_the_batch_size(voucherify_emulator):
    def queries(orders: int, batch: int) -> float:
        Order.objects.all().delete()
        OrderSync.objects.all().delete()
        voucherify_emulator.reset()
        seed(orders, items=3)
        job = create_job(ImportParameters(batch_size=batch))
        with CaptureQueriesContext(connection) as captured:
            run_import(job)
        return len(captured) / len(job.batches)

    assert queries(40, 10) == queries(400, 100)


def test_live_sync_does_not_push_imported_orders_again(voucherify_emulator):
    seed(3, items=1)
    run()
    before = voucherify_emulator.count()

    order = Order.objects.first()
    order.save()  # unchanged

    assert voucherify_emulator.count() == before


def test_ids_take_source_ids_as_well_as_pks(voucherify_emulator, settings):
    """A shop staff member knows order numbers: with a mapper whose source_id is the
    order number (its source_id_field), --ids accepts them next to pks."""
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        "MAPPER": "tests.testapp.voucherify.NumberOrderMapper",
    }
    seed(6, items=1)
    orders = list(Order.objects.order_by("pk"))

    run("--ids", f"{orders[0].number},{orders[1].pk}")

    assert {o["source_id"] for o in voucherify_emulator.orders()} == {
        orders[0].number, orders[1].number,
    }  # fmt: skip


def test_ids_that_match_no_order_are_named(voucherify_emulator):
    seed(3, items=1)
    order = Order.objects.first()

    with pytest.raises(CommandError) as raised:
        run("--ids", f"{order.pk},SO-NOPE,999999")

    assert "no order has the pk or source_id SO-NOPE, 999999" in str(raised.value)
    assert voucherify_emulator.orders() == []
    assert not ImportJob.objects.exists()
