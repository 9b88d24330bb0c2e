"""What the dashboard's sync panel shows for one order: two queries, no call to Voucherify."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from ...admin.actions import PUSH_PERMISSION, REMOTE_PERMISSION
from ...admin.mixin import PANEL_ATTEMPTS, sync_state
from ...models import SyncState

__all__ = ["PANEL_ATTEMPTS", "panel_context"]

# Bootstrap 4 badge classes, as Oscar's dashboard uses them.
STATE_BADGES: dict[str, str] = {
    SyncState.PENDING: "badge-warning",
    SyncState.SYNCED: "badge-success",
    SyncState.FAILED: "badge-danger",
    SyncState.SKIPPED: "badge-secondary",
    SyncState.DELETED: "badge-secondary",
}


def _url(name: str, number: str) -> str | None:
    # The buttons need the app's urls in the shop's urls.py; without them the panel still
    # shows the state (and says what to add) instead of breaking Oscar's page.
    try:
        return reverse(name, args=[number])
    except NoReverseMatch:
        return None


def panel_context(order: Any, request: HttpRequest | None) -> dict[str, Any]:
    row, attempts = sync_state(order.pk)
    user = getattr(request, "user", None)
    can_push = bool(user and user.has_perm(PUSH_PERMISSION))
    can_fetch = bool(user and user.has_perm(REMOTE_PERMISSION))
    push_url = _url("voucherify_oscar:push", order.number) if can_push else None
    fetch_url = _url("voucherify_oscar:fetch", order.number) if can_fetch else None
    return {
        "order": order,
        "row": row,
        "state_label": SyncState(row.state).label if row else None,
        "state_badge": STATE_BADGES.get(row.state, "badge-secondary") if row else "badge-light",
        "attempts": attempts,
        "push_url": push_url,
        "fetch_url": fetch_url,
        # A user who may act but whose shop has not included the urls: say what to add.
        "urls_missing": (can_push or can_fetch) and not (push_url or fetch_url),
    }
