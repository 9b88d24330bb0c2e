"""Catching up: re-enqueue what was never delivered, and prune the attempt log."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import FieldError
from django.db import connections, models
from django.db.models import CharField, Exists, OuterRef, Q
from django.db.models.functions import Cast
from django.utils import timezone

from ..conf import VoucherifyOrdersSettings, get_settings
from ..mapping import get_mapper
from ..models import OrderSync, SyncAttempt, SyncState
from .marks import _mark_batch, outbox_database
from .publisher import enqueue_pushes, paused_sync

__all__ = ["due_for_push", "mark_orphans", "prune_attempts", "sweep"]

logger = logging.getLogger("django_voucherify_orders.sync")


def due_for_push(now: Any = None, *, grace: float | None = None) -> models.QuerySet[OrderSync]:
    """Pending rows nobody is pushing whose retry time has come and that have been left
    alone for ``grace`` seconds (so rows whose push is queued right now are not)."""
    now = now or timezone.now()
    config = get_settings()
    grace = config.sweep_after if grace is None else grace
    return (
        OrderSync.objects.filter(state=SyncState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(updated_at__lte=now - timedelta(seconds=grace))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .order_by("next_attempt_at")
    )


def sweep(limit: int = 10_000, *, now: Any = None) -> int:
    """Re-enqueue pending rows whose enqueue was lost or whose retry time has come, and
    mark and enqueue recent orders that have no outbox row at all (``mark_orphans``).

    ``now`` is the sweep's clock (tests pass one instead of waiting for ``SWEEP_AFTER``)."""
    config = get_settings()
    if not config.sync_enabled or not config.auto_sync:
        return 0
    now = now or timezone.now()
    keys = list(due_for_push(now).values_list("pk", flat=True)[:limit])
    keys += mark_orphans(now, limit=limit, config=config)
    # Not due again for SWEEP_AFTER: a push re-enqueued here may wait in a long queue,
    # and each sweep must not add another copy of it.
    later = now + timedelta(seconds=config.sweep_after)
    OrderSync.objects.filter(pk__in=keys, state=SyncState.PENDING).update(next_attempt_at=later)
    return enqueue_pushes(keys, countdown=0, deduplicate=False)


def mark_orphans(
    now: Any = None, *, limit: int = 10_000, config: VoucherifyOrdersSettings | None = None
) -> list[str]:
    """Mark pending (not enqueue) the orders dated within ``SWEEP_ORPHANS_WITHIN`` and
    older than ``SWEEP_AFTER`` that have no outbox row; return their keys.

    In autocommit Django commits a new order before post_save runs: a process that dies
    in between leaves an order nothing else would ever push. One anti-join, bounded by
    the mapper's ``date_field`` window and ``limit``; orders younger than ``SWEEP_AFTER``
    are left to their own post_save, still running.
    """
    config = config or get_settings()
    if not config.sweep_orphans_within:
        return []
    now = now or timezone.now()
    mapper = get_mapper()
    database = outbox_database()
    window = {
        f"{mapper.date_field}__gte": now - timedelta(seconds=config.sweep_orphans_within),
        f"{mapper.date_field}__lte": now - timedelta(seconds=config.sweep_after),
    }
    try:
        orders = mapper.get_queryset().using(database).filter(**window)
        orphans = _without_outbox_row(orders.order_by(mapper.date_field), database, limit)
    except FieldError as exc:
        logger.error(
            "cannot look for orders without an outbox row: %s.date_field = %r: %s",
            type(mapper).__name__, mapper.date_field, exc,
        )  # fmt: skip
        return []
    if not orphans:
        return []
    logger.warning(
        "%d order(s) had no outbox row (a process died between commit and post_save?): %s",
        len(orphans), ", ".join(str(order.pk) for order in orphans[:5]),
    )  # fmt: skip
    with paused_sync():  # the sweep enqueues them itself, with the rest
        _mark_batch(mapper, orphans, force=False)
    return [str(order.pk) for order in orphans]


# Primary keys whose text cast in SQL is str(pk), the outbox's key.
_CAST_IS_STR = {
    "AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
    "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
    "PositiveSmallIntegerField", "CharField", "TextField", "SlugField",
}  # fmt: skip


def _without_outbox_row(orders: models.QuerySet[Any], database: str, limit: int) -> list[Any]:
    """The first ``limit`` of ``orders`` that have no outbox row."""
    pk = orders.model._meta.pk
    field = pk.target_field if pk.is_relation else pk  # multi-table inheritance: parent_ptr
    kind = field.get_internal_type()
    if kind in _CAST_IS_STR or (
        kind == "UUIDField" and connections[database].vendor == "postgresql"
    ):
        # One anti-join: the outbox's text key against the order's pk cast to text.
        has_row = OrderSync.objects.using(database).filter(
            order_pk=Cast(OuterRef("pk"), output_field=CharField())
        )
        return list(orders.filter(~Exists(has_row))[:limit])
    # Other keys (a UUID stored as 32 hex digits in SQLite...) cast to another text than
    # str(pk): compare in Python, over the keys of the (bounded) window.
    keys = {str(key): key for key in orders.values_list("pk", flat=True)}
    rows = OrderSync.objects.using(database)
    missing: list[Any] = []
    chunk = list(keys)
    for start in range(0, len(chunk), 2000):
        part = chunk[start : start + 2000]
        have = set(rows.filter(pk__in=part).values_list("pk", flat=True))
        missing += [keys[key] for key in part if key not in have]
        if len(missing) >= limit:
            break
    return list(orders.filter(pk__in=missing[:limit]))


def prune_attempts(batch_size: int = 1000) -> int:
    """Delete attempt rows older than ``ATTEMPT_RETENTION_DAYS``, in batches."""
    config = get_settings()
    cutoff = timezone.now() - timedelta(days=config.attempt_retention_days)
    deleted = 0
    while True:
        ids = list(
            SyncAttempt.objects.filter(started_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not ids:
            return deleted
        deleted += SyncAttempt.objects.filter(pk__in=ids).delete()[0]
