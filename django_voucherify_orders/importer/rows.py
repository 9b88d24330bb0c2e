"""What an import writes for its orders: failure rows, and the OrderSync rows live sync
reads. An existing OrderSync row is never touched: it belongs to live sync, which may hold
a change made after the import read the order, and must push it (ON CONFLICT DO NOTHING)."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone

from ..bulk import insert_rows
from ..mapping import MappingError
from ..models import NO_ERROR, ImportFailure, ImportJob, OrderSync, SyncState
from ..sync import payload_hash

__all__ = ["Failure", "already_exists", "failure", "mark_failed", "mark_synced"]

Failure = dict[str, Any]  # an ImportFailure row, for insert_rows

# Voucherify's reason for an order it already holds is not documented; the emulator says
# "Order with source_id X already exists". Matched loosely, and only in a reason.
_ALREADY_EXISTS = re.compile(r"already\s+exist", re.IGNORECASE)


def already_exists(reason: str) -> bool:
    return bool(_ALREADY_EXISTS.search(reason))


def failure(
    job: ImportJob, source_id: str | None, order_pk: str, stage: str, reason: str
) -> Failure:
    return {"job": job, "source_id": source_id or "", "order_pk": order_pk, "stage": stage,
            "reason": reason}  # fmt: skip


def mark_synced(sent: dict[str, dict[str, Any]], unverified: dict[str, dict[str, Any]]) -> None:
    """Orders Voucherify now holds, as synced rows, so live sync won't push them again.

    ``sent``: imported from these payloads (their hash is recorded). ``unverified``:
    refused as already existing, so held by Voucherify, but maybe not as sent (a write of
    this app that landed unanswered, or another writer's): no hash, so the order's next
    save sends it whole (an upsert) instead of being skipped as unchanged.
    """
    now = timezone.now()
    rows = [
        {
            "order_pk": key, "source_id": payload["source_id"], "state": SyncState.SYNCED,
            "version": 1, "pushed_version": 1,
            "payload_hash": payload_hash(payload) if key in sent else "", "synced_at": now,
        }
        for key, payload in (sent | unverified).items()
    ]  # fmt: skip
    insert_rows(OrderSync, rows, ignore_conflicts=True)


def mark_failed(errors: list[MappingError]) -> None:
    """Orders the mapper can't map get the failed row a live push would give them (key
    ``invalid_local_data``), so ``voucherify_sync --failed`` retries them once fixed and the
    health page counts them. The source_id is left for the push to record: a failed row
    must not be lost to another row holding the same one."""
    now = timezone.now()
    rows = [
        {
            "order_pk": str(error.order_pk), "state": SyncState.FAILED, "version": 1,
            "pushed_version": 1, "attempts": 1, "first_failed_at": now, **NO_ERROR,
            "last_error_key": "invalid_local_data", "last_error_message": str(error),
        }
        for error in errors
    ]  # fmt: skip
    insert_rows(OrderSync, rows, ignore_conflicts=True)


def insert_failures(failures: list[Failure]) -> None:
    insert_rows(ImportFailure, failures)
