"""voucherify_import never marks an order synced that it did not send, and shares orders
with live sync without losing either's work (issue 11, section 2)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from shop.models import Order

from django_voucherify_orders import tasks
from django_voucherify_orders.client import VoucherifyClient
from django_voucherify_orders.importer import silence_limit
from django_voucherify_orders.mapping import OrderMapper
from django_voucherify_orders.models import ImportJob, JobStatus, OrderSync, SyncState
from django_voucherify_orders.sync import push

pytestmark = pytest.mark.django_db(transaction=True)


def seed(n: int, items: int = 1) -> list[Order]:
    call_command("seed_shop", orders=n, items=items, stdout=StringIO())
    return list(Order.objects.order_by("pk"))


def run(*args: str) -> str:
    out = StringIO()
    call_command("voucherify_import", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def synced() -> set[str]:
    return set(OrderSync.objects.filter(state=SyncState.SYNCED).values_list("pk", flat=True))


def interrupt_while_polling(emulator) -> ImportJob:
    """The import request goes through; polling it fails for longer than retries last."""
    emulator.faults.script([None] + [503] * 10)
    with pytest.raises(CommandError, match="Resume"):
        run(*_ARGS)
    emulator.faults.clear()
    job = ImportJob.objects.get()
    assert [b["state"] for b in job.batches] == ["submitted"]
    return job


_ARGS: tuple[str, ...] = ()


def before_first_poll(monkeypatch, action) -> None:
    """Run ``action`` (another process, a save in the shop) while the import waits."""
    real = VoucherifyClient.get_async_action
    done = []

    def get_async_action(self, action_id):
        if not done:
            done.append(True)
            action()
        return real(self, action_id)

    monkeypatch.setattr(VoucherifyClient, "get_async_action", get_async_action)


# --- 1. a resume records exactly what the job sent ---------------------------------------


def test_a_resume_marks_synced_only_the_orders_the_job_sent(voucherify_emulator, monkeypatch):
    global _ARGS
    orders = seed(30)
    chosen = [str(orders[i].pk) for i in (0, 14, 29)]  # sparse --ids over the whole range
    _ARGS = ("--ids", ",".join(chosen))
    try:
        job = interrupt_while_polling(voucherify_emulator)
    finally:
        _ARGS = ()
    built = []
    real_build = OrderMapper.build

    def build(self, order, *args, **kwargs):
        built.append(str(order.pk))
        return real_build(self, order, *args, **kwargs)

    monkeypatch.setattr(OrderMapper, "build", build)

    out = run("--resume", str(job.pk))

    assert "3 orders selected, 3 imported, 0 failed" in out
    assert synced() == set(chosen)  # not the 27 orders between them
    assert sorted(built) == sorted(chosen)  # the resume read the 3 orders, not the range
    assert {o["source_id"] for o in voucherify_emulator.orders()} == set(chosen)


def test_a_resume_leaves_out_orders_outside_the_status_filter(voucherify_emulator):
    global _ARGS
    orders = seed(20)
    Order.objects.update(status="paid")
    Order.objects.filter(pk__in=[o.pk for o in orders[::2]]).update(status="new")
    _ARGS = ("--status", "paid")
    try:
        job = interrupt_while_polling(voucherify_emulator)
    finally:
        _ARGS = ()

    run("--resume", str(job.pk))

    paid = {str(o.pk) for o in Order.objects.filter(status="paid")}
    assert synced() == paid and len(paid) == 10


# --- 2. failures Voucherify does not name -------------------------------------------------


def test_unnamed_failures_leave_the_batch_unsynced_and_fail_the_command(voucherify_emulator):
    orders = seed(5)
    voucherify_emulator.faults.fail_import([str(orders[1].pk)], named=False)

    with pytest.raises(CommandError) as caught:
        run()

    message = str(caught.value)
    assert "Voucherify counted 1 failures without naming the orders" in message
    assert "the 5 orders of their batches are not marked synced" in message
    assert "Run the same import again" in message
    assert not OrderSync.objects.exists()  # neither synced nor anything else
    job = ImportJob.objects.get()
    assert (job.status, job.unitemised, job.imported) == (JobStatus.DONE_WITH_FAILURES, 1, 0)

    # What the message says to do: the four Voucherify holds are recognised, one is sent.
    voucherify_emulator.faults.clear()
    out = run()

    assert "5 orders selected, 1 imported, 4 already in Voucherify, 0 failed" in out
    assert synced() == {str(o.pk) for o in orders}
    assert len(voucherify_emulator.orders()) == 5


# --- 3. import and live sync --------------------------------------------------------------


def test_a_pending_live_sync_change_survives_an_import(voucherify_emulator):
    orders = seed(3)
    changed = orders[1]
    OrderSync.objects.create(order_pk=str(changed.pk), state=SyncState.PENDING, version=4)

    run()

    row = OrderSync.objects.get(pk=str(changed.pk))
    assert (row.state, row.version, row.pushed_version) == (SyncState.PENDING, 4, 0)
    Order.objects.filter(pk=changed.pk).update(status="paid")  # the change live sync holds
    assert push(str(changed.pk)).outcome == "pushed"
    assert voucherify_emulator.get_order(str(changed.pk))["status"] == "PAID"


def test_a_change_saved_while_the_import_waits_is_pushed_by_live_sync(
    voucherify_emulator, monkeypatch
):
    """Live sync on: the save pushes the order at once, before the import is processed."""
    orders = seed(3)
    changed = orders[0]

    def save():
        changed.status = "paid"
        changed.save()

    before_first_poll(monkeypatch, save)

    out = run()  # exits 0: the order is in Voucherify, not a failure

    assert "3 orders selected, 2 imported, 1 already in Voucherify, 0 failed" in out
    row = OrderSync.objects.get(pk=str(changed.pk))
    assert row.state == SyncState.SYNCED and row.payload_hash  # live sync's row, untouched
    assert voucherify_emulator.get_order(str(changed.pk))["status"] == "PAID"


def test_only_synced_orders_are_left_out(voucherify_emulator):
    orders = seed(4)
    states = [SyncState.SYNCED, SyncState.PENDING, SyncState.FAILED]
    for order, state in zip(orders, states, strict=False):
        OrderSync.objects.create(order_pk=str(order.pk), state=state)

    out = run("--dry-run")

    assert "3 orders selected, 3 would be sent" in out
    assert "1 left out as already synced (--include-synced sends them)" in out


# --- 4. orders the mapper can't map -------------------------------------------------------


def test_an_unmappable_order_gets_a_failed_row_that_voucherify_sync_retries(voucherify_emulator):
    orders = seed(3)
    bad, kept = orders[0], orders[1]
    Order.objects.filter(pk__in=[bad.pk, kept.pk]).update(status="lost")
    OrderSync.objects.create(order_pk=str(kept.pk), state=SyncState.PENDING, version=2)

    with pytest.raises(CommandError, match="2 orders were not imported"):
        run()

    row = OrderSync.objects.get(pk=str(bad.pk))
    assert (row.state, row.last_error_key) == (SyncState.FAILED, "invalid_local_data")
    assert f"order {bad.pk}" in row.last_error_message and "status" in row.last_error_message
    kept_row = OrderSync.objects.get(pk=str(kept.pk))
    assert (kept_row.state, kept_row.version) == (SyncState.PENDING, 2)  # live sync's

    Order.objects.filter(pk__in=[bad.pk, kept.pk]).update(status="paid")  # the fix
    call_command("voucherify_sync", "--failed", "--inline", stdout=StringIO())
    assert OrderSync.objects.get(pk=str(bad.pk)).state == SyncState.SYNCED
    assert voucherify_emulator.get_order(str(bad.pk))["status"] == "PAID"


def test_a_dry_run_writes_no_sync_rows(voucherify_emulator):
    orders = seed(2)
    Order.objects.filter(pk=orders[0].pk).update(status="lost")
    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--dry-run")
    assert not OrderSync.objects.exists()


# --- 5. synced orders are left out by default ---------------------------------------------


def test_an_import_after_live_sync_sends_only_what_live_sync_did_not(voucherify_emulator):
    orders = seed(5)
    for order in orders[:2]:  # the installation guide: live sync first
        order.save()
    assert len(voucherify_emulator.orders()) == 2

    dry = run("--dry-run")
    assert "3 orders selected, 3 would be sent, 0 failed" in dry
    assert "2 left out as already synced" in dry

    out = run()  # exits 0
    assert "3 orders selected, 3 imported, 0 failed" in out
    assert len(voucherify_emulator.orders()) == 5

    everything = run("--include-synced", "--dry-run")
    assert "5 orders selected, 5 would be sent" in everything
    assert "left out" not in everything


def test_skip_synced_is_still_accepted(voucherify_emulator):
    seed(2)
    assert "2 orders selected, 2 imported" in run("--skip-synced")


# --- 6. one runner per job ----------------------------------------------------------------


def test_a_job_running_elsewhere_is_not_resumed(voucherify_emulator):
    seed(3)
    seen = timezone.now() - timedelta(seconds=5)
    job = ImportJob.objects.create(
        status=JobStatus.RUNNING, runner="another-process", heartbeat_at=seen,
        parameters={"skip_synced": True, "batch_size": 2000},
    )  # fmt: skip

    with pytest.raises(CommandError) as caught:
        run("--resume", str(job.pk))
    with pytest.raises(CommandError):
        run("--resume", str(job.pk), "--async")
    tasks.run_import.delay(job.pk)  # the admin's resume, a Celery task

    message = str(caught.value)
    assert f"Import job {job.pk} is running in another process" in message
    assert f"last seen at {seen.isoformat(timespec='seconds')}" in message
    assert voucherify_emulator.count() == 0
    job.refresh_from_db()
    assert (job.status, job.runner) == (JobStatus.RUNNING, "another-process")


def test_a_job_whose_runner_went_silent_is_resumed(voucherify_emulator):
    seed(3)
    job = ImportJob.objects.create(
        status=JobStatus.RUNNING, runner="a-dead-process",
        heartbeat_at=timezone.now() - timedelta(seconds=silence_limit() + 60),
        parameters={"skip_synced": True, "batch_size": 2000},
    )  # fmt: skip

    out = run("--resume", str(job.pk))

    assert "3 imported" in out
    job.refresh_from_db()
    assert (job.status, job.runner) == (JobStatus.DONE, "")  # released when done


def test_a_runner_taken_over_stops_and_records_nothing(voucherify_emulator, monkeypatch):
    seed(3)

    def another_runner_takes_over():
        ImportJob.objects.update(runner="another-process", heartbeat_at=timezone.now())

    before_first_poll(monkeypatch, another_runner_takes_over)

    with pytest.raises(CommandError, match="taken over by another runner"):
        run()

    assert not OrderSync.objects.exists()
    job = ImportJob.objects.get()
    assert (job.runner, job.imported, job.status) == ("another-process", 0, JobStatus.RUNNING)


def test_the_silence_limit_follows_the_timeouts(settings):
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS, "HTTP_RETRIES": 0, "CONNECT_TIMEOUT": 100,
        "READ_TIMEOUT": 200,
    }  # fmt: skip
    assert silence_limit() == 600


# --- 7. what a resume sends twice ---------------------------------------------------------


def test_a_batch_that_landed_unanswered_is_sent_again_and_ends_synced(voucherify_emulator):
    orders = seed(4)
    voucherify_emulator.faults.script(["drop-after"])  # imported, but the answer is lost

    with pytest.raises(CommandError, match="unreachable or failing"):
        run()
    job = ImportJob.objects.get()
    assert [(b["state"], b["action_id"]) for b in job.batches] == [("sending", None)]

    out = run("--resume", str(job.pk))  # exits 0

    assert voucherify_emulator.count(method="POST", path_prefix="/v1/orders/import") == 2
    assert "4 orders selected, 0 imported, 4 already in Voucherify, 0 failed" in out
    job.refresh_from_db()
    assert (job.status, job.failed, job.already_held) == (JobStatus.DONE, 0, 4)
    assert synced() == {str(o.pk) for o in orders}
    assert len(voucherify_emulator.orders()) == 4


# --- 8. --via create ----------------------------------------------------------------------


def test_via_create_pushes_through_live_sync(voucherify_emulator):
    orders = seed(3)

    out = run("--via", "create")

    assert out.splitlines()[0].startswith("Path: create, through live sync")
    assert "3 orders selected: 3 synced, 0 failed, 0 pending (3 pushed)." in out
    assert voucherify_emulator.count(method="POST", path_prefix="/v1/orders/import") == 0
    assert voucherify_emulator.count(method="POST", path_prefix="/v1/orders") == 3
    assert synced() == {str(o.pk) for o in orders}
    assert not ImportJob.objects.exists()


def test_via_create_reports_failures_and_exits_non_zero(voucherify_emulator):
    orders = seed(3)
    Order.objects.filter(pk=orders[1].pk).update(status="lost")

    with pytest.raises(CommandError, match="1 orders failed and 0 are still pending"):
        run("--via", "create")

    row = OrderSync.objects.get(pk=str(orders[1].pk))
    assert (row.state, row.last_error_key) == (SyncState.FAILED, "invalid_local_data")
    assert len(voucherify_emulator.orders()) == 2


def test_via_create_in_the_workers(voucherify_emulator):
    seed(3)
    out = run("--via", "create", "--async")  # tests run Celery eagerly
    assert "3 orders marked changed; the Celery workers push them." in out
    assert len(voucherify_emulator.orders()) == 3


def test_via_create_dry_run_and_the_default_path(voucherify_emulator):
    orders = seed(3)
    orders[0].save()  # live sync delivered it

    out = run("--via", "create", "--dry-run")

    assert "2 orders selected, 2 would be created, 0 can't be mapped." in out
    assert "1 left out as already synced" in out
    assert voucherify_emulator.count() == 1
    assert run("--dry-run").splitlines()[0] == (
        "Path: bulk import (no events, distributions or earning rules fire)."
    )


@pytest.mark.parametrize("batch_size", ["2000", "1"])
def test_two_orders_with_one_source_id_are_not_taken_for_one(
    voucherify_emulator, monkeypatch, batch_size
):
    """'Already exists' for an order whose source_id another local order holds is a
    failure (two orders would be one in Voucherify), in the same batch or a later one."""
    orders = seed(3)
    twins = {str(orders[0].pk), str(orders[1].pk)}
    real = OrderMapper.source_id
    monkeypatch.setattr(
        OrderMapper, "source_id", lambda self, o: "twin" if str(o.pk) in twins else real(self, o)
    )

    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--batch-size", batch_size)

    job = ImportJob.objects.get()
    assert (job.imported, job.already_held, job.failed) == (2, 0, 1)
    assert synced() == {str(orders[0].pk), str(orders[2].pk)}
    reason = job.failures.get().reason
    assert f"order {orders[0].pk}" in reason


# --- a batch whose import action ended FAILED -----------------------------------------------


def test_a_job_stopped_by_a_failed_import_action_resumes_by_sending_the_batch_again(
    voucherify_emulator, monkeypatch
):
    """Voucherify ends the first import action FAILED (and it stays so). The command says
    to resume; resuming sends the batch again instead of polling the failed action forever,
    and the batch's unmappable order is counted and recorded once."""
    orders = seed(3)
    bad = orders[0]
    Order.objects.filter(pk=bad.pk).update(status="lost")
    real = VoucherifyClient.get_async_action
    failed: set[str] = set()

    def get_async_action(self, action_id):
        action = real(self, action_id)
        if not failed or action_id in failed:
            failed.add(action_id)
            return action.model_copy(update={"status": "FAILED", "result": {"message": "x"}})
        return action

    monkeypatch.setattr(VoucherifyClient, "get_async_action", get_async_action)
    with pytest.raises(CommandError, match=r"ended FAILED.*--resume") as stopped:
        run()
    job = ImportJob.objects.get()
    assert job.status == JobStatus.FAILED and f"--resume {job.pk}" in str(stopped.value)

    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--resume", str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.DONE_WITH_FAILURES, job.error
    assert synced() == {str(o.pk) for o in orders[1:]}
    assert (job.failed, job.failures.count(), len(job.batches)) == (1, 1, 1)
    assert len(failed) == 1  # a second action was requested, and it ended DONE


