"""``VOUCHERIFY_ORDERS["OSCAR"]``: what an Oscar shop may adjust without a subclass."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...client.schemas import OrderStatus
from ...conf import get_settings

__all__ = ["SANDBOX_STATUS_MAP", "OscarOptions", "options_problems", "oscar_options"]

SETTING = 'VOUCHERIFY_ORDERS["OSCAR"]'

#: Oscar's sandbox pipeline (Pending -> Being processed -> Complete, or Cancelled), and
#: the empty status of a shop without OSCAR_INITIAL_ORDER_STATUS. Oscar has no "paid"
#: status: "Being processed" is what the sandbox moves an order to once it is paid for.
SANDBOX_STATUS_MAP: dict[str, OrderStatus] = {
    "": "CREATED",
    "Pending": "CREATED",
    "Being processed": "PAID",
    "Complete": "FULFILLED",
    "Cancelled": "CANCELED",
}


class OscarOptions(BaseModel):
    """Each key overrides the mapper's class attribute of the same name (lower case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Oscar status -> Voucherify status, merged over the mapper's ``status_map``.
    STATUS_MAP: dict[str, OrderStatus] = Field(default_factory=dict)
    #: True: amounts include tax (``total_incl_tax``); False: they exclude it.
    TAX_INCLUSIVE: bool | None = None
    #: Line statuses whose lines are left out of the order's items.
    CANCELLED_LINE_STATUSES: list[str] | None = None
    #: Order statuses that hold the order back from live sync (``ready()`` is False).
    HOLD_STATUSES: list[str] | None = None
    #: Payment event types (their names) that make a CREATED order PAID.
    PAID_EVENT_TYPES: list[str] | None = None


def oscar_options() -> OscarOptions:
    return OscarOptions.model_validate(get_settings().oscar)


def options_problems(raw: Any) -> list[str]:
    """What is wrong with ``raw``, one sentence a problem (for the system check)."""
    try:
        OscarOptions.model_validate(raw)
    except ValidationError as exc:
        return [
            f"{SETTING}[{'.'.join(str(part) for part in error['loc'])!r}]: {error['msg']}"
            for error in exc.errors()
        ]
    return []
