"""Catching up: re-enqueue what was never delivered, and prune the attempt log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..conf import get_settings
from ..models import OrderSync, SyncAttempt, SyncState
from .publisher import enqueue_pushes

__all__ = ["due_for_push", "prune_attempts", "sweep"]


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
    """Re-enqueue pending rows whose enqueue was lost or whose retry time has come.

    ``now`` is the sweep's clock (tests pass one instead of waiting for ``SWEEP_AFTER``)."""
    config = get_settings()
    if not config.sync_enabled or not config.auto_sync:
        return 0
    now = now or timezone.now()
    keys = list(due_for_push(now).values_list("pk", flat=True)[:limit])
    # Not due again for SWEEP_AFTER: a push re-enqueued here may wait in a long queue,
    # and each sweep must not add another copy of it.
    later = now + timedelta(seconds=config.sweep_after)
    OrderSync.objects.filter(pk__in=keys, state=SyncState.PENDING).update(next_attempt_at=later)
    return enqueue_pushes(keys, countdown=0, deduplicate=False)


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