def test_an_order_unmappable_by_resume_time_is_counted_once_over_several_resumes(
    voucherify_emulator,
):
    """Sent valid, then edited into an unmappable state while the job was interrupted; the
    first resume is interrupted while polling too. The order is one failure, not two."""
    orders = seed(3)
    job = interrupt_while_polling(voucherify_emulator)
    Order.objects.filter(pk=orders[0].pk).update(status="lost")

    voucherify_emulator.faults.script([503] * 10)
    with pytest.raises(CommandError, match="Resume"):
        run("--resume", str(job.pk))
    voucherify_emulator.faults.clear()
    with pytest.raises(CommandError, match="1 orders were not imported"):
        run("--resume", str(job.pk))

    job.refresh_from_db()
    assert (job.failed, job.failures.count()) == (1, 1)
    assert synced() == {str(o.pk) for o in orders[1:]}


def test_an_import_refused_a_rate_limit_slot_is_interrupted_as_not_sent(
    voucherify_emulator, caplog
):
    """Live sync saw a 429 asking every worker to wait an hour: the import's request gets
    no slot, so nothing was sent. The job is interrupted with nothing in flight, and the
    resume sends the batch without claiming it may have reached Voucherify."""
    import time

    from django.core.cache import cache

    from django_voucherify_orders.sync.limiter import SharedRateLimiter

    orders = seed(2)
    SharedRateLimiter(None).pause_until(time.time() + 3600)
    try:
        with pytest.raises(CommandError, match=r"shared rate limit is busy.*--resume") as busy:
            run()
    finally:
        cache.clear()
    job = ImportJob.objects.get()
    assert (job.status, job.batches, job.sent) == (JobStatus.INTERRUPTED, [], 0)
    assert voucherify_emulator.count() == 0
    assert "unreachable" not in str(busy.value)  # Voucherify is fine; the quota is used up
    assert "unreachable" not in str(busy.value)  # Voucherify is fine; the quota is used up

    run("--resume", str(job.pk))
    assert "may or may not have reached Voucherify" not in caplog.text
    assert synced() == {str(o.pk) for o in orders}


