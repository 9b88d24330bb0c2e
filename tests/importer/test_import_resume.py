"""Resuming an interrupted voucherify_import: what the resume records for the batch that was
in flight, and what the user is told (issue 11)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from shop.models import Order

from django_voucherify_orders.conf import get_client
from django_voucherify_orders.mapping import OrderMapper
from django_voucherify_orders.models import (
    ImportFailure,
    ImportJob,
    JobStatus,
    OrderSync,
    SyncState,
)

from .test_import_safety import run, seed, synced

pytestmark = pytest.mark.django_db(transaction=True)


def interrupt(emulator, answered: int, *args: str) -> ImportJob:
    """The first ``answered`` requests go through, then Voucherify fails for longer than
    the retries last."""
    emulator.faults.script([None] * answered + [503] * 10)
    with pytest.raises(CommandError, match="Resume"):
        run(*args)
    emulator.faults.clear()
    return ImportJob.objects.get()


def test_an_interruption_in_the_first_batch_says_resume_at_the_start(voucherify_emulator):
    seed(3)
    voucherify_emulator.faults.script([None] + [503] * 10)  # sent; polling it fails

    with pytest.raises(CommandError) as caught:
        run()

    job = ImportJob.objects.get()
    assert f"Resume at the start with: manage.py voucherify_import --resume {job.pk}" in str(
        caught.value
    )
    assert job.status == JobStatus.INTERRUPTED
    assert job.finished_at is not None  # the admin shows when it stopped


def test_a_batch_in_flight_from_an_earlier_version_records_its_pk_range(voucherify_emulator):
    """A job saved before batch entries listed their pks: the resume records the range
    first_pk..last_pk of the selection, no order before or after it."""
    seed(5)
    job = interrupt(voucherify_emulator, 4, "--batch-size", "2", "--include-synced")
    assert [b["state"] for b in job.batches] == ["done", "submitted"]
    job.batches[-1].pop("pks")  # as an earlier version wrote it
    job.save()

    out = run("--resume", str(job.pk))

    assert "5 orders selected, 5 imported, 0 failed, 3 batches" in out
    assert synced() == {str(pk) for pk in Order.objects.values_list("pk", flat=True)}
    assert len(voucherify_emulator.orders()) == 5


def test_a_batch_never_confirmed_is_sent_again_and_the_earlier_batches_stay(
    voucherify_emulator,
):
    seed(5)
    # The first batch is sent and polled; the second's import request fails (503): unknown.
    job = interrupt(voucherify_emulator, 3, "--batch-size", "2")
    assert [b["state"] for b in job.batches] == ["done", "sending"]

    out = run("--resume", str(job.pk))

    assert "5 orders selected, 5 imported, 0 failed, 3 batches" in out
    job.refresh_from_db()
    assert [b["count"] for b in job.batches] == [2, 2, 1]
    assert len(voucherify_emulator.orders()) == 5


def test_an_order_broken_while_its_batch_was_in_flight_is_failed_on_resume(voucherify_emulator):
    """One order of the batch could not be mapped when it was sent, another breaks before
    the resume: both are counted failed, and the second gets the failed row that
    voucherify_sync --failed retries."""
    orders = seed(3)
    broken_before, broken_after = orders[0], orders[1]
    Order.objects.filter(pk=broken_before.pk).update(status="lost")
    job = interrupt(voucherify_emulator, 1)
    assert job.failed == 1
    Order.objects.filter(pk=broken_after.pk).update(status="lost")

    with pytest.raises(CommandError, match="2 orders were not imported"):
        run("--resume", str(job.pk))

    job.refresh_from_db()
    assert (job.status, job.failed, job.imported) == (JobStatus.DONE_WITH_FAILURES, 2, 1)
    row = OrderSync.objects.get(pk=str(broken_after.pk))
    assert (row.state, row.last_error_key) == (SyncState.FAILED, "invalid_local_data")


def test_an_order_another_writer_put_in_voucherify_is_sent_whole_on_its_next_save(
    voucherify_emulator,
):
    """Voucherify already holds one order, as another writer sent it: the import counts it
    held, marks it synced without a payload hash, and the order's next save sends it whole
    (not skipped as unchanged), so Voucherify ends with the shop's order."""
    orders = seed(2)
    theirs = orders[0]
    Order.objects.filter(pk=theirs.pk).update(status="paid")
    get_client().create_order({"source_id": str(theirs.pk), "amount": 1, "status": "CREATED"})

    out = run()

    assert "2 orders selected, 1 imported, 1 already in Voucherify, 0 failed" in out
    rows = OrderSync.objects.filter(state=SyncState.SYNCED)
    assert len(rows) == 2
    assert all(r.synced_at and not r.is_dirty for r in rows)  # live sync has nothing to send
    Order.objects.get(pk=theirs.pk).save()  # an edit in the shop that changes no field
    assert voucherify_emulator.get_order(str(theirs.pk))["status"] == "PAID"


