"""Historical import: local orders -> Voucherify's bulk import, in batches of up to 2000.

Orders are read in primary-key order, one batch at a time (keyset pagination, so memory
stays flat and each batch costs the same few queries whatever its position). Each batch
is validated locally (an invalid order is recorded and left out, the rest go on), sent as
one import request, and its async action polled until DONE or FAILED. The job row is a
checkpoint: a batch's async action id is saved before waiting for it, and ``last_pk``
after the batch is finished, so ``--resume`` never sends an order twice (except for a
batch interrupted between sending and saving its action id, whose orders then fail in
Voucherify as already existing).

Voucherify's import triggers no webhooks, distributions or earning rules: it is meant for
history. Orders imported here are marked synced, so live sync does not push them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from .bulk import insert_rows
from .client import (
    MAX_IMPORT_ORDERS,
    VoucherifyAPIError,
    VoucherifyClient,
    VoucherifyError,
    VoucherifyTransportError,
)
from .client.schemas import AsyncAction, OrderImport
from .conf import get_client
from .mapping import MappingError, OrderMapper, get_mapper
from .models import ImportFailure, ImportJob, JobStatus, OrderSync, SyncState
from .sync import payload_hash

__all__ = ["ImportParameters", "create_job", "run_import", "run_import_job", "select_orders"]

logger = logging.getLogger("django_voucherify_orders.importer")

Progress = Callable[[ImportJob], None]


@dataclass(frozen=True)
class ImportParameters:
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    skip_synced: bool = False
    batch_size: int = MAX_IMPORT_ORDERS

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_IMPORT_ORDERS:
            raise ValueError(f"batch size must be 1 to {MAX_IMPORT_ORDERS}, not {self.batch_size}")

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "statuses": list(self.statuses),
            "ids": list(self.ids),
            "skip_synced": self.skip_synced,
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportParameters:
        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            since=when(data.get("since")),
            until=when(data.get("until")),
            statuses=tuple(data.get("statuses") or ()),
            ids=tuple(data.get("ids") or ()),
            skip_synced=bool(data.get("skip_synced")),
            batch_size=int(data.get("batch_size") or MAX_IMPORT_ORDERS),
        )


def select_orders(params: ImportParameters, mapper: OrderMapper | None = None) -> QuerySet[Any]:
    """The orders to import, through the mapper's queryset, in primary-key order."""
    mapper = mapper or get_mapper()
    orders = mapper.get_queryset()
    if params.since:
        orders = orders.filter(**{f"{mapper.date_field}__gte": params.since})
    if params.until:
        orders = orders.filter(**{f"{mapper.date_field}__lt": params.until})
    if params.statuses:
        orders = orders.filter(**{f"{mapper.status_field}__in": params.statuses})
    if params.ids:
        orders = orders.filter(pk__in=params.ids)
    if params.skip_synced:
        synced = OrderSync.objects.filter(
            order_pk=Cast(OuterRef("pk"), CharField()), state=SyncState.SYNCED
        )
        orders = orders.exclude(Exists(synced))
    return orders.order_by("pk")


def create_job(params: ImportParameters, *, dry_run: bool = False) -> ImportJob:
    return ImportJob.objects.create(parameters={**params.to_json(), "dry_run": dry_run})


def run_import_job(job_pk: int) -> ImportJob:
    """Run (or resume) a job from its stored parameters; used by the Celery task."""
    return run_import(ImportJob.objects.get(pk=job_pk))


