"""The admin actions, shared by the OrderSync admin and ``VoucherifySyncAdminMixin``.

Each works on local order keys (``OrderSync.pk``: the order's primary key as text), so
the same code serves a changelist of sync rows and a changelist of the shop's orders.
Voucherify errors become admin messages; nothing here lets one reach a 500 page.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import ModelAdmin
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..client import (
    AuthenticationError,
    NotFound,
    RateLimited,
    VoucherifyError,
    VoucherifyServerError,
    VoucherifyTransportError,
)
from ..conf import get_client
from ..mapping import MappingError, get_mapper
from ..models import OrderSync, SyncState
from ..sync import enqueue_sync, remember_rate_limit
from .diff import FieldDiff, compare
from .rendering import badge

logger = logging.getLogger("django_voucherify_orders.admin")

PUSH_PERMISSION = "voucherify_orders.push_ordersync"
REMOTE_PERMISSION = "voucherify_orders.view_remote_orders"
IMPORT_PERMISSION = "voucherify_orders.run_importjob"
EXPORT_PERMISSION = "voucherify_orders.run_exportjob"

#: Orders fetched by one "Fetch from Voucherify" (one API call each).
FETCH_LIMIT = 20
#: Orders named one by one in the messages of a push; the rest are summed up.
MESSAGE_LIMIT = 5
#: Where to go after an action started from a change page (a same-site path).
NEXT_FIELD = "_voucherify_next"

# Errors after which the next call would fail the same way: stop calling.
_STOP_ERRORS = (AuthenticationError, RateLimited, VoucherifyServerError, VoucherifyTransportError)


class VoucherifyPermissions:
    """``has_<name>_permission`` for ``@admin.action(permissions=[...])``."""

    def has_voucherify_push_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PUSH_PERMISSION)

    def has_voucherify_fetch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REMOTE_PERMISSION)

    def voucherify_order_keys(self, queryset: QuerySet[Any]) -> list[str]:
        """The ``OrderSync`` keys of the selected rows, in the changelist's order."""
        return [str(pk) for pk in queryset.values_list("pk", flat=True)]


# --- push and retry --------------------------------------------------------------------------


def _label(key: str, source_id: str | None) -> str:
    return source_id or f"#{key}"


def _push(request: HttpRequest, keys: list[str], *, force: bool) -> None:
    mapper = get_mapper()
    # Only the fields source_id() may read: the push reads the order again itself.
    orders = list(mapper.model._default_manager.filter(pk__in=keys))
    found = {str(order.pk) for order in orders}
    for key in [key for key in keys if key not in found][:MESSAGE_LIMIT]:
        messages.warning(
            request, _("Order %(key)s no longer exists locally; nothing to push.") % {"key": key}
        )
    if not orders:
        return
    count = enqueue_sync(orders, force=force)
    # With a worker, the rows are pending; in eager mode (no broker) the push already ran.
    rows = OrderSync.objects.in_bulk([key for key in keys if key in found])
    outcome = {"synced": 0, "failed": 0, "pending": 0, "skipped": 0}
    lines: list[tuple[int, str]] = []
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue
        label = _label(key, row.source_id)
        if row.state == SyncState.SYNCED:
            outcome["synced"] += 1
            lines.append(
                (messages.SUCCESS, _("Order %(order)s is in Voucherify.") % {"order": label})
            )
        elif row.state == SyncState.FAILED:
            outcome["failed"] += 1
            text = _("Order %(order)s: the push failed (%(key)s): %(message)s") % {
                "order": label,
                "key": row.last_error_key or "?",
                "message": row.last_error_message or "",
            }
            lines.append((messages.ERROR, text))
        elif row.state == SyncState.SKIPPED:
            outcome["skipped"] += 1
            text = _(
                "Order %(order)s was not pushed: the mapper's ready() or a before_push "
                "receiver held it back."
            ) % {"order": label}
            lines.append((messages.WARNING, text))
        else:
            outcome["pending"] += 1
            lines.append(
                (messages.INFO, _("Order %(order)s is queued for a push.") % {"order": label})
            )
    summary = ngettext(
        "%(count)d order sent to the push queue",
        "%(count)d orders sent to the push queue",
        count,
    ) % {"count": count}
    details = (
        _(
            "%(synced)d in Voucherify now, %(pending)d queued, %(skipped)d not pushed, "
            "%(failed)d failed."
        )
        % outcome
        if outcome["skipped"]
        else _("%(synced)d in Voucherify now, %(pending)d queued, %(failed)d failed.") % outcome
    )
    if len(lines) > MESSAGE_LIMIT:
        details += " " + _("%(named)d of them are listed, failures first.") % {
            "named": MESSAGE_LIMIT
        }
    messages.add_message(
        request,
        messages.ERROR if outcome["failed"] else messages.SUCCESS,
        f"{summary}: {details}",
    )
    # Failures first, then the rest in the list's order (sorted() is stable).
    for level, text in sorted(lines, key=lambda line: line[0] != messages.ERROR)[:MESSAGE_LIMIT]:
        messages.add_message(request, level, text)


