"""Compare local orders with Voucherify's, using one export instead of one GET per order.

The export (``id, source_id, status, amount``, in storage like any other export) is read
into a map keyed by ``source_id``; local orders are then read in primary-key order, in
batches, through the mapper's queryset, and each is compared with the payload the mapper
builds for it, i.e. with what a push would send:

- ``missing``: a local order Voucherify does not hold;
- ``different``: held by both, but the status or the amount differs;
- ``unmappable``: the mapper cannot build the order (a push would fail too);
- ``remote_only``: held by Voucherify, unknown here. Voucherify has no DELETE for orders,
  so one deleted here stays there: those (``OrderSync`` state ``deleted``) are listed as
  ``deleted`` and are not drift.

``fix=True`` marks the missing and different orders changed and pushes them
(:func:`~.sync.enqueue_sync`), batch by batch. Memory: the remote map (a few short
strings per order) plus one batch of local orders; the findings kept for the report are
capped per kind, while the counts are exact.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import models, transaction

from . import exporter
from .client import (
    AuthenticationError,
    NotFound,
    RateLimitBusy,
    RateLimited,
    VoucherifyClient,
    VoucherifyError,
    VoucherifyServerError,
    VoucherifyTransportError,
)
from .client.schemas import Export, OrderCreate
from .conf import get_client
from .mapping import MappingError, OrderMapper, get_mapper
from .models import ExportJob, OrderSync, SyncState
from .reconcile_deep import deep_compare
from .sync import enqueue_sync

__all__ = [
    "DIFFERENT",
    "DRIFT_KINDS",
    "KINDS",
    "MISSING",
    "REMOTE_FIELDS",
    "REMOTE_ONLY",
    "UNMAPPABLE",
    "ExportHeaderError",
    "Finding",
    "Reconciliation",
    "compare",
    "expected_state",
    "read_remote",
    "reconcile",
]

MISSING = "missing"
DIFFERENT = "different"
UNMAPPABLE = "unmappable"
REMOTE_ONLY = "remote_only"
DELETED = "deleted"
KINDS = (MISSING, DIFFERENT, UNMAPPABLE, REMOTE_ONLY, DELETED)
DRIFT_KINDS = (MISSING, DIFFERENT, UNMAPPABLE, REMOTE_ONLY)
TITLES = {
    MISSING: "Missing in Voucherify",
    DIFFERENT: "Different in Voucherify (status or amount)",
    UNMAPPABLE: "Not mappable (the mapper fails; a push would fail too)",
    REMOTE_ONLY: "In Voucherify only",
    DELETED: "Deleted locally, kept by Voucherify (expected: orders can't be deleted there)",
}
REMOTE_FIELDS = ("id", "source_id", "status", "amount")
DEFAULT_BATCH_SIZE = 500
DEFAULT_SAMPLE = 50


@dataclass(frozen=True, slots=True)
class Remote:
    id: str
    status: str
    amount: int | None


@dataclass(frozen=True)
class Finding:
    kind: str
    source_id: str
    order_pk: str = ""  # the local key ("" for remote_only)
    voucherify_id: str = ""
    detail: str = ""
    sync_state: str = ""  # the local OrderSync state, if any


@dataclass
class Reconciliation:
    """Exact counts per kind, the first ``sample`` findings of each, and what was fixed."""

    sample: int = DEFAULT_SAMPLE
    local_count: int = 0
    remote_count: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    findings: dict[str, list[Finding]] = field(default_factory=lambda: {k: [] for k in KINDS})
    fixed: int = 0
    export_job: ExportJob | None = None
    checked_through: str | None = None  # the last local pk checked: resume after it

    def add(self, finding: Finding) -> None:
        self.counts[finding.kind] += 1
        if len(self.findings[finding.kind]) < self.sample:
            self.findings[finding.kind].append(finding)

    @property
    def drift(self) -> int:
        return sum(self.counts[kind] for kind in DRIFT_KINDS)

    @property
    def clean(self) -> bool:
        return self.drift == 0

    def summary(self) -> str:
        parts = [f"{self.counts[kind]} {kind.replace('_', ' ')}" for kind in KINDS]
        return ", ".join(parts)


def expected_state(payload: OrderCreate) -> tuple[str, int | None]:
    """The status and amount Voucherify shows for ``payload`` (an amount-less order takes
    the sum of its items' amounts, an item's being ``price x quantity`` when not given)."""
    status = payload.status or "CREATED"  # Voucherify's default
    if payload.amount is not None:
        return status, payload.amount
    amounts = []
    for item in payload.items or ():
        if item.amount is not None:
            amounts.append(item.amount)
        elif item.price is not None and item.quantity is not None:
            amounts.append(item.price * item.quantity)
    return status, (sum(amounts) if amounts else None)


def compare(payload: OrderCreate, remote: Remote) -> str:
    """What differs between the local payload and the remote order; "" when nothing does."""
    status, amount = expected_state(payload)
    differences = []
    if remote.status != status:
        differences.append(f"status: local {status}, Voucherify {remote.status or '-'}")
    if amount is not None and remote.amount != amount:
        shown = "-" if remote.amount is None else remote.amount
        differences.append(f"amount: local {amount}, Voucherify {shown}")
    return "; ".join(differences)


class ExportHeaderError(ValueError):
    """The export's header row has no column for a field reconcile needs."""