def test_ctrl_c_while_a_batch_is_recorded_resumes_by_recording_it(voucherify_emulator, monkeypatch):
    """Ctrl-C lands while the batch's outcome is written (its transaction rolls back): the
    job must say what the database holds, the batch still to record, not that it is done."""
    from django_voucherify_orders.importer import job as job_module

    orders = seed(3)
    real = job_module.mark_synced
    hits: list[bool] = []

    def mark_synced(sent, unverified):
        if not hits:
            hits.append(True)
            raise KeyboardInterrupt
        return real(sent, unverified)

    monkeypatch.setattr(job_module, "mark_synced", mark_synced)
    with pytest.raises(CommandError, match="Interrupted"):
        run()
    job = ImportJob.objects.get()
    assert (job.status, job.imported, [b["state"] for b in job.batches]) == (
        JobStatus.INTERRUPTED, 0, ["submitted"],
    )  # fmt: skip

    run("--resume", str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.imported) == (JobStatus.DONE, 3)
    assert synced() == {str(o.pk) for o in orders}


def test_an_unexpected_error_stops_the_job_resumably_instead_of_leaving_it_running(
    voucherify_emulator, monkeypatch
):
    """A database error while recording a batch (a full disk, a lost connection): the job
    says what happened and how to resume, not "running" until its runner is deemed dead."""
    from django.db import OperationalError

    from django_voucherify_orders.importer import job as job_module

    seed(5)

    def disk_full(*args, **kwargs):
        raise OperationalError("could not extend file: No space left on device")

    monkeypatch.setattr(job_module, "mark_synced", disk_full)
    with pytest.raises(OperationalError):
        run()

    job = ImportJob.objects.get()
    assert job.status == JobStatus.INTERRUPTED
    assert "No space left on device" in job.error
    assert f"voucherify_import --resume {job.pk}" in job.error
    assert not job.runner  # the claim is released: a resume need not wait

    monkeypatch.undo()
    run("--resume", str(job.pk))  # the batch landed: its orders come back as held
    assert synced() == {str(order.pk) for order in Order.objects.all()}
