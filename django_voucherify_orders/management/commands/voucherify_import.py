"""Backfill historical orders into Voucherify through its bulk import."""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...importer import ImportParameters, create_job, run_import, select_orders
from ...models import ImportFailure, ImportJob, JobStatus


def _when(text: str) -> datetime:
    """A date (midnight, in the current time zone) or an ISO 8601 date-time."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time") from None
    if len(text) == 10:
        value = datetime.combine(value.date(), time.min)
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Import historical orders into Voucherify in batches of up to 2000 (bulk import: "
        "no webhooks, distributions or earning rules fire). Imported orders are marked "
        "synced so live sync does not push them again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_when, help="Orders from this date (inclusive).")
        parser.add_argument("--until", type=_when, help="Orders before this date.")
        parser.add_argument(
            "--status", action="append", default=[], type=_listed,
            help="Only orders with these statuses, in your model's values (repeatable or a,b).",
        )  # fmt: skip
        parser.add_argument("--ids", type=_listed, default=[], help="Only these order pks (a,b).")
        parser.add_argument(
            "--skip-synced", action="store_true",
            help="Leave out orders live sync already delivered.",
        )  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=2000, help="1 to 2000 (default).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and count; send nothing."
        )
        parser.add_argument(
            "--resume", type=int, metavar="JOB_ID",
            help="Continue an interrupted job after its last finished batch.",
        )  # fmt: skip
        parser.add_argument(
            "--async", action="store_true", dest="run_async",
            help="Run as a Celery task and print the job id.",
        )  # fmt: skip
        parser.add_argument(
            "--failures-csv", type=Path, metavar="PATH",
            help="Write one row per failed order (source_id, order_pk, stage, reason).",
        )  # fmt: skip
        parser.add_argument(
            "--no-progress", action="store_true", help="Plain progress lines, no progress bar."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["failures_csv"]:
            _check_writable(options["failures_csv"])
        job = self._job(options)
        if options["run_async"]:
            from ... import tasks

            tasks.run_import.delay(job.pk)
            self.stdout.write(f"Import job {job.pk} queued.")
            return
        with _Progress(self, job, bar=not options["no_progress"]) as progress:
            try:
                job = run_import(job, progress=progress.update)
            except KeyboardInterrupt:
                raise CommandError(
                    f"Interrupted. Resume with: manage.py voucherify_import --resume {job.pk}"
                ) from None
        if options["failures_csv"]:
            _write_failures(job, options["failures_csv"])
        self._summary(job)

    def _job(self, options: dict[str, Any]) -> ImportJob:
        if options["resume"]:
            try:
                job = ImportJob.objects.get(pk=options["resume"])
            except ImportJob.DoesNotExist:
                raise CommandError(f"There is no import job {options['resume']}.") from None
            if job.status in (JobStatus.DONE, JobStatus.DONE_WITH_FAILURES):
                raise CommandError(f"Import job {job.pk} has already finished ({job.status}).")
            return job
        try:
            params = ImportParameters(
                since=options["since"],
                until=options["until"],
                statuses=tuple(s for group in options["status"] for s in group),
                ids=tuple(options["ids"]),
                skip_synced=options["skip_synced"],
                batch_size=options["batch_size"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if params.since and params.until and params.since >= params.until:
            raise CommandError("--since must be before --until")
        select_orders(params).exists()  # a bad --ids or --status value fails here, not later
        return create_job(params, dry_run=options["dry_run"])

    def _summary(self, job: ImportJob) -> None:
        dry = job.parameters.get("dry_run")
        verb = "would be sent" if dry else "imported"
        took = (
            (job.finished_at - job.started_at).total_seconds()
            if job.finished_at and job.started_at
            else 0
        )
        self.stdout.write(
            f"Import job {job.pk}: {job.status}. {job.total} orders selected, {job.imported} "
            f"{verb}, {job.failed} failed, {len(job.batches)} batches, {took:.1f}s."
        )
        for failure in job.failures.all()[:10]:
            self.stdout.write(f"  failed {failure.source_id or failure.order_pk}: {failure.reason}")
        if job.failed > 10:
            self.stdout.write(f"  ... and {job.failed - 10} more (see --failures-csv or the admin)")
        if job.status in (JobStatus.INTERRUPTED, JobStatus.FAILED):
            raise CommandError(job.error)
        if job.failed:
            raise CommandError(f"{job.failed} orders were not imported.")


class _Progress:
    """A tqdm bar on a terminal; plain lines otherwise (logs, CI)."""

    def __init__(self, command: BaseCommand, job: ImportJob, *, bar: bool) -> None:
        self.command = command
        self.bar_wanted = bar and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        return self

    def update(self, job: ImportJob) -> None:
        done = job.imported + job.failed
        if self.bar_wanted:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=job.total, unit="order", desc=f"import #{job.pk}")
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(failed=job.failed)
        else:
            self.command.stderr.write(f"import #{job.pk}: {done}/{job.total} ({job.failed} failed)")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _check_writable(path: Path) -> None:
    directory = path.resolve().parent
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise CommandError(f"--failures-csv: cannot write to {directory}")


def _write_failures(job: ImportJob, path: Path) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.resolve().parent, suffix=".part")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source_id", "order_pk", "stage", "reason"])
            for failure in ImportFailure.objects.filter(job=job).iterator(chunk_size=2000):
                writer.writerow(
                    [failure.source_id, failure.order_pk, failure.stage, failure.reason]
                )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
