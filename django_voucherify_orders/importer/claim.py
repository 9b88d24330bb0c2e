"""One runner per import job: a claim on the job row, kept alive by heartbeats.

A runner claims a job with one conditional UPDATE (nobody holds it, or its holder has been
silent for longer than :func:`silence_limit`) and writes every later change of the job
through its claim, which refreshes the heartbeat; a write that finds the claim taken by
another runner raises :class:`ClaimLost` instead, and the runner stops without recording
anything more. A runner that stops in any orderly way (done, interrupted, Ctrl-C) releases
the claim, so its job can be resumed at once; only a killed one leaves it to go stale.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..conf import VoucherifyOrdersSettings, get_settings
from ..models import ImportJob, JobStatus

__all__ = [
    "ClaimLost", "ImportClaim", "JobBusy", "JobFinished", "check_claimable", "claim_job",
    "silence_limit",
]  # fmt: skip

FINISHED = (JobStatus.DONE, JobStatus.DONE_WITH_FAILURES)
# The job's columns a runner writes (its claim columns aside): one UPDATE writes them all.
PROGRESS_FIELDS = (
    "status", "error", "started_at", "finished_at", "total", "skipped_synced", "batches",
    "last_pk", "sent", "imported", "already_held", "failed", "unitemised",
)  # fmt: skip


class JobBusy(Exception):
    """Another process runs this job: its runner's heartbeat is recent."""

    def __init__(self, job: ImportJob, now: datetime, limit: float) -> None:
        seen = job.heartbeat_at or job.started_at or job.created_at
        ago = (now - seen).total_seconds() if seen else 0.0
        super().__init__(
            f"Import job {job.pk} is running in another process: its runner was last seen "
            f"at {seen.isoformat(timespec='seconds') if seen else 'an unknown time'} "
            f"({ago:.0f}s ago). Wait for it to finish. A runner silent for more than "
            f"{limit:.0f}s is taken as dead, and its job can then be resumed."
        )


class JobFinished(Exception):
    def __init__(self, job: ImportJob) -> None:
        super().__init__(f"Import job {job.pk} has already finished ({job.status}).")


class ClaimLost(Exception):
    """Another runner took the job over (this one was silent too long): stop here."""

    def __init__(self, job: ImportJob) -> None:
        super().__init__(
            f"Import job {job.pk} was taken over by another runner while this one was silent "
            "for too long; this runner stops and records nothing more."
        )


def silence_limit(config: VoucherifyOrdersSettings | None = None) -> float:
    """Seconds without a heartbeat after which a job's runner is taken as dead.

    A runner beats before and after every HTTP call and at every poll, so its longest
    silence is one call with all its retries and the waits between them (or reading and
    mapping one batch, far shorter). Twice that, and never less than two minutes: with the
    default timeouts and retries, 318 s.
    """
    config = config or get_settings()
    call = (config.http_retries + 1) * (config.connect_timeout + config.read_timeout)
    waits = config.http_retries * max(config.http_max_retry_wait, config.http_backoff_max)
    return max(120.0, 2 * (call + waits))


class ImportClaim:
    """This runner's hold on ``job``: every write of the job goes through it."""

    def __init__(self, job: ImportJob, token: str) -> None:
        self.job = job
        self.token = token

    def save(self) -> None:
        """Write the job's progress and beat, in one UPDATE; ClaimLost if it is not ours."""
        self._write({name: getattr(self.job, name) for name in PROGRESS_FIELDS})

    def beat(self, *_: Any) -> None:
        self._write({})

    def release(self) -> None:
        ImportJob.objects.filter(pk=self.job.pk, runner=self.token).update(runner="")
        self.job.runner = ""

    def _write(self, fields: dict[str, Any]) -> None:
        now = timezone.now()
        mine = ImportJob.objects.filter(pk=self.job.pk, runner=self.token)
        if not mine.update(heartbeat_at=now, **fields):
            raise ClaimLost(self.job)
        self.job.heartbeat_at = now


def claim_job(job: ImportJob, *, now: datetime | None = None) -> ImportClaim:
    """Claim ``job`` for this process (it becomes RUNNING): JobBusy while another runner's
    heartbeat is recent, JobFinished for a finished job."""
    now = now or timezone.now()
    limit = silence_limit()
    token = uuid.uuid4().hex
    claimable = _claimable(now, limit)
    if not claimable.filter(pk=job.pk).update(
        runner=token, heartbeat_at=now, status=JobStatus.RUNNING
    ):
        job.refresh_from_db()
        if job.status in FINISHED:
            raise JobFinished(job)
        raise JobBusy(job, now, limit)
    job.refresh_from_db()
    return ImportClaim(job, token)


def check_claimable(job: ImportJob, *, now: datetime | None = None) -> None:
    """Raise as :func:`claim_job` would, without claiming (before queueing a task)."""
    now = now or timezone.now()
    limit = silence_limit()
    if job.status in FINISHED:
        raise JobFinished(job)
    if not _claimable(now, limit).filter(pk=job.pk).exists():
        raise JobBusy(job, now, limit)


def _claimable(now: datetime, limit: float) -> Any:
    stale = now - timedelta(seconds=limit)
    return ImportJob.objects.exclude(status__in=FINISHED).filter(
        Q(runner="") | Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    )
