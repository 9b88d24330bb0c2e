"""``{% voucherify_sync_panel order %}``: the sync panel on Oscar's dashboard order page.

The app's ``oscar/dashboard/orders/order_detail.html`` uses it; a shop whose own template
replaces Oscar's (rather than extending it) adds ``{% load voucherify_oscar %}`` and the tag
where the panel should go.
"""

from __future__ import annotations

from typing import Any

from django import template

from ..panel import panel_context

register = template.Library()


@register.inclusion_tag("voucherify_orders/oscar/sync_panel.html", takes_context=True)
def voucherify_sync_panel(context: template.Context, order: Any) -> dict[str, Any]:
    # The panel's own forms need the CSRF token of the page.
    return {**panel_context(order, context.get("request")), "csrf_token": context.get("csrf_token")}
