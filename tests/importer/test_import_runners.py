"""One runner per import job, seen from a second runner: another `--resume`, the admin's
resume (the Celery task), while the first one runs or after it finished (issue 11)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from django_voucherify_orders import tasks
from django_voucherify_orders.client import VoucherifyClient
from django_voucherify_orders.importer import JobBusy, check_claimable, silence_limit
from django_voucherify_orders.importer.claim import claim_job
from django_voucherify_orders.models import ImportJob, JobStatus

from .test_import_safety import before_first_poll, run, seed

pytestmark = pytest.mark.django_db(transaction=True)

_PARAMS = {"skip_synced": True, "batch_size": 2000}


def test_a_second_resume_while_the_first_runner_waits_is_refused(voucherify_emulator, monkeypatch):
    """The first runner has written its progress (and beaten) before it polls: a second
    `--resume` then finds a live runner, not a job anyone may take."""
    seed(3)
    refused: list[str] = []

    def second_runner():
        job = ImportJob.objects.get()
        with pytest.raises(CommandError) as caught:
            run("--resume", str(job.pk))
        refused.append(str(caught.value))

    before_first_poll(monkeypatch, second_runner)

    out = run()

    assert "3 imported" in out  # the first runner was not taken over
    (message,) = refused
    assert "is running in another process" in message


def test_a_job_just_taken_over_is_not_taken_again(voucherify_emulator):
    """Two resumes of a dead runner's job: the second must see the first's fresh claim, not
    the dead runner's stale heartbeat."""
    seed(3)
    job = ImportJob.objects.create(
        status=JobStatus.RUNNING, runner="a-dead-process",
        heartbeat_at=timezone.now() - timedelta(seconds=silence_limit() + 60),
        parameters=_PARAMS,
    )  # fmt: skip
    claim_job(job)

    with pytest.raises(JobBusy, match="is running in another process"):
        check_claimable(ImportJob.objects.get(pk=job.pk))


def test_the_admins_resume_of_a_running_job_logs_why_it_left_it(voucherify_emulator, caplog):
    seed(3)
    seen = timezone.now() - timedelta(seconds=5)
    job = ImportJob.objects.create(
        status=JobStatus.RUNNING, runner="another-process", heartbeat_at=seen,
        parameters=_PARAMS,
    )  # fmt: skip

    with caplog.at_level(logging.WARNING):
        tasks.run_import.delay(job.pk)

    assert f"Import job {job.pk} is running in another process" in caplog.text
    assert f"last seen at {seen.isoformat(timespec='seconds')} (5s ago)" in caplog.text
    assert f"more than {silence_limit():.0f}s is taken as dead" in caplog.text
    assert voucherify_emulator.count() == 0


def test_the_admins_resume_of_a_finished_job_logs_that_it_finished(voucherify_emulator, caplog):
    seed(3)
    run()
    job = ImportJob.objects.get()

    with caplog.at_level(logging.WARNING):
        tasks.run_import.delay(job.pk)

    assert f"Import job {job.pk} has already finished (done)" in caplog.text
    assert "running in another process" not in caplog.text


def test_the_silence_limit_with_the_default_timeouts_and_its_floor(settings):
    # 2 x (3 calls x (3.05 + 30) s + 2 waits x 30 s), as docs/operations.md says (318 s).
    assert silence_limit() == pytest.approx(318.3)
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS, "HTTP_RETRIES": 0, "CONNECT_TIMEOUT": 1,
        "READ_TIMEOUT": 1,
    }  # fmt: skip
    assert silence_limit() == 120  # never less than two minutes


def test_a_runner_waiting_on_a_long_import_keeps_its_claim(voucherify_emulator, monkeypatch):
    """Voucherify takes several polls to process a batch; the runner beats at each poll,
    so a runner whose last write is older than the silence limit, but that is still
    polling, is not taken over."""
    seed(3)
    real = VoucherifyClient.get_async_action
    polls: list[str] = []
    refused: list[str] = []

    def get_async_action(self, action_id):
        if not polls:  # the batch has been processing for longer than the silence limit
            long_ago = timezone.now() - timedelta(seconds=silence_limit() + 60)
            ImportJob.objects.update(heartbeat_at=long_ago)
        else:
            job = ImportJob.objects.get()
            with pytest.raises(CommandError) as caught:
                run("--resume", str(job.pk))
            refused.append(str(caught.value))
        polls.append(action_id)
        return real(self, action_id)

    monkeypatch.setattr(VoucherifyClient, "get_async_action", get_async_action)

    out = run()

    assert "3 imported" in out
    assert len(polls) >= 2  # IN_PROGRESS, then DONE
    assert refused and "is running in another process" in refused[0]
