"""``VoucherifySyncAdminMixin``: the sync state inside the shop's own order admin.

::

    from django_voucherify_orders.admin import VoucherifySyncAdminMixin

    @admin.register(Order)
    class OrderAdmin(VoucherifySyncAdminMixin, admin.ModelAdmin):
        ...

It adds to the changelist a "Voucherify" column and filter (the state is annotated with
a subquery on ``OrderSync``, so the page costs no extra query per row), the actions
"Push to Voucherify now", "Fetch from Voucherify" and "Retry failed pushes" (each shown
only to users with its permission), and to the change page a "Voucherify" fieldset: a
read-only field that shows the order's ``OrderSync`` row, its last attempts and buttons
for the actions. ``OrderSync`` is keyed by the order's primary key as text, not by a
foreign key, so a real inline cannot show it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.db.models import CharField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import OrderSync, SyncAttempt, SyncState
from .actions import (
    NEXT_FIELD,
    PUSH_PERMISSION,
    REMOTE_PERMISSION,
    VoucherifyPermissions,
    admin_change_url,
    fetch_from_voucherify,
    push_now,
    retry_failed,
)
from .rendering import attempts_table, state_badge, when

__all__ = ["VoucherifySyncAdminMixin", "VoucherifySyncStateFilter"]

PANEL_FIELD = "voucherify_sync_panel"
PANEL_ATTEMPTS = 5


def sync_state(order_pk: Any) -> tuple[OrderSync | None, list[SyncAttempt]]:
    """An order's sync row and its latest ``PANEL_ATTEMPTS`` calls: two queries, no call
    to Voucherify (the admin's panel and Oscar's dashboard panel both show them)."""
    row = OrderSync.objects.filter(pk=str(order_pk)).first()
    if row is None:
        return None, []
    latest = SyncAttempt.objects.filter(sync_id=row.pk).order_by("-started_at", "-pk")
    return row, list(latest[:PANEL_ATTEMPTS])


_STATE = "voucherify_sync_state_value"
_ERROR_KEY = "voucherify_sync_error_key"


def _sync_rows() -> QuerySet[OrderSync]:
    return OrderSync.objects.filter(order_pk=Cast(OuterRef("pk"), CharField()))


class VoucherifySyncStateFilter(admin.SimpleListFilter):
    title = gettext_lazy("Voucherify sync")
    parameter_name = "voucherify_sync"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [*SyncState.choices, ("none", _("not tracked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if value == "none":
            return queryset.filter(**{f"{_STATE}__isnull": True})
        return queryset.filter(**{_STATE: value})


class VoucherifySyncAdminMixin(VoucherifyPermissions):
    """Put it before ``admin.ModelAdmin`` in the bases of the order model's admin."""

    #: The fieldset title of the sync panel on the change page.
    voucherify_fieldset_title = gettext_lazy("Voucherify")
    #: Set to False to keep the changelist's columns and filters as they are.
    voucherify_changelist_column = True

    # --- changelist ------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return queryset.annotate(
            **{
                _STATE: Subquery(_sync_rows().values("state")[:1]),
                _ERROR_KEY: Subquery(_sync_rows().values("last_error_key")[:1]),
            }
        )

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))  # type: ignore[misc]
        if self.voucherify_changelist_column and "voucherify_sync_state" not in columns:
            columns.append("voucherify_sync_state")
        return columns

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))  # type: ignore[misc]
        if self.voucherify_changelist_column and VoucherifySyncStateFilter not in filters:
            filters.append(VoucherifySyncStateFilter)
        return filters

    @admin.display(description=gettext_lazy("Voucherify"), ordering=_STATE)
    def voucherify_sync_state(self, obj: Any) -> SafeString:
        state = getattr(obj, _STATE, None)
        error_key = getattr(obj, _ERROR_KEY, "") or ""
        return state_badge(state, error_key)

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 says where the actions are shown (the change list or the change form);
        # Django 5.2 knows only the change list and calls get_actions(request).
        where = () if action_location is None else (action_location,)
        actions = super().get_actions(request, *where)  # type: ignore[misc]
        if self.actions is None or IS_POPUP_VAR in request.GET:  # type: ignore[attr-defined]
            return actions
        # django-stubs types @admin.action as returning the bare function, without the
        # allowed_permissions attribute it sets.
        for func in (push_now, fetch_from_voucherify, retry_failed):
            allowed = all(
                getattr(self, f"has_{permission}_permission")(request)
                for permission in func.allowed_permissions  # type: ignore[union-attr]
            )
            # get_action builds what this Django release expects (a tuple before 6.1), and
            # None where the action isn't shown (these are change-list actions only).
            action = self.get_action(func, *where) if allowed else None  # type: ignore[attr-defined]
            if action:
                actions[func.__name__] = action
        return actions

    # --- change page -----------------------------------------------------------------------

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is not None:
            # The panel is a read-only field, which sees only the object: tell it what
            # this user may do, and where to come back to.
            obj._voucherify_panel = {
                "push": request.user.has_perm(PUSH_PERMISSION),
                "fetch": request.user.has_perm(REMOTE_PERMISSION),
                "next": request.get_full_path(),
            }
        return obj

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if obj is not None and PANEL_FIELD not in fields:
            fields.append(PANEL_FIELD)
        return fields

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is None:
            return fieldsets
        cleaned = []
        for name, options in fieldsets:
            fields = [f for f in options.get("fields", ()) if f != PANEL_FIELD]
            if fields:
                cleaned.append((name, {**options, "fields": fields}))
        cleaned.append(
            (self.voucherify_fieldset_title, {"fields": [PANEL_FIELD], "classes": ["vo-panel"]})
        )
        return cleaned

    @admin.display(description=gettext_lazy("Sync state"))
    def voucherify_sync_panel(self, obj: Any) -> SafeString:
        site = self.admin_site  # type: ignore[attr-defined]
        row, attempts = sync_state(obj.pk)
        can = getattr(obj, "_voucherify_panel", {})
        opts = self.model._meta  # type: ignore[attr-defined]
        try:
            changelist = reverse(
                f"{site.name}:{opts.app_label}_{opts.model_name}_changelist", current_app=site.name
            )
        except NoReverseMatch:
            changelist = None
        context = {
            "row": row,
            "badge": state_badge(row.state if row else None, row.last_error_key if row else ""),
            "synced_at": when(row.synced_at) if row else None,
            "next_attempt_at": when(row.next_attempt_at) if row and row.next_attempt_at else None,
            "attempts": attempts_table(attempts, bodies=False) if attempts else None,
            "sync_url": admin_change_url(site.name, OrderSync, row.pk) if row else None,
            "changelist_url": changelist,
            "can_push": bool(can.get("push")) and changelist is not None,
            "can_fetch": bool(can.get("fetch")) and changelist is not None,
            "failed": row is not None and row.state == SyncState.FAILED,
            "pk": obj.pk,
            "next": can.get("next", ""),
            "next_field": NEXT_FIELD,
        }
        return SafeString(render_to_string("admin/voucherify_orders/sync_panel.html", context))
