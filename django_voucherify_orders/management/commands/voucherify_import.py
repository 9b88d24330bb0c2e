"""Backfill historical orders into Voucherify through its bulk import."""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...importer import (
    ClaimLost,
    ImportParameters,
    JobBusy,
    JobFinished,
    check_claimable,
    create_job,
    run_import,
    select_orders,
)
from ...importer.params import unknown_ids
from ...importer.via_create import create_via_live_sync
from ...models import ImportFailure, ImportJob, JobStatus
from ..progress import Progress


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


BULK = "bulk import (no events, distributions or earning rules fire)"
CREATE = "create, through live sync (order events, distributions and earning rules fire)"


class Command(BaseCommand):
    help = (
        "Send orders to Voucherify that it does not hold yet. By default through the bulk "
        "import, for history: batches of up to 2000, no webhooks, distributions or earning "
        "rules fire, imported orders are marked synced so live sync does not push them "
        "again. --via create sends them through live sync's create instead (for recent "
        "orders that should earn loyalty points). Orders live sync already delivered are "
        "left out unless --include-synced."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_when, help="Orders from this date (inclusive).")
        parser.add_argument("--until", type=_when, help="Orders before this date.")
        parser.add_argument(
            "--status", action="append", default=[], type=_listed,
            help="Only orders with these statuses, in your model's values (repeatable or a,b).",
        )  # fmt: skip
        parser.add_argument(
            "--ids", type=_listed, default=[], help="Only these orders, by pk or source_id (a,b)."
        )
        parser.add_argument(
            "--include-synced", action="store_true",
            help="Also send orders whose sync row is synced (left out by default: Voucherify "
            "holds them, and its import refuses an order it holds).",
        )  # fmt: skip
        parser.add_argument(
            "--skip-synced", action="store_true",
            help="Deprecated, does nothing: leaving out synced orders is now the default.",
        )  # fmt: skip
        parser.add_argument(
            "--via", choices=["import", "create"], default="import",
            help="import (default): Voucherify's bulk import, for history. create: live "
            "sync's create, rate-limited, which fires order events and earning rules.",
        )  # fmt: skip
        parser.add_argument("--batch-size", type=int, default=2000, help="1 to 2000 (default).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and count; send nothing."
        )
        parser.add_argument(
            "--resume", type=int, metavar="JOB_ID",
            help="Continue an interrupted import job after its last finished batch (refused "
            "while another process runs it).",
        )  # fmt: skip
        parser.add_argument(
            "--async", action="store_true", dest="run_async",
            help="Run in the Celery workers: the import as a task (prints the job id); with "
            "--via create, the workers push the orders.",
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
        if options["via"] == "create":
            return self._create(options)
        job = self._job(options)
        self.stdout.write(f"Path: {BULK}.")
        if options["run_async"]:
            from ... import tasks

            if options["resume"]:
                self._claimable(job)
            tasks.run_import.delay(job.pk)
            self.stdout.write(f"Import job {job.pk} queued.")
            return
        with Progress(self, f"import #{job.pk}", bar=not options["no_progress"]) as progress:

            def update(job: ImportJob) -> None:
                done = job.imported + job.failed
                progress.start(job.total)
                progress.show(
                    done, f"import #{job.pk}: {done}/{job.total} ({job.failed} failed)",
                    failed=job.failed,
                )  # fmt: skip

            try:
                job = run_import(job, progress=update)
            except (JobBusy, JobFinished, ClaimLost) as exc:
                raise CommandError(str(exc)) from None
            except KeyboardInterrupt:
                raise CommandError(
                    f"Interrupted. Resume with: manage.py voucherify_import --resume {job.pk}"
                ) from None
        if options["failures_csv"]:
            _write_failures(job, options["failures_csv"])
        self._summary(job)

    def _claimable(self, job: ImportJob) -> None:
        try:
            check_claimable(job)
        except (JobBusy, JobFinished) as exc:
            raise CommandError(str(exc)) from None

    def _params(self, options: dict[str, Any]) -> ImportParameters:
        try:
            params = ImportParameters(
                since=options["since"],
                until=options["until"],
                statuses=tuple(s for group in options["status"] for s in group),
                ids=tuple(options["ids"]),
                skip_synced=not options["include_synced"],
                batch_size=options["batch_size"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if params.since and params.until and params.since >= params.until:
            raise CommandError("--since must be before --until")
        select_orders(params).exists()  # a bad --status value fails here, not later
        missing = unknown_ids(params) if params.ids else []
        if missing:
            raise CommandError(f"--ids: no order has the pk or source_id {', '.join(missing)}")
        return params

    def _job(self, options: dict[str, Any]) -> ImportJob:
        if options["resume"]:
            try:
                job = ImportJob.objects.get(pk=options["resume"])
            except ImportJob.DoesNotExist:
                raise CommandError(f"There is no import job {options['resume']}.") from None
            self._claimable(job)  # refused before anything is printed or queued
            return job
        return create_job(self._params(options), dry_run=options["dry_run"])

    def _create(self, options: dict[str, Any]) -> None:
        if options["resume"] or options["failures_csv"]:
            raise CommandError(
                "--via create keeps no job: --resume and --failures-csv are for imports "
                "(failed orders are on their sync rows: voucherify_sync --failed retries them)"
            )
        params = self._params(options)
        self.stdout.write(f"Path: {CREATE}.")
        done = create_via_live_sync(params, dry_run=options["dry_run"], queue=options["run_async"])
        skipped = self._skipped(done.skipped_synced)
        if options["dry_run"]:
            self.stdout.write(
                f"{done.selected} orders selected, {done.selected - done.invalid} would be "
                f"created, {done.invalid} can't be mapped.{skipped}"
            )
            return
        if options["run_async"]:
            self.stdout.write(
                f"{done.queued} orders marked changed; the Celery workers push them.{skipped}"
            )
            return
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(done.outcomes.items()))
        self.stdout.write(
            f"{done.selected} orders selected: {done.synced} synced, {done.failed} failed, "
            f"{done.pending} pending ({counts or 'nothing to do'}).{skipped}"
        )
        if done.paused:
            raise CommandError(
                "Voucherify refused the credentials: every push is paused; the orders not "
                "pushed stay pending and live sync sends them once the credentials work"
            )
        if done.failed or done.pending:
            raise CommandError(
                f"{done.failed} orders failed and {done.pending} are still pending: see their "
                "errors in the admin; voucherify_sync --failed retries failed ones once fixed, "
                "live sync retries pending ones"
            )

    def _skipped(self, count: int) -> str:
        if not count:
            return ""
        return f" {count} left out as already synced (--include-synced sends them)."

    def _summary(self, job: ImportJob) -> None:
        dry = job.parameters.get("dry_run")
        verb = "would be sent" if dry else "imported"
        took = (
            (job.finished_at - job.started_at).total_seconds()
            if job.finished_at and job.started_at
            else 0
        )
        held = f" {job.already_held} already in Voucherify," if job.already_held else ""
        self.stdout.write(
            f"Import job {job.pk}: {job.status}. {job.total} orders selected, {job.imported} "
            f"{verb},{held} {job.failed} failed, {len(job.batches)} batches, {took:.1f}s."
            f"{self._skipped(job.skipped_synced)}"
        )
        for failure in job.failures.all()[:10]:
            self.stdout.write(f"  failed {failure.source_id or failure.order_pk}: {failure.reason}")
        if job.failed > 10:
            self.stdout.write(f"  ... and {job.failed - 10} more (see --failures-csv or the admin)")
        if job.status in (JobStatus.INTERRUPTED, JobStatus.FAILED):
            raise CommandError(job.error)
        problems = []
        if job.unitemised:
            unsynced = sum(
                b["count"] - b.get("failed", 0) - b.get("held", 0)
                for b in job.batches
                if b["state"] == "unitemised"
            )
            problems.append(
                f"Voucherify counted {job.unitemised} failures without naming the orders, so "
                f"the {unsynced} orders of their batches are not marked synced (which failed "
                "is unknown). Run the same import again: synced orders are left out, the "
                "orders Voucherify holds come back as already in Voucherify and are marked "
                "synced, the others are sent again."
            )
        if job.failed:
            problems.append(f"{job.failed} orders were not imported.")
        if problems:
            raise CommandError(" ".join(problems))


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
