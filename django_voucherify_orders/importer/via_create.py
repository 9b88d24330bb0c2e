"""The other path: orders through live sync's create (``POST /v1/orders``), which fires
Voucherify's order events, distributions and earning rules; the bulk import fires none.

For recent orders that should earn loyalty points. The selected orders are marked changed
(their OrderSync rows go pending, as a save would make them) and pushed by the live engine:
rate-limited by the shared limiter, retried and failed as live pushes are, and recorded on
their rows (no ImportJob). Inline, in batches, or by the Celery workers (``queue``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from ..mapping import MappingError, get_mapper
from ..sync import enqueue_sync, paused_sync, push_many
from ..sync.publisher import PUSH_BATCH
from .params import ImportParameters, count_left_out_synced, select_orders

__all__ = ["CreateOutcome", "create_via_live_sync"]

# How the engine's outcomes read to someone creating orders.
SYNCED = frozenset({"pushed", "unchanged", "settled"})
PENDING = frozenset({"retry", "busy", "paused", "pending"})


@dataclass
class CreateOutcome:
    selected: int
    skipped_synced: int
    invalid: int = 0  # dry run: orders the mapper can't map
    queued: int = 0  # handed to the Celery workers
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def synced(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome in SYNCED)

    @property
    def failed(self) -> int:
        return self.outcomes["failed"]

    @property
    def pending(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome in PENDING)

    @property
    def paused(self) -> bool:
        return bool(self.outcomes["paused"])


def create_via_live_sync(
    params: ImportParameters,
    *,
    dry_run: bool = False,
    queue: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> CreateOutcome:
    mapper = get_mapper()
    orders = select_orders(params, mapper)
    selected = orders.count()
    outcome = CreateOutcome(selected, count_left_out_synced(params, selected))
    last_pk: Any = None
    while True:
        batch = list(
            (orders.filter(pk__gt=last_pk) if last_pk is not None else orders)[: params.batch_size]
        )
        if not batch:
            return outcome
        last_pk = batch[-1].pk
        if dry_run:
            outcome.invalid += sum(1 for order in batch if not _maps(mapper, order))
            continue
        if queue:  # pushed by the workers after commit, as a save's change would be
            with transaction.atomic():
                outcome.queued += enqueue_sync(batch)
            continue
        with paused_sync(), transaction.atomic():
            enqueue_sync(batch)
        if not _push(outcome, [str(order.pk) for order in batch], sleep):
            return outcome  # refused credentials: every push is paused


def _push(outcome: CreateOutcome, keys: list[str], sleep: Callable[[float], None]) -> bool:
    """Push ``keys`` in the engine's batches, waiting out the rate limiter; False when
    Voucherify refused the credentials (the rest stay pending for live sync)."""
    for start in range(0, len(keys), PUSH_BATCH):
        todo = keys[start : start + PUSH_BATCH]
        while todo:
            results = push_many(todo)
            throttled = [key for key, result in results.items() if result.outcome == "throttled"]
            outcome.outcomes.update(
                result.outcome for result in results.values() if result.outcome != "throttled"
            )
            if outcome.paused:
                outcome.outcomes["pending"] += len(keys[start + PUSH_BATCH :])
                return False
            if throttled:
                sleep(max(result.retry_in or 0.0 for result in results.values()))
            todo = throttled
    return True


def _maps(mapper: Any, order: Any) -> bool:
    try:
        mapper.build(order)
    except MappingError:
        return False
    return True
