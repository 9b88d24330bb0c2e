"""How Voucherify echoes an order it was sent: what a comparison of the two must allow.

Used by the admin's fetch-and-compare (admin/diff.py) and by ``voucherify_reconcile
--deep`` (reconcile_deep.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["ZERO_OMITTED_ITEM_FIELDS", "ZERO_OMITTED_ORDER_FIELDS", "same_value"]

# Voucherify leaves zero discount fields out of the orders it returns: "zero/absent discount
# fields are omitted (not 0)" (API-NOTES 5.6, from every documented order example). So a
# local 0 in one of these is in step with an absent remote value (None once the client's
# response model has read it). Only these fields and only 0: any other field Voucherify
# lacks is still "missing", and a local 0 beside a remote 500 still "differs".
ZERO_OMITTED_ORDER_FIELDS = frozenset({"discount_amount"})
ZERO_OMITTED_ITEM_FIELDS = frozenset({"discount_amount", "discount_quantity"})


def same_value(local: Any, remote: Any) -> bool:
    """Equal, or the same moment written two ways (Voucherify keeps milliseconds)."""
    if local == remote:
        return True
    if isinstance(local, str) and isinstance(remote, str):
        try:  # 2024-01-01T10:00:00Z and 2024-01-01T10:00:00.000Z are the same moment
            ours, theirs = datetime.fromisoformat(local), datetime.fromisoformat(remote)
            # Voucherify keeps milliseconds; the shop may have microseconds.
            return abs((ours - theirs).total_seconds()) < 0.001
        except (TypeError, ValueError):  # not dates, or one naive and one aware
            return False
    return False