def run_import(
    job: ImportJob,
    *,
    client: VoucherifyClient | None = None,
    progress: Progress | None = None,
    poll_timeout: float = 3600.0,
) -> ImportJob:
    """Send the job's orders after ``job.last_pk``; finish any batch left in flight first.

    Raises nothing for Voucherify failures: the job row records them (status
    ``interrupted`` when resuming makes sense, ``failed`` when the data was refused).
    """
    params = ImportParameters.from_json(job.parameters)
    dry_run = bool(job.parameters.get("dry_run"))
    mapper = get_mapper()
    client = client or get_client()
    orders = select_orders(params, mapper)
    job.status = JobStatus.RUNNING
    job.error = ""
    job.started_at = job.started_at or timezone.now()
    if not job.last_pk and not job.batches:
        job.total = orders.count()
    job.save()
    batch_run = _BatchRunner(job, client, mapper, poll_timeout)
    try:
        if job.batches and job.batches[-1]["state"] != "done":
            batch_run.finish_in_flight(job.batches[-1])
            _report(progress, job)
        while True:
            remaining = orders.filter(pk__gt=job.last_pk) if job.last_pk else orders
            batch = list(remaining[: params.batch_size])
            if not batch:
                break
            batch_run.run(batch, dry_run=dry_run)
            _report(progress, job)
    except KeyboardInterrupt:
        batch_run.stop(JobStatus.INTERRUPTED, "interrupted (Ctrl-C)")
        raise
    except _BatchRefused as exc:
        batch_run.stop(JobStatus.FAILED, str(exc))
        return job
    except VoucherifyError as exc:
        batch_run.stop(JobStatus.INTERRUPTED, f"Voucherify unreachable or failing: {exc}")
        return job
    except TimeoutError as exc:
        batch_run.stop(JobStatus.INTERRUPTED, str(exc))
        return job
    job.status = JobStatus.DONE_WITH_FAILURES if job.failed else JobStatus.DONE
    job.finished_at = timezone.now()
    job.save()
    return job


def _report(progress: Progress | None, job: ImportJob) -> None:
    if progress is not None:
        progress(job)


class _BatchRefused(Exception):
    """Voucherify refused a whole batch (400, or the async action FAILED): stop here."""


