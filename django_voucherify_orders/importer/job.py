"""Running an import job: batches read in pk order, sent, polled and recorded.

Orders are read in primary-key order, one batch at a time (keyset pagination, so memory
stays flat and each batch costs the same few queries whatever its position). Each batch
is validated locally (an invalid order is recorded, with a failed sync row, and left out;
the rest go on), sent as one import request, and its async action polled until DONE or
FAILED. The job row is a checkpoint: a batch's async action id and the pks it sent are
saved before waiting for it, and ``last_pk`` after the batch is finished, so ``--resume``
polls a sent batch again and records exactly its orders. A batch whose request may or may
not have reached Voucherify (a dropped connection, a 5xx) is sent again on resume: its
orders Voucherify imported the first time then come back as already existing, and are
marked synced, not failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..client import (
    RateLimitBusy,
    VoucherifyAPIError,
    VoucherifyClient,
    VoucherifyError,
    VoucherifyTransportError,
)
from ..client.schemas import AsyncAction, OrderImport
from ..conf import get_client
from ..mapping import MappingError, OrderMapper, get_mapper
from ..models import ImportFailure, ImportJob, JobStatus, OrderSync
from .claim import PROGRESS_FIELDS, ClaimLost, ImportClaim, JobBusy, JobFinished, claim_job
from .params import ImportParameters, count_left_out_synced, select_orders
from .rows import Failure, already_exists, failure, insert_failures, mark_failed, mark_synced

__all__ = ["create_job", "run_import", "run_import_job"]

logger = logging.getLogger("django_voucherify_orders.importer")

Progress = Callable[[ImportJob], None]


def create_job(params: ImportParameters, *, dry_run: bool = False) -> ImportJob:
    return ImportJob.objects.create(parameters={**params.to_json(), "dry_run": dry_run})


def run_import_job(job_pk: int) -> ImportJob:
    """Run (or resume) a job from its stored parameters; used by the Celery task.

    A job another runner holds (or has finished) is left alone, with a log line: the
    task claims the job as the command does."""
    job = ImportJob.objects.get(pk=job_pk)
    try:
        return run_import(job)
    except (JobBusy, JobFinished, ClaimLost) as exc:
        logger.warning("import task for job %s: %s", job_pk, exc)
        job.refresh_from_db()
        return job


def run_import(
    job: ImportJob,
    *,
    client: VoucherifyClient | None = None,
    progress: Progress | None = None,
    poll_timeout: float = 3600.0,
) -> ImportJob:
    """Claim the job, then send its orders after ``job.last_pk``; finish any batch left
    in flight first.

    Raises ``JobBusy`` (another runner is alive), ``JobFinished`` or ``ClaimLost`` (another
    runner took over), and nothing for Voucherify failures: the job row records them
    (status ``interrupted`` when resuming makes sense, ``failed`` when the data was refused).
    """
    claim = claim_job(job)
    try:
        return _run(claim, client or get_client(), progress, poll_timeout)
    finally:
        claim.release()


def _run(
    claim: ImportClaim, client: VoucherifyClient, progress: Progress | None, poll_timeout: float
) -> ImportJob:
    job = claim.job
    params = ImportParameters.from_json(job.parameters)
    dry_run = bool(job.parameters.get("dry_run"))
    mapper = get_mapper()
    orders = select_orders(params, mapper)
    job.error = ""
    job.started_at = job.started_at or timezone.now()
    if not job.last_pk and not job.batches:
        job.total = orders.count()
        job.skipped_synced = count_left_out_synced(params, job.total)
    claim.save()
    batch_run = _BatchRunner(claim, client, mapper, poll_timeout)
    try:
        if job.batches and job.batches[-1]["state"] not in ("done", "unitemised"):
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
    except RateLimitBusy as exc:  # Voucherify is fine: the shared quota is used up for now
        batch_run.stop(JobStatus.INTERRUPTED, str(exc))
        return job
    except VoucherifyError as exc:
        batch_run.stop(JobStatus.INTERRUPTED, f"Voucherify unreachable or failing: {exc}")
        return job
    except TimeoutError as exc:
        batch_run.stop(JobStatus.INTERRUPTED, str(exc))
        return job
    except ClaimLost:
        raise  # another runner owns the job now: nothing of it is ours to write
    except Exception as exc:
        # A database error, a bug: the job says so and how to resume (the checkpoint is
        # intact), rather than "running" until its runner is deemed dead. Then re-raise,
        # so the worker's or the command's traceback shows it too.
        batch_run.stop(JobStatus.INTERRUPTED, f"stopped by {type(exc).__name__}: {exc}")
        raise
    failed = job.failed or job.unitemised
    job.status = JobStatus.DONE_WITH_FAILURES if failed else JobStatus.DONE
    job.finished_at = timezone.now()
    claim.save()
    return job


def _report(progress: Progress | None, job: ImportJob) -> None:
    if progress is not None:
        progress(job)


class _BatchRefused(Exception):
    """Voucherify refused a whole batch (400, or the async action FAILED): stop here."""


class _BatchRunner:
    """Sends one batch, waits for it, records the outcome: a fixed number of queries."""

    def __init__(
        self, claim: ImportClaim, client: VoucherifyClient, mapper: OrderMapper, poll_timeout: float
    ) -> None:
        self.claim = claim
        self.job = claim.job
        self.client = client
        self.mapper = mapper
        self.poll_timeout = poll_timeout

    def run(self, orders: list[Any], *, dry_run: bool) -> None:
        models, local_failures, errors = self._build(orders)
        payloads = {key: model.to_json() for key, model in models.items()}
        last_pk = str(orders[-1].pk)
        if dry_run or not payloads:
            self.job.failed += len(local_failures)
            self.job.imported += len(payloads)  # a dry run counts what would be sent
            self.job.last_pk = last_pk
            with transaction.atomic():
                insert_failures(local_failures)
                if not dry_run:  # a dry run changes no order's sync state
                    mark_failed(errors)
                self.claim.save()
            return
        keys = list(payloads)
        # The pks sent, kept while the batch is in flight (its entry only), so that a
        # resume records exactly these orders, whatever the selection would be by then.
        entry = {
            "first_pk": str(orders[0].pk), "last_pk": last_pk, "count": len(payloads),
            "action_id": None, "state": "sending", "pks": keys,
            "invalid": [f["order_pk"] for f in local_failures],
        }  # fmt: skip
        self.job.batches = [*self.job.batches, entry]
        self.claim.save()
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
        # The batch was sent: its invalid orders are recorded now, once (a batch sent
        # again after a dropped connection is read and validated again).
        self.job.failed += len(local_failures)
        if local_failures:
            with transaction.atomic():
                insert_failures(local_failures)
                mark_failed(errors)
                self.claim.save()
        else:
            self.claim.save()
        self._finish(entry, payloads, [])

    def finish_in_flight(self, entry: dict[str, Any]) -> None:
        """A resumed job: wait for the batch that was sent, or drop one never confirmed."""
        if not entry.get("action_id"):
            logger.warning(
                "batch %s..%s may or may not have reached Voucherify; sending it again "
                "(orders it imported come back as already existing)",
                entry["first_pk"], entry["last_pk"],
            )  # fmt: skip
            self._forget_batch()
            return
        # Exactly the orders sent (a job saved before batches listed them: the pk range).
        if "pks" in entry:
            sent = self.mapper.get_queryset().filter(pk__in=entry["pks"])
        else:
            orders = select_orders(ImportParameters.from_json(self.job.parameters), self.mapper)
            sent = orders.filter(pk__gte=entry["first_pk"], pk__lte=entry["last_pk"])
        models, local_failures, errors = self._build(list(sent))
        # Invalid now, though valid when sent (changed since): recorded with the outcome.
        payloads = {key: model.to_json() for key, model in models.items()}
        self._finish(entry, payloads, local_failures, errors)

    def _build(
        self, orders: list[Any]
    ) -> tuple[dict[str, OrderImport], list[Failure], list[MappingError]]:
        """Validated payloads by order pk, and the orders that can't be sent, with reasons."""
        payloads: dict[str, OrderImport] = {}
        failures: list[Failure] = []
        errors: list[MappingError] = []
        first_with: dict[str | None, str] = {}  # source_id -> the batch's first order with it
        for order in orders:
            try:
                payload = self.mapper.build(order, OrderImport)
                holder = first_with.setdefault(payload.source_id, str(order.pk))
                if holder != str(order.pk):  # Voucherify would take them for one order
                    raise MappingError(
                        order.pk, payload.source_id, [("source_id", f"also order {holder}'s")]
                    )
                payloads[str(order.pk)] = payload
            except MappingError as exc:
                errors.append(exc)
                failures.append(
                    failure(
                        self.job, exc.source_id, str(order.pk), ImportFailure.Stage.LOCAL, str(exc)
                    )
                )
        return payloads, failures, errors

    def _finish(
        self,
        entry: dict[str, Any],
        payloads: dict[str, dict[str, Any]],
        local_failures: list[Failure],
        errors: list[MappingError] | None = None,
    ) -> None:
        action = self.client.wait_for_async_action(
            entry["action_id"], timeout=self.poll_timeout, poll_interval=0.05,
            max_poll_interval=5.0, on_poll=self._beat,
        )  # fmt: skip
        if action.status != "DONE":
            self._forget_failed_batch(entry)
            raise _BatchRefused(
                f"import {action.id} of orders {entry['first_pk']}..{entry['last_pk']} "
                f"ended {action.status}: {action.result}"
            )
        named, unnamed = self._remote_failures(action, payloads)
        # An order Voucherify already holds is in Voucherify: live sync delivered it during
        # the import, or this batch's earlier request landed unanswered. Not a failure.
        held = {
            f["order_pk"]: payloads[f["order_pk"]]
            for f in named
            if f["order_pk"] in payloads and already_exists(f["reason"])
        }
        if held:  # unless another local order holds that source_id: then two share it
            shared = _sources_of_other_orders(held)
            for f in named:
                if f["order_pk"] in held and f["source_id"] in shared:
                    del held[f["order_pk"]]
                    f["reason"] += f" (the source_id of order {shared[f['source_id']]} too)"
        refused = [f for f in named if f["order_pk"] not in held]
        refused_keys = {f["order_pk"] for f in refused}
        if unnamed:
            # Which orders failed is unknown: none of the batch is marked synced. They
            # have no row (or live sync's), so the next import selects and sends them.
            imported: dict[str, dict[str, Any]] = {}
            entry.update(state="unitemised", unitemised=unnamed)
            self.job.unitemised += unnamed
        else:
            imported = {
                k: p for k, p in payloads.items() if k not in held and k not in refused_keys
            }
            entry["state"] = "done"
        entry.pop("pks", None)
        entry.pop("invalid", None)
        entry.update(done=len(imported), held=len(held), failed=len(local_failures) + len(refused))
        self.job.imported += len(imported)
        self.job.already_held += len(held)
        self.job.failed += len(local_failures) + len(refused)
        self.job.last_pk = entry["last_pk"]
        # The outcome and the checkpoint together, or neither: a crash here resumes by
        # polling this batch's action again, never by recording it twice.
        with transaction.atomic():
            insert_failures(local_failures + refused)
            mark_failed(errors or [])
            mark_synced(imported, held)
            self.claim.save()

    def _beat(self, action: AsyncAction) -> None:
        if not action.finished:  # a finished one is recorded (and beats) at once
            self.claim.beat()

    def _remote_failures(
        self, action: AsyncAction, payloads: dict[str, dict[str, Any]]
    ) -> tuple[list[Failure], int]:
        """The failures Voucherify named, and how many more it counted without naming."""
        result = action.import_result
        by_source_id = {p["source_id"]: key for key, p in payloads.items()}
        failures = [
            failure(
                self.job, item.source_id, by_source_id.get(item.source_id or "", ""),
                ImportFailure.Stage.REMOTE, item.reason or "no reason given",
            )
            for item in (result.failed if result else [])
        ]  # fmt: skip
        unnamed = max(0, result.failed_count - len(failures)) if result else 0
        if unnamed:
            logger.warning(
                "import %s: Voucherify counted %d failure(s) without naming the orders; "
                "the batch of orders %s..%s is left unsynced",
                action.id, unnamed, next(iter(payloads), ""), list(payloads)[-1:],
            )  # fmt: skip
        return failures, unnamed

    def _forget_failed_batch(self, entry: dict[str, Any]) -> None:
        """The action ended FAILED: which of the batch Voucherify holds is unknown, and
        polling it again only fails again. The batch is forgotten, so a resume sends it
        again (orders it did import come back as already existing), and what sending it
        counted is taken back: the resend reads, validates and counts its orders anew."""
        invalid = entry.get("invalid", [])
        self.job.sent -= entry["count"]
        self.job.failed -= len(invalid)
        self.job.batches = self.job.batches[:-1]
        with transaction.atomic():
            ImportFailure.objects.filter(
                job=self.job, stage=ImportFailure.Stage.LOCAL, order_pk__in=invalid
            ).delete()
            self.claim.save()

    def _forget_batch(self) -> None:
        self.job.batches = self.job.batches[:-1]
        self.claim.save()

    def stop(self, status: str, error: str) -> None:
        # The job as last saved: what an interrupted write (its transaction rolled back)
        # changed in memory only, such as a batch counted done, must not be saved now.
        self.job.refresh_from_db(fields=[name for name in PROGRESS_FIELDS if name != "status"])
        self.job.status = status
        where = f" after order {self.job.last_pk}" if self.job.last_pk else " at the start"
        resume = (
            f" Resume{where} with: manage.py voucherify_import --resume {self.job.pk}"
            if status in (JobStatus.INTERRUPTED, JobStatus.FAILED)
            else ""
        )
        self.job.error = f"{error}.{resume}"
        self.job.finished_at = timezone.now()
        self.claim.save()
        logger.error("import job %s stopped: %s", self.job.pk, self.job.error)


def _sources_of_other_orders(orders: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The source_ids of ``orders`` that sync rows of other orders hold, and those orders."""
    rows = OrderSync.objects.filter(
        source_id__in=[payload["source_id"] for payload in orders.values()]
    ).exclude(pk__in=list(orders))
    return dict(rows.values_list("source_id", "pk"))  # type: ignore[arg-type]


def _surely_not_received(exc: VoucherifyError) -> bool:
    """An answered error, a connection never made, or no rate-limit slot (no request):
    the orders were not imported."""
    if isinstance(exc, RateLimitBusy):
        return True
    if isinstance(exc, VoucherifyTransportError):
        return not exc.sent
    return isinstance(exc, VoucherifyAPIError) and exc.status_code < 500