def test_an_order_whose_source_id_cannot_be_built_is_named_by_its_pk(
    voucherify_emulator, monkeypatch
):
    """A bug in the shop's mapper.source_id: the summary and the failure row name the
    order by its pk, the only name it has."""
    orders = seed(2)
    broken = orders[0]
    real = OrderMapper.source_id

    def source_id(self, order):
        if order.pk == broken.pk:
            raise LookupError("no number yet")
        return real(self, order)

    monkeypatch.setattr(OrderMapper, "source_id", source_id)

    out = StringIO()
    with pytest.raises(CommandError, match="1 orders were not imported"):
        call_command("voucherify_import", "--no-progress", stdout=out, stderr=StringIO())

    assert f"  failed {broken.pk}: " in out.getvalue()
    assert "no number yet" in out.getvalue()
    failure = ImportFailure.objects.get()
    assert (failure.order_pk, failure.source_id) == (str(broken.pk), "")


def test_an_unmappable_order_gets_the_failed_row_a_live_push_would_give_it(voucherify_emulator):
    """The import's failed row and live sync's, for two orders broken the same way, look
    the same to the admin, the health page and voucherify_sync --failed."""
    orders = seed(2)
    imported, pushed = orders
    Order.objects.filter(pk__in=[imported.pk, pushed.pk]).update(status="lost")

    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--ids", str(imported.pk))
    Order.objects.get(pk=pushed.pk).save()  # live sync pushes it, and it fails

    def shape(pk):  # versions count saves, which differ; dirty or not must not
        row = OrderSync.objects.get(pk=str(pk))
        return (row.state, row.attempts, row.is_dirty, row.last_error_key)

    assert shape(imported.pk) == shape(pushed.pk)
    assert shape(imported.pk)[0] == SyncState.FAILED


def test_a_resume_after_a_finished_batch_records_that_batch_once(voucherify_emulator):
    """Stopped between batches (the next import request refused with 429s): the resume
    goes on after the finished batch, and neither polls it again nor counts it twice."""
    seed(5)
    voucherify_emulator.faults.retry_after = 0
    first = voucherify_emulator.count()
    voucherify_emulator.faults.script([None] * 3 + [429] * 10)  # batch 1 sent and polled
    with pytest.raises(CommandError, match="Resume"):
        run("--batch-size", "2")
    voucherify_emulator.faults.clear()
    job = ImportJob.objects.get()
    assert [b["state"] for b in job.batches] == ["done"]
    assert (job.imported, job.last_pk) == (2, str(Order.objects.order_by("pk")[1].pk))
    polls_of_first = f"/v1/async-actions/{job.batches[0]['action_id']}"
    polled = voucherify_emulator.count(method="GET", path_prefix=polls_of_first)
    assert voucherify_emulator.count() > first

    run("--resume", str(job.pk))

    job.refresh_from_db()
    assert voucherify_emulator.count(method="GET", path_prefix=polls_of_first) == polled
    assert (job.status, job.imported, job.failed, job.total) == (JobStatus.DONE, 5, 0, 5)
    assert [b["state"] for b in job.batches] == ["done"] * 3
    assert synced() == {str(order.pk) for order in Order.objects.all()}
