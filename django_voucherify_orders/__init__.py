"""Keep a Django shop's orders in Voucherify.

Public API: ``enqueue_sync(orders)`` for changes made without signals (bulk_create,
bulk_update, QuerySet.update), and ``paused_sync()`` for blocks whose changes should be
marked but not pushed yet. Both are imported lazily so that listing the app in
INSTALLED_APPS does not import models early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "enqueue_sync", "paused_sync"]

if TYPE_CHECKING:
    from .sync import enqueue_sync, paused_sync


def __getattr__(name: str) -> Any:
    if name in ("enqueue_sync", "paused_sync"):
        from . import sync

        return getattr(sync, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
