"""The example shop's mapper, with the order's notes in its metadata."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from shop.voucherify import ShopOrderMapper


class NotedOrderMapper(ShopOrderMapper):
    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().prefetch_related("notes")

    def metadata(self, order: Any) -> dict[str, Any]:
        notes = [note.text for note in order.notes.all()]
        return {**super().metadata(order), **({"notes": notes} if notes else {})}


class PlacedOrderMapper(ShopOrderMapper):
    """A mapper written for a shop whose orders have a ``date_placed`` (Oscar's name)."""

    date_field = "date_placed"


class StageOrderMapper(ShopOrderMapper):
    status_field = "stage"


class CustomerCityMapper(ShopOrderMapper):
    """Lookups across relations are fine: ``--status`` filters on the customer's city."""

    status_field = "customer__city"


class NumberOrderMapper(ShopOrderMapper):
    """The order number as the source_id (as Oscar's mapper does)."""

    source_id_field = "number"

    def source_id(self, order: Any) -> str:
        return order.number


class NothingReadyMapper(ShopOrderMapper):
    """Holds every order back (``ready()`` is False): nothing is pushed."""

    def ready(self, order: Any) -> bool:
        return False
