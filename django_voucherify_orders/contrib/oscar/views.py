"""The dashboard panel's buttons: the Django admin's "Push to Voucherify now" and "Fetch
from Voucherify (and compare)" for one order, with the same permissions.

Both are POST only, CSRF-protected whatever the shop's middleware, and refused (403) to a
user without the admin action's permission. The order is looked up the way Oscar's
dashboard does (``queryset_orders_for_user``), so a partner's staff act only on the orders
they can open.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST
from oscar.core.loading import get_class

from ...admin.actions import PUSH_PERMISSION, REMOTE_PERMISSION, _fetch, _push

__all__ = ["fetch", "push"]


def _order(request: HttpRequest, number: str, permission: str) -> Any:
    if not request.user.has_perm(permission):
        raise PermissionDenied
    orders_for_user = get_class("dashboard.orders.views", "queryset_orders_for_user")
    return get_object_or_404(orders_for_user(request.user), number=number)


def _back(order: Any) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("dashboard:order-detail", kwargs={"number": order.number}))


@require_POST
@csrf_protect
def push(request: HttpRequest, number: str) -> HttpResponse:
    """Queue the order's push even if unchanged (in eager mode it has run on return), and
    say on the order page how it went."""
    order = _order(request, number, PUSH_PERMISSION)
    try:
        _push(request, [str(order.pk)], force=True)
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
    return _back(order)


@require_POST
@csrf_protect
def fetch(request: HttpRequest, number: str) -> HttpResponse:
    """GET the order from Voucherify (one call), keep it as the row's remote snapshot, and
    show it field by field beside the payload the mapper builds now."""
    order = _order(request, number, REMOTE_PERMISSION)
    try:
        results = _fetch(request, [str(order.pk)], "admin")
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
        return _back(order)
    if not results:  # Voucherify answered with an error: the message says which
        return _back(order)
    context = {
        "order": order,
        "result": results[0],
        "can_push": request.user.has_perm(PUSH_PERMISSION),
    }
    return TemplateResponse(request, "voucherify_orders/oscar/fetch_result.html", context)