def column_key(label: str) -> str:
    """A header cell as a field key: ``"Source ID"``, ``"source-id"`` -> ``"source_id"``."""
    key = re.sub(r"[\s\-]+", "_", label.strip().lstrip("\ufeff").lower())
    return _LABEL_ALIASES.get(key, key)


# Display labels that are not just the key spelled with spaces (Voucherify does not list
# the labels of order exports; its voucher exports say "ID", "Code", "Voucher Type").
_LABEL_ALIASES = {"order_id": "id", "order_source_id": "source_id", "order_status": "status"}


def read_remote(
    csv_file: IO[bytes], columns: tuple[str, ...] = REMOTE_FIELDS
) -> Iterator[dict[str, str]]:
    """Rows of an export CSV as dicts keyed by field name, the columns found by the header.

    The header may name a column by its field key (``source_id``) or a display label
    (``Source ID``), in any case and order; other columns are ignored. Raises
    :class:`ExportHeaderError` naming the field and the header seen when a column is missing.
    """
    text = io.TextIOWrapper(csv_file, encoding="utf-8", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, [])
        positions = {column_key(label): index for index, label in reversed(list(enumerate(header)))}
        missing = [name for name in columns if name not in positions]
        if missing:
            raise ExportHeaderError(
                f"the export has no column for {', '.join(missing)} (its header row is "
                f"{','.join(header) or '(empty)'}); reconcile needs {', '.join(columns)}"
            )
        wanted = [(name, positions[name]) for name in columns]
        for row in reader:
            if row:
                yield {name: row[index] if index < len(row) else "" for name, index in wanted}
    finally:
        text.detach()


