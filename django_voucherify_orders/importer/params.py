"""What an import sends: its parameters (stored on the job, so a resume selects the same)
and the queryset they select."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import CharField, Exists, OuterRef, QuerySet
from django.db.models.functions import Cast

from ..client import MAX_IMPORT_ORDERS
from ..mapping import OrderMapper, get_mapper
from ..models import OrderSync, SyncState

__all__ = ["ImportParameters", "count_left_out_synced", "select_orders"]


@dataclass(frozen=True)
class ImportParameters:
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    # Orders live sync (or an earlier import) delivered are left out unless asked for:
    # Voucherify's import refuses an order it holds, so sending them only fails them.
    skip_synced: bool = True
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
            # Every stored job names it; a job written before it existed sent everything.
            skip_synced=bool(data.get("skip_synced", False)),
            batch_size=int(data.get("batch_size") or MAX_IMPORT_ORDERS),
        )


def select_orders(params: ImportParameters, mapper: OrderMapper | None = None) -> QuerySet[Any]:
    """The orders to import, through the mapper's queryset, in primary-key order.

    Only ``synced`` orders are left out by ``skip_synced``: a pending or failed one holds
    a change live sync has not delivered, and a skipped or deleted one was never sent.
    """
    mapper = mapper or get_mapper()
    orders = mapper.get_queryset()
    if params.since:
        orders = orders.filter(**{f"{mapper.date_field}__gte": params.since})
    if params.until:
        orders = orders.filter(**{f"{mapper.date_field}__lt": params.until})
    if params.statuses:
        orders = orders.filter(**{f"{mapper.status_field}__in": params.statuses})
    if params.ids:
        orders = orders.filter(mapper.orders_named(params.ids))
    if params.skip_synced:
        synced = OrderSync.objects.filter(
            order_pk=Cast(OuterRef("pk"), CharField()), state=SyncState.SYNCED
        )
        orders = orders.exclude(Exists(synced))
    return orders.order_by("pk")


def unknown_ids(params: ImportParameters, mapper: OrderMapper | None = None) -> list[str]:
    """The ``ids`` that name no order, by pk or source_id (two queries)."""
    mapper = mapper or get_mapper()
    found = mapper.get_queryset().filter(mapper.orders_named(params.ids))
    known = {str(order.pk) for order in found} | {mapper.source_id(order) for order in found}
    recorded = set(
        OrderSync.objects.filter(source_id__in=params.ids).values_list("source_id", flat=True)
    )
    return [key for key in params.ids if key not in known | recorded]


def count_left_out_synced(params: ImportParameters, selected: int) -> int:
    """How many orders the filters match that ``skip_synced`` leaves out (one COUNT)."""
    if not params.skip_synced:
        return 0
    return select_orders(replace(params, skip_synced=False)).count() - selected
