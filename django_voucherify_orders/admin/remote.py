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
from ..client.schemas import Order
from ..conf import get_client
from ..mapping import format_minor_units, get_mapper, get_order_model
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

    # A fixed number of queries whatever the page size: our rows, then our orders.
    source_ids = [order.source_id for order in result.orders if order.source_id]
    syncs = {row.source_id: row for row in OrderSync.objects.filter(source_id__in=source_ids)}
    _learn_voucherify_ids(syncs, result.orders)
    site = model_admin.admin_site
    try:
        order_model = get_order_model()
        currency_key = get_mapper().currency_metadata_key
    except ImproperlyConfigured:
        order_model, currency_key = None, None
    if order_model is not None and order_model not in site._registry:
        order_model = None
    keys = [row.order_pk for row in syncs.values()]
    local_orders = order_model._default_manager.in_bulk(keys) if order_model and keys else {}

    rows = []
    for order in result.orders:
        row = syncs.get(order.source_id) if order.source_id else None
        key = row.order_pk if row else None
        local = local_orders.get(_pk(order_model, key)) if key else None
        amount, in_currency = _amount(order, currency_key)
        rows.append(
            {
                "order": order,
                "amount": amount,
                "in_currency": in_currency,
                "customer": order.customer_id or "",
                "local_key": key,
                "local_label": str(local) if local is not None else _("Order %s") % key,
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
        "minor_units_shown": any(row["amount"] != "—" and not row["in_currency"] for row in rows),
    }


def _learn_voucherify_ids(syncs: dict[str | None, OrderSync], orders: list[Order]) -> None:
    """Imported orders have no Voucherify id until Voucherify shows one (the bulk import
    answers with counts only): record the ids this page shows, in one query."""
    learned = []
    for order in orders:
        row = syncs.get(order.source_id) if order.source_id else None
        if row is not None and not row.voucherify_id and order.id:
            row.voucherify_id = order.id
            learned.append(row)
    if learned:
        OrderSync.objects.bulk_update(learned, ["voucherify_id"])


def _amount(order: Order, currency_key: str | None) -> tuple[str, bool]:
    """The amount as a person reads it, and whether it is in a currency (else minor units)."""
    if order.amount is None:
        return "—", False
    currency = (order.metadata or {}).get(currency_key) if currency_key else None
    if isinstance(currency, str):
        try:
            return format_minor_units(order.amount, currency), True
        except ValueError:  # not an ISO 4217 code: show what Voucherify holds
            pass
    return str(order.amount), False


def _pk(model: Any, key: str) -> Any:
    """The order_pk text as the model's primary key (in_bulk keys by the typed value)."""
    try:
        return model._meta.pk.to_python(key)
    except Exception:  # a key that no longer fits the model: no local order to show
        return None


def _window(page: int, pages: int, around: int = 3) -> list[int]:
    """Page numbers to link: the first, the last, and a few around the current one."""
    numbers = {1, pages, *range(max(1, page - around), min(pages, page + around) + 1)}
    return sorted(numbers)
