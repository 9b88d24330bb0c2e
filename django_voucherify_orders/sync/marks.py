"""Outbox marks: record, in the shop's own transaction, that an order changed.

The request path: no HTTP call, and one outbox write per order per transaction (later
saves of the same order in that transaction find it marked); the push is queued after
commit. The outbox lives in the database the routers give ``OrderSync``, which the
system check vo.E008 makes sure is the order model's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import models, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..mapping import get_mapper
from ..models import NO_ERROR, OrderSync, SyncState
from .publisher import marked_in_transaction, push_after_commit

__all__ = ["enqueue_sync", "mark_changed", "mark_deleted", "outbox_database"]

logger = logging.getLogger("django_voucherify_orders.sync")

# What a row knew of the order Voucherify holds: forgotten when a new order takes the
# row over, so its first push is a POST (an upsert) of its full payload.
FORGET_REMOTE: dict[str, Any] = dict(
    voucherify_id="", payload_hash="", last_payload=None, remote_snapshot=None,
    synced_at=None, **NO_ERROR,
)  # fmt: skip


def outbox_database() -> str:
    """The database alias of the outbox: where the marks are written and pushes read."""
    return router.db_for_write(OrderSync)


def mark_changed(
    order_pk: Any, source_id: str | None = None, *, created: bool = False, using: str | None = None
) -> None:
    """Record in the current transaction that an order changed, and push it after commit.

    ``created``: the order is new, even if a row with its key or ``source_id`` is left
    from an earlier order (an explicit or natural key that comes back, a restored order,
    a reused ``source_id``): the row is taken over as a new order's.

    ``using`` is the order's database: the push follows the commit of its transaction.
    The mark goes to :func:`outbox_database`, the same database when the routers are
    right (system check vo.E008).
    """
    key = str(order_pk)
    database = outbox_database()
    order_database = using or database
    if created:
        _mark_new({key: source_id}, timezone.now(), database)
    elif not marked_in_transaction(key, order_database):
        now = timezone.now()
        row = OrderSync.objects.using(database).filter(pk=key)
        if not _bump(row, now):
            # An order that changed before the app was installed, or whose row is gone.
            _mark_new({key: source_id}, now, database)
            # A row written meanwhile (the import recording this order synced, from what
            # it read before this change) wins the insert: bump it, or the change lives
            # only in the push queued after commit.
            _bump(row, now)
    push_after_commit(key, order_database)


def _bump(rows: models.QuerySet[OrderSync], now: Any, **fields: Any) -> int:
    """Mark existing rows changed: a new version, pending, due now, attempts reset."""
    return rows.update(
        version=F("version") + 1, state=SyncState.PENDING, attempts=0,
        next_attempt_at=now, updated_at=now, **fields,
    )  # fmt: skip


def _mark_new(source_ids: dict[str, str | None], now: Any, database: str) -> None:
    """Mark new orders pending: an upsert of their rows (order key -> source_id).

    A row left with the same key is bumped to a new version and forgets the remote order
    it knew; a ``source_id`` held by another row (a deleted order's, or a stale one) is
    freed on that row first, in the same transaction. One SELECT and one INSERT for new
    orders that collide with nothing; no IntegrityError to catch (which would abort a
    PostgreSQL transaction).
    """
    rows = OrderSync.objects.using(database)
    wanted = {source_id: key for key, source_id in source_ids.items() if source_id is not None}
    found = rows.filter(Q(pk__in=list(source_ids)) | Q(source_id__in=list(wanted)))
    existing: dict[str, str | None] = {}
    holders: list[str] = []
    for pk, held, state in found.values_list("pk", "source_id", "state"):
        if pk in source_ids:
            existing[pk] = held
        if held in wanted and wanted[held] != pk:
            holders.append(pk)
            if state != SyncState.DELETED:
                logger.warning(
                    "order %s takes over source_id %r from order %s, which is not deleted: "
                    "both would be the same order in Voucherify",
                    wanted[held], held, pk,
                )  # fmt: skip
    new = [
        OrderSync(order_pk=key, source_id=source_id, next_attempt_at=now)
        for key, source_id in source_ids.items()
        if key not in existing
    ]
    if not (existing or holders):
        # A concurrent insert of the same key or source_id wins; the sweep finds an order
        # left without a row (SWEEP_ORPHANS_WITHIN).
        rows.bulk_create(new, ignore_conflicts=True)
        return
    with transaction.atomic(using=database, savepoint=False):
        if holders:
            rows.filter(pk__in=holders).update(source_id=None, updated_at=now)
        for pk, held in existing.items():
            fields = dict(FORGET_REMOTE)
            if source_ids[pk] is not None and source_ids[pk] != held:
                fields["source_id"] = source_ids[pk]
            _bump(rows.filter(pk=pk), now, **fields)
        rows.bulk_create(new, ignore_conflicts=True)


def mark_deleted(order_pk: Any, *, using: str | None = None) -> None:
    """Record that an order was deleted. A new version, so that a push in flight (which
    read the order before the delete) does not settle the row ``synced``: its settle
    finds the order changed, and the push after it finds the order gone. (``using``, the
    order's database, is accepted for the receivers; the mark goes to the outbox's.)"""
    OrderSync.objects.using(outbox_database()).filter(pk=str(order_pk)).update(
        version=F("version") + 1, state=SyncState.DELETED, updated_at=timezone.now()
    )


def enqueue_sync(
    orders: Iterable[models.Model] | models.QuerySet[Any], *, force: bool = False
) -> int:
    """Mark orders changed and push them after commit, for code paths that send no
    signals (``bulk_create``, ``bulk_update``, ``QuerySet.update``). Returns the count.

    ``force`` sends each order even if its payload equals the last one pushed (for
    orders that changed on Voucherify's side, found by ``voucherify_reconcile``)."""
    mapper = get_mapper()
    if isinstance(orders, models.QuerySet):
        orders = orders.iterator(chunk_size=2000)
    count = 0
    batch: list[models.Model] = []
    for order in orders:
        batch.append(order)
        if len(batch) == 2000:
            count += _mark_batch(mapper, batch, force)
            batch = []
    if batch:
        count += _mark_batch(mapper, batch, force)
    return count


def _mark_batch(mapper: Any, orders: list[models.Model], force: bool) -> int:
    now = timezone.now()
    database = outbox_database()
    keys = {str(order.pk): mapper.source_id(order) for order in orders}
    rows = OrderSync.objects.using(database)
    with transaction.atomic(using=database):
        states = dict(rows.filter(pk__in=list(keys)).values_list("pk", "state"))
        live = [key for key, state in states.items() if state != SyncState.DELETED]
        forget_hash = {"payload_hash": ""} if force else {}
        _bump(rows.filter(pk__in=live), now, **forget_hash)
        # A deleted order's row that comes back (bulk_create with its key) is a new order.
        _mark_new({key: keys[key] for key in keys if key not in live}, now, database)
        for key in keys:
            push_after_commit(key, database)
    return len(keys)
