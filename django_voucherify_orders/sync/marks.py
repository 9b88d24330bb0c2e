"""Outbox marks: record, in the shop's own transaction, that an order changed.

The request path: no HTTP call, at most two queries; the push is queued after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models import F
from django.utils import timezone

from ..mapping import get_mapper
from ..models import OrderSync, SyncState
from .publisher import push_after_commit

__all__ = ["enqueue_sync", "mark_changed", "mark_deleted"]


def mark_changed(
    order_pk: Any, source_id: str | None = None, *, created: bool = False, using: str | None = None
) -> None:
    """Record in the current transaction that an order changed, and push it after commit."""
    using = using or DEFAULT_DB_ALIAS
    key = str(order_pk)
    now = timezone.now()
    if created or not _bump(OrderSync.objects.using(using).filter(pk=key), now):
        # A new order, or one that changed before the app was installed. A concurrent
        # insert of the same row wins harmlessly: the push reads the order as it is then.
        _insert_pending({key: source_id}, now, using)
    push_after_commit(key, using)


def _bump(rows: models.QuerySet[OrderSync], now: Any, **fields: Any) -> int:
    """Mark existing rows changed: a new version, pending, due now, attempts reset."""
    return rows.update(
        version=F("version") + 1, state=SyncState.PENDING, attempts=0,
        next_attempt_at=now, updated_at=now, **fields,
    )  # fmt: skip


def _insert_pending(source_ids: dict[str, str | None], now: Any, using: str) -> None:
    OrderSync.objects.using(using).bulk_create(
        [
            OrderSync(order_pk=key, source_id=source_id, next_attempt_at=now)
            for key, source_id in source_ids.items()
        ],
        ignore_conflicts=True,
    )


def mark_deleted(order_pk: Any, *, using: str | None = None) -> None:
    """Record that an order was deleted. A new version, so that a push in flight (which
    read the order before the delete) does not settle the row ``synced``: its settle
    finds the order changed, and the push after it finds the order gone."""
    OrderSync.objects.using(using or DEFAULT_DB_ALIAS).filter(pk=str(order_pk)).update(
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
    keys = {str(order.pk): mapper.source_id(order) for order in orders}
    with transaction.atomic():
        existing = set(OrderSync.objects.filter(pk__in=list(keys)).values_list("pk", flat=True))
        forget_hash = {"payload_hash": ""} if force else {}
        _bump(OrderSync.objects.filter(pk__in=existing), now, **forget_hash)
        new = {key: source_id for key, source_id in keys.items() if key not in existing}
        _insert_pending(new, now, DEFAULT_DB_ALIAS)
        for key in keys:
            push_after_commit(key, DEFAULT_DB_ALIAS)
    return len(keys)