def _amount(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return None


def fetch_remote(
    *,
    timeout: float = exporter.DEFAULT_TIMEOUT,
    poll_interval: float = exporter.DEFAULT_POLL_INTERVAL,
    on_poll: Callable[[Export], None] | None = None,
    client: VoucherifyClient | None = None,
    keep_export: bool = False,
) -> tuple[ExportJob, dict[str, Remote], list[Remote]]:
    """One export of every order: ``source_id -> Remote``, and orders without a source_id.

    The CSV is read from a temporary file and kept in the export storage only with
    ``keep_export``. Raises :class:`~.exporter.ExportFailed` or :class:`ExportHeaderError`.
    """
    request = exporter.ExportRequest(fields=REMOTE_FIELDS, order="created_at")
    job = exporter.create_job(request)
    remote: dict[str, Remote] = {}
    anonymous: list[Remote] = []
    with tempfile.TemporaryDirectory(prefix="voucherify-reconcile-") as directory:
        path = Path(directory) / "orders.csv"
        job = exporter.run_export(
            job,
            output=exporter.FileOutput(path),
            timeout=timeout,
            poll_interval=poll_interval,
            on_poll=on_poll,
            client=client,
            store=keep_export,
        )
        with path.open("rb") as csv_file:
            for row in read_remote(csv_file):
                amount = _amount(row.get("amount"))
                entry = Remote(row.get("id", ""), row.get("status", ""), amount)
                source_id = row.get("source_id") or ""
                if source_id:
                    remote[source_id] = entry
                else:
                    anonymous.append(entry)
    return job, remote, anonymous


class Interrupted(Exception):
    """A deep run stopped part-way (Ctrl-C, Voucherify unreachable): ``result`` holds what
    was checked, up to and including order ``result.checked_through``."""

    def __init__(self, result: Reconciliation, cause: BaseException) -> None:
        self.result = result
        self.cause = cause
        super().__init__(f"interrupted: {cause or type(cause).__name__}")


@dataclass
class _Deep:
    """What deep mode needs besides the export: the client for the GETs, and progress."""

    client: VoucherifyClient
    on_progress: Callable[[int], None] | None = None


def reconcile(
    *,
    fix: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sample: int = DEFAULT_SAMPLE,
    timeout: float = exporter.DEFAULT_TIMEOUT,
    poll_interval: float = exporter.DEFAULT_POLL_INTERVAL,
    on_poll: Callable[[Export], None] | None = None,
    client: VoucherifyClient | None = None,
    mapper: OrderMapper | None = None,
    keep_export: bool = False,
    deep: bool = False,
    resume_after: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Reconciliation:
    """Compare every local order with Voucherify's; with ``fix``, push the drifted ones.

    ``deep`` also GETs each order Voucherify holds (through the client, so through the
    shared rate limiter) and compares every field the mapper sends
    (:func:`~.reconcile_deep.deep_compare`). ``resume_after`` (a local pk) checks only the
    orders after it: the orders up to it were checked by the interrupted run. Local
    orders are read in pk order; ``on_start(total)`` and ``on_progress(checked)`` report.

    Raises :class:`~.exporter.ExportFailed` when the export fails and
    :class:`ExportHeaderError` when it lacks a column (nothing is compared), and
    :class:`Interrupted` when a deep run stops part-way.
    """
    mapper = mapper or get_mapper()
    result = Reconciliation(sample=sample)
    job, remote, anonymous = fetch_remote(
        timeout=timeout, poll_interval=poll_interval, on_poll=on_poll, client=client,
        keep_export=keep_export,
    )  # fmt: skip
    result.export_job = job
    result.remote_count = len(remote) + len(anonymous)
    deep_mode = _Deep(client or get_client(), on_progress) if deep else None

    queryset = mapper.get_queryset().order_by("pk")
    if resume_after is not None:
        # Checked before the interruption: only taken out of the remote map, so that they
        # are not reported as Voucherify's only.
        for order in queryset.filter(pk__lte=resume_after).iterator(chunk_size=batch_size):
            with contextlib.suppress(Exception):  # reported by the run that checked it
                remote.pop(mapper.source_id(order), None)
        queryset = queryset.filter(pk__gt=resume_after)
    if on_start is not None:
        on_start(queryset.count())
    batch: list[models.Model] = []
    try:
        for order in queryset.iterator(chunk_size=batch_size):
            batch.append(order)
            if len(batch) >= batch_size:
                _check_batch(batch, mapper, remote, result, fix, deep_mode)
                batch = []
        if batch:
            _check_batch(batch, mapper, remote, result, fix, deep_mode)
    except (KeyboardInterrupt, VoucherifyError) as exc:
        if deep_mode is None or (isinstance(exc, VoucherifyError) and not _is_outage(exc)):
            raise
        raise Interrupted(result, exc) from exc

    _check_remote_only(remote, result, batch_size)
    for entry in anonymous:
        result.add(Finding(REMOTE_ONLY, "", voucherify_id=entry.id, detail="no source_id"))
    return result


def _is_outage(error: VoucherifyError) -> bool:
    """Worth continuing later: no answer, 5xx, 429, no slot of the shared rate limit
    (nothing sent), refused credentials."""
    return isinstance(
        error,
        VoucherifyTransportError
        | VoucherifyServerError
        | RateLimited
        | RateLimitBusy
        | AuthenticationError,
    )


def _check_batch(
    orders: list[models.Model],
    mapper: OrderMapper,
    remote: dict[str, Remote],
    result: Reconciliation,
    fix: bool,
    deep: _Deep | None = None,
) -> None:
    """One batch, all or nothing: its findings are added and its fixes queued only once
    every order of it is checked, so ``checked_through`` is a safe place to resume."""
    findings: list[Finding] = []
    to_fix: list[models.Model] = []
    rows = _sync_rows(orders) if deep else {}
    for order in orders:
        key = str(order.pk)
        try:
            source_id = mapper.source_id(order)
        except Exception as exc:  # user code: fail this order, not the run
            findings.append(Finding(UNMAPPABLE, "", key, detail=f"source_id: {exc!r}"))
            continue
        found = remote.pop(source_id, None)
        try:
            payload = mapper.build(order)
        except MappingError as exc:
            detail = "; ".join(f"{field}: {message}" for field, message in exc.problems)
            vid = found.id if found else ""
            findings.append(Finding(UNMAPPABLE, source_id, key, vid, detail))
            continue
        if found is None:
            findings.append(Finding(MISSING, source_id, key))
            to_fix.append(order)
            continue
        if deep is None:
            detail = compare(payload, found)
        else:
            detail, gone = _deep_detail(deep, payload, found, rows.get(key))
            if gone:
                findings.append(Finding(MISSING, source_id, key, found.id, detail))
                to_fix.append(order)
                continue
        if detail:
            findings.append(Finding(DIFFERENT, source_id, key, found.id, detail))
            to_fix.append(order)
    states = dict(
        OrderSync.objects.filter(pk__in=[f.order_pk for f in findings]).values_list("pk", "state")
    )
    fixed = 0
    if fix and to_fix:
        with transaction.atomic():
            # force: when Voucherify's copy changed on its side, the payload equals the
            # last one pushed, and a plain push would be skipped as unchanged.
            fixed = enqueue_sync(to_fix, force=True)
    # Only now is the batch done: an interruption before this line checks it again.
    for finding in findings:
        state = states.get(finding.order_pk, "")
        result.add(Finding(**{**finding.__dict__, "sync_state": state}))
    result.fixed += fixed
    result.local_count += len(orders)
    result.checked_through = str(orders[-1].pk)
    if deep is not None and deep.on_progress is not None:
        deep.on_progress(result.local_count)


def _sync_rows(orders: list[models.Model]) -> dict[str, dict[str, Any]]:
    return {
        row["pk"]: dict(row)
        for row in OrderSync.objects.filter(pk__in=[str(o.pk) for o in orders]).values(
            "pk", "last_payload", "remote_snapshot"
        )
    }


def _deep_detail(
    deep: _Deep, payload: OrderCreate, found: Remote, row: dict[str, Any] | None
) -> tuple[str, bool]:
    """(the differences, whether Voucherify no longer has the order)."""
    try:
        order = deep.client.get_order(found.id)
    except NotFound:
        return f"in the export as {found.id}, but a GET finds no such order", True
    differences = deep_compare(
        payload,
        order.model_dump(mode="json"),
        last_payload=(row or {}).get("last_payload"),
        snapshot=(row or {}).get("remote_snapshot"),
    )
    return ", ".join(differences), False


def _check_remote_only(remote: dict[str, Remote], result: Reconciliation, batch_size: int) -> None:
    source_ids = list(remote)
    for start in range(0, len(source_ids), batch_size):
        chunk = source_ids[start : start + batch_size]
        deleted = dict(
            OrderSync.objects.filter(source_id__in=chunk, state=SyncState.DELETED).values_list(
                "source_id", "pk"
            )
        )
        for source_id in chunk:
            entry = remote[source_id]
            if source_id in deleted:
                result.add(
                    Finding(DELETED, source_id, deleted[source_id], entry.id, sync_state="deleted")
                )
            else:
                result.add(Finding(REMOTE_ONLY, source_id, voucherify_id=entry.id))