class _BatchRunner:
    """Sends one batch, waits for it, records the outcome: a fixed number of queries."""

    def __init__(
        self, job: ImportJob, client: VoucherifyClient, mapper: OrderMapper, poll_timeout: float
    ) -> None:
        self.job = job
        self.client = client
        self.mapper = mapper
        self.poll_timeout = poll_timeout

    def run(self, orders: list[Any], *, dry_run: bool) -> None:
        models, local_failures = self._build(orders)
        payloads = {key: model.to_json() for key, model in models.items()}
        last_pk = str(orders[-1].pk)
        if dry_run or not payloads:
            self.job.failed += len(local_failures)
            self.job.imported += len(payloads)  # a dry run counts what would be sent
            self.job.last_pk = last_pk
            with transaction.atomic():
                insert_rows(ImportFailure, local_failures)
                self.job.save()
            return
        keys = list(payloads)
        entry = {
            "first_pk": str(orders[0].pk), "last_pk": last_pk, "count": len(payloads),
            "action_id": None, "state": "sending",
        }  # fmt: skip
        self.job.batches = [*self.job.batches, entry]
        self.job.save(update_fields=["batches"])
        try:
            entry["action_id"] = self.client.import_orders(list(models.values()))
        except VoucherifyError as exc:
            if _surely_not_received(exc):
                self._forget_batch()
            if getattr(exc, "status_code", None) == 400:
                raise _BatchRefused(
                    f"Voucherify refused the batch of orders {keys[0]}..{last_pk}: {exc}"
                ) from exc
            raise
        entry["state"] = "submitted"
        self.job.sent += len(payloads)
        self.job.save(update_fields=["batches", "sent"])
        self._finish(entry, payloads, local_failures)

    def finish_in_flight(self, entry: dict[str, Any]) -> None:
        """A resumed job: wait for the batch that was sent, or drop one never confirmed."""
        if not entry.get("action_id"):
            logger.warning(
                "batch %s..%s may or may not have reached Voucherify; sending it again",
                entry["first_pk"], entry["last_pk"],
            )  # fmt: skip
            self._forget_batch()
            return
        orders = self.mapper.get_queryset().filter(
            pk__gte=entry["first_pk"], pk__lte=entry["last_pk"]
        )
        models, local_failures = self._build(list(orders))
        payloads = {key: model.to_json() for key, model in models.items()}
        self._finish(entry, payloads, local_failures)

    def _build(self, orders: list[Any]) -> tuple[dict[str, OrderImport], list[Failure]]:
        """Validated payloads by order pk, and the orders that can't be sent, with reasons."""
        payloads: dict[str, OrderImport] = {}
        failures: list[Failure] = []
        for order in orders:
            try:
                payloads[str(order.pk)] = self.mapper.build(order, OrderImport)
            except MappingError as exc:
                failures.append(
                    _failure(
                        self.job, exc.source_id, str(order.pk), ImportFailure.Stage.LOCAL, str(exc)
                    )
                )
        return payloads, failures

    def _finish(
        self,
        entry: dict[str, Any],
        payloads: dict[str, dict[str, Any]],
        local_failures: list[Failure],
    ) -> None:
        action = self.client.wait_for_async_action(
            entry["action_id"], timeout=self.poll_timeout, poll_interval=0.05,
            max_poll_interval=5.0,
        )  # fmt: skip
        if action.status != "DONE":
            raise _BatchRefused(
                f"import {action.id} of orders {entry['first_pk']}..{entry['last_pk']} "
                f"ended {action.status}: {action.result}"
            )
        remote_failures = self._remote_failures(action, payloads)
        refused = {failure["source_id"] for failure in remote_failures}
        imported = {key: p for key, p in payloads.items() if p["source_id"] not in refused}
        failed = len(local_failures) + len(payloads) - len(imported)
        entry.update(state="done", done=len(imported), failed=failed)
        self.job.imported += len(imported)
        self.job.failed += failed
        self.job.last_pk = entry["last_pk"]
        # The outcome and the checkpoint together, or neither: a crash here resumes by
        # polling this batch's action again, never by recording it twice.
        with transaction.atomic():
            insert_rows(ImportFailure, local_failures + remote_failures)
            _mark_imported(imported)
            self.job.save()

    def _remote_failures(
        self, action: AsyncAction, payloads: dict[str, dict[str, Any]]
    ) -> list[Failure]:
        result = action.import_result
        by_source_id = {p["source_id"]: key for key, p in payloads.items()}
        failures = [
            _failure(
                self.job, failure.source_id, by_source_id.get(failure.source_id or "", ""),
                ImportFailure.Stage.REMOTE, failure.reason or "no reason given",
            )
            for failure in (result.failed if result else [])
        ]  # fmt: skip
        if result and result.failed_count > len(failures):
            # Voucherify counted failures it did not name: we can't tell which orders.
            logger.warning(
                "import %s: %d failure(s) not itemised",
                action.id,
                result.failed_count - len(failures),
            )
        return failures

    def _forget_batch(self) -> None:
        self.job.batches = self.job.batches[:-1]
        self.job.save(update_fields=["batches"])

    def stop(self, status: str, error: str) -> None:
        self.job.status = status
        where = f" after order {self.job.last_pk}" if self.job.last_pk else " at the start"
        resume = (
            f" Resume{where} with: manage.py voucherify_import --resume {self.job.pk}"
            if status in (JobStatus.INTERRUPTED, JobStatus.FAILED)
            else ""
        )
        self.job.error = f"{error}.{resume}"
        self.job.finished_at = timezone.now()
        self.job.save()
        logger.error("import job %s stopped: %s", self.job.pk, self.job.error)


Failure = dict[str, Any]  # an ImportFailure row, for insert_rows


def _failure(
    job: ImportJob, source_id: str | None, order_pk: str, stage: str, reason: str
) -> Failure:
    return {"job": job, "source_id": source_id or "", "order_pk": order_pk, "stage": stage,
            "reason": reason}  # fmt: skip


def _surely_not_received(exc: VoucherifyError) -> bool:
    """An answered error, or a connection never made: the orders were not imported."""
    if isinstance(exc, VoucherifyTransportError):
        return not exc.sent
    return isinstance(exc, VoucherifyAPIError) and exc.status_code < 500


def _mark_imported(payloads: dict[str, dict[str, Any]]) -> None:
    """Record imported orders as synced, so live sync won't push them again.

    Only orders without a sync row get one: an existing row belongs to live sync, which
    may hold a change made after this batch was read, and must push it.
    """
    now = timezone.now()
    rows = [
        {
            "order_pk": key, "source_id": payload["source_id"], "state": SyncState.SYNCED,
            "version": 1, "pushed_version": 1, "payload_hash": payload_hash(payload),
            "synced_at": now,
        }
        for key, payload in payloads.items()
    ]  # fmt: skip
    insert_rows(OrderSync, rows, ignore_conflicts=True)
