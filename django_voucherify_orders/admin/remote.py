"""The orders Voucherify holds, a page at a time (``list_orders``).

Unlike every other admin list this one calls the API, so it does so only when asked:
opening the page shows the controls, and "Load" (or a page link) makes one call.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..client import VoucherifyError
from ..client.client import MAX_PAGE
from ..conf import get_client
from ..mapping import get_order_model
from ..models import OrderSync
from ..sync import remember_rate_limit
from .actions import admin_change_url

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

ORDERINGS = [
    ("", gettext_lazy("Voucherify's default")),
    ("-created_at", gettext_lazy("Newest first (-created_at)")),
    ("created_at", gettext_lazy("Oldest first (created_at)")),
    ("-updated_at", gettext_lazy("Recently updated first (-updated_at)")),
    ("updated_at", gettext_lazy("Least recently updated first (updated_at)")),
]
PAGE_SIZES = [10, 25, 50, 100]


class RemoteListForm(forms.Form):
    page = forms.IntegerField(
        label=gettext_lazy("Page"), min_value=1, max_value=MAX_PAGE, initial=1
    )
    limit = forms.TypedChoiceField(
        label=gettext_lazy("Page size"),
        choices=[(size, size) for size in PAGE_SIZES],
        coerce=int,
        initial=10,
    )
    order = forms.ChoiceField(
        label=gettext_lazy("Ordering"), choices=ORDERINGS, required=False, initial=""
    )


def remote_orders_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    site = model_admin.admin_site
    asked = "page" in request.GET
    form = RemoteListForm(request.GET if asked else None)
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": _("Orders in Voucherify"),
        "opts": model_admin.opts,
        "form": form,
        "asked": asked,
        "orders": None,
    }
    if asked and form.is_valid():
        context.update(_load(model_admin, request, form.cleaned_data))
    elif asked:
        messages.error(request, _("Please correct the controls below."))
    request.current_app = site.name
    return TemplateResponse(request, "admin/voucherify_orders/remote_orders.html", context)


def _load(model_admin: ModelAdmin, request: HttpRequest, params: dict[str, Any]) -> dict[str, Any]:
    page, limit, ordering = params["page"], params["limit"], params["order"] or None
    try:
        client = get_client()
        result = client.list_orders(limit=limit, page=page, order=ordering)
    except VoucherifyError as exc:
        messages.error(request, _("Voucherify answered with an error: %(error)s") % {"error": exc})
        return {}
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
        return {}
    remember_rate_limit(client.last_rate_limit)

    # One query for the whole page: which of these source ids are ours, and their orders.
    source_ids = [order.source_id for order in result.orders if order.source_id]
    local = dict(
        OrderSync.objects.filter(source_id__in=source_ids).values_list("source_id", "order_pk")
    )
    site = model_admin.admin_site
    try:
        order_model = get_order_model()
    except ImproperlyConfigured:
        order_model = None
    if order_model is not None and order_model not in site._registry:
        order_model = None

    rows = []
    for order in result.orders:
        key = local.get(order.source_id) if order.source_id else None
        rows.append(
            {
                "order": order,
                "customer": order.customer_id or "",
                "local_key": key,
                "local_url": admin_change_url(site.name, order_model, key)
                if key and order_model is not None
                else None,
                "sync_url": admin_change_url(site.name, OrderSync, key) if key else None,
            }
        )
    pages = min(max(math.ceil(result.total / limit), 1), MAX_PAGE)

    def page_url(number: int) -> str:
        query = {"page": number, "limit": limit}
        if ordering:
            query["order"] = ordering
        return "?" + urlencode(query)

    return {
        "orders": rows,
        "total": result.total,
        "page": page,
        "pages": pages,
        "limit": limit,
        "first_index": (page - 1) * limit + 1 if rows else 0,
        "last_index": (page - 1) * limit + len(rows),
        "previous_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if page < pages else None,
        "page_links": [(n, page_url(n)) for n in _window(page, pages)],
        "truncated": result.total > MAX_PAGE * limit,
    }


def _window(page: int, pages: int, around: int = 3) -> list[int]:
    """Page numbers to link: the first, the last, and a few around the current one."""
    numbers = {1, pages, *range(max(1, page - around), min(pages, page + around) + 1)}
    return sorted(numbers)