@admin.action(description=gettext_lazy("Push to Voucherify now"), permissions=["voucherify_push"])
def push_now(modeladmin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    """Mark the selected orders changed and queue their push, even if unchanged."""
    keys = modeladmin.voucherify_order_keys(queryset)  # type: ignore[attr-defined]
    try:
        _push(request, keys, force=True)
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
    return _next(request)


@admin.action(description=gettext_lazy("Retry failed pushes"), permissions=["voucherify_push"])
def retry_failed(modeladmin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    """Queue a push of the selected orders whose sync failed; leave the others alone."""
    keys = modeladmin.voucherify_order_keys(queryset)  # type: ignore[attr-defined]
    failed = set(
        OrderSync.objects.filter(pk__in=keys, state=SyncState.FAILED).values_list("pk", flat=True)
    )
    others = len(keys) - len(failed)
    if others:
        messages.info(
            request,
            ngettext(
                "%(count)d selected order has not failed; it was left alone.",
                "%(count)d selected orders have not failed; they were left alone.",
                others,
            )
            % {"count": others},
        )
    if failed:
        try:
            _push(request, [key for key in keys if key in failed], force=False)
        except ImproperlyConfigured as exc:
            messages.error(request, str(exc))
    return _next(request)


def _next(request: HttpRequest) -> HttpResponse | None:
    """Back to the change page an action was started from, if it said so."""
    target = request.POST.get(NEXT_FIELD)
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return None


# --- fetch -----------------------------------------------------------------------------------


@dataclass
class Fetched:
    key: str
    label: str
    source_id: str | None
    local: dict[str, Any] | None = None
    local_error: str = ""
    remote: dict[str, Any] | None = None
    remote_error: str = ""
    diffs: list[FieldDiff] = field(default_factory=list)
    order_url: str | None = None
    sync_url: str | None = None

    @property
    def differences(self) -> int:
        return sum(1 for diff in self.diffs if diff.is_difference)

    @property
    def summary_badge(self) -> SafeString:
        count = self.differences
        if not count:
            return badge(_("in step"), "ok")
        text = ngettext("%(count)d difference", "%(count)d differences", count) % {"count": count}
        return badge(text, "bad")

    @property
    def local_json(self) -> str:
        return json.dumps(self.local, indent=2, sort_keys=True, ensure_ascii=False)

    @property
    def remote_json(self) -> str:
        return json.dumps(self.remote, indent=2, sort_keys=True, ensure_ascii=False)


def admin_change_url(site_name: str, model: type[Model] | None, pk: Any) -> str | None:
    if model is None:
        return None
    opts = model._meta
    try:
        return reverse(
            f"{site_name}:{opts.app_label}_{opts.model_name}_change",
            args=[pk],
            current_app=site_name,
        )
    except NoReverseMatch:
        return None


@admin.action(
    description=gettext_lazy("Fetch from Voucherify (and compare)"),
    permissions=["voucherify_fetch"],
)
def fetch_from_voucherify(
    modeladmin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> HttpResponse | None:
    """GET each selected order from Voucherify (at most ``FETCH_LIMIT``), store it as the
    row's remote snapshot, and show it beside the payload the mapper builds now."""
    keys = modeladmin.voucherify_order_keys(queryset)  # type: ignore[attr-defined]
    if len(keys) > FETCH_LIMIT:
        messages.warning(
            request,
            _(
                "Fetching the first %(limit)d of the %(count)d selected orders "
                "(one call to Voucherify each); select fewer to see the others."
            )
            % {"limit": FETCH_LIMIT, "count": len(keys)},
        )
        keys = keys[:FETCH_LIMIT]
    try:
        results = _fetch(request, keys, modeladmin.admin_site.name)
    except ImproperlyConfigured as exc:
        messages.error(request, str(exc))
        return None
    if not results:
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Orders in Voucherify"),
        "subtitle": None,
        "opts": opts,
        "results": results,
        "back_url": request.get_full_path(),
        "has_push_permission": request.user.has_perm(PUSH_PERMISSION),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/voucherify_orders/fetch_result.html", context)


def _fetch(request: HttpRequest, keys: list[str], site_name: str) -> list[Fetched]:
    mapper = get_mapper()
    orders = {str(order.pk): order for order in mapper.get_queryset().filter(pk__in=keys)}
    rows = OrderSync.objects.in_bulk(keys)
    client = get_client()
    results: list[Fetched] = []
    for position, key in enumerate(keys):
        order, row = orders.get(key), rows.get(key)
        source_id = (row.source_id if row else None) or (mapper.source_id(order) if order else None)
        remote_id = source_id or (row.voucherify_id if row else None)
        item = Fetched(
            key=key,
            label=_label(key, source_id),
            source_id=source_id,
            order_url=admin_change_url(site_name, mapper.model, key) if order else None,
            sync_url=admin_change_url(site_name, OrderSync, key) if row else None,
        )
        if order is None:
            item.local_error = _("The local order no longer exists.")
        else:
            try:
                item.local = dict(mapper.build(order).to_json())
            except MappingError as exc:
                item.local_error = str(exc)
        if not remote_id:
            item.remote_error = _("No source id or Voucherify id is known for this order.")
            results.append(item)
            continue
        try:
            remote = client.get_order(remote_id)
        except NotFound:
            item.remote_error = _("Voucherify has no order %(id)s.") % {"id": remote_id}
            messages.warning(request, f"{item.label}: {item.remote_error}")
        except VoucherifyError as exc:
            remember_rate_limit(client.last_rate_limit)
            logger.warning("admin fetch of order %s failed: %s", remote_id, exc)
            messages.error(
                request,
                _("Order %(order)s: Voucherify answered with an error: %(error)s")
                % {"order": item.label, "error": exc},
            )
            if isinstance(exc, _STOP_ERRORS):
                left = len(keys) - position - 1
                if left:
                    messages.warning(
                        request,
                        ngettext(
                            "Stopped: %(count)d more order was not fetched.",
                            "Stopped: %(count)d more orders were not fetched.",
                            left,
                        )
                        % {"count": left},
                    )
                break
            continue
        else:
            remember_rate_limit(client.last_rate_limit)
            item.remote = remote.model_dump(mode="json")
            if row is not None:
                fields: dict[str, Any] = {"remote_snapshot": item.remote}
                if not row.voucherify_id:
                    fields["voucherify_id"] = remote.id
                OrderSync.objects.filter(pk=key).update(**fields)
            item.diffs = compare(item.local, item.remote)
        results.append(item)
    fetched = sum(1 for item in results if item.remote is not None)
    if fetched:
        messages.success(
            request,
            ngettext(
                "%(count)d order fetched from Voucherify; its stored snapshot was refreshed.",
                "%(count)d orders fetched from Voucherify; their stored snapshots were refreshed.",
                fetched,
            )
            % {"count": fetched},
        )
    return results
