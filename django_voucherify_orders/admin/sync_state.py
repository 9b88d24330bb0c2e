"""The OrderSync admin: read-only sync state, the actions, and the two pages it leads to
(the orders Voucherify holds, and the sync's health).

Its changelist reads the database only (DESIGN.md: the admin never calls the API while
rendering a list), in a fixed number of queries whatever the page size.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..health import hourly_chart_svg, sync_health
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
from .remote import remote_orders_view
from .rendering import attempts_table, badge, pretty_json, state_badge, when

#: SyncAttempt rows shown on a row's change page, newest first.
ATTEMPT_LOG_LIMIT = 50


class ErrorKeyFilter(admin.SimpleListFilter):
    """Voucherify's error key of the last failure (one query for the choices)."""

    title = gettext_lazy("error key")
    parameter_name = "error_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        keys = (
            OrderSync.objects.exclude(last_error_key="")
            .order_by("last_error_key")
            .values_list("last_error_key", flat=True)
            .distinct()
        )
        return [("-", _("(no error)")), *((key, key) for key in keys)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(last_error_key="" if value == "-" else value)


@admin.register(OrderSync)
class OrderSyncAdmin(VoucherifyPermissions, admin.ModelAdmin):
    list_display = [
        "source_id_display",
        "state_display",
        "voucherify_id",
        "synced_at",
        "attempts",
        "error_key_display",
    ]
    list_display_links = ["source_id_display"]
    list_filter = ["state", ErrorKeyFilter]
    search_fields = ["=order_pk", "source_id", "=voucherify_id"]
    ordering = ["-updated_at"]
    actions = [push_now, fetch_from_voucherify, retry_failed]
    show_full_result_count = False
    list_per_page = 100
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "local_order",
                    "source_id",
                    "voucherify_id",
                    "state_display",
                    "synced_at",
                    "updated_at",
                ]
            },
        ),
        (
            gettext_lazy("Outbox"),
            {
                "fields": [
                    "version",
                    "pushed_version",
                    "attempts",
                    "first_failed_at",
                    "next_attempt_at",
                    "lease_until",
                    "payload_hash",
                    "created_at",
                ]
            },
        ),
        (
            gettext_lazy("Last error"),
            {
                "fields": [
                    "last_error_status",
                    "last_error_key",
                    "last_error_message",
                    "last_error_details",
                    "last_error_request_id",
                ]
            },
        ),
        (gettext_lazy("Last pushed payload"), {"fields": ["last_payload_display"]}),
        (
            gettext_lazy("Voucherify's copy (stored remote snapshot)"),
            {"fields": ["remote_snapshot_display"]},
        ),
        (gettext_lazy("Attempt log"), {"fields": ["attempt_log"], "classes": ["vo-wide"]}),
    ]
    readonly_fields = [
        "local_order",
        "source_id",
        "voucherify_id",
        "state_display",
        "synced_at",
        "updated_at",
        "version",
        "pushed_version",
        "attempts",
        "first_failed_at",
        "next_attempt_at",
        "lease_until",
        "payload_hash",
        "created_at",
        "last_error_status",
        "last_error_key",
        "last_error_message",
        "last_error_details",
        "last_error_request_id",
        "last_payload_display",
        "remote_snapshot_display",
        "attempt_log",
    ]

    # --- read-only -------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # mirrored data: only the push engine writes it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    # --- columns ---------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("source id"), ordering="source_id")
    def source_id_display(self, obj: OrderSync) -> str:
        return obj.source_id or f"#{obj.order_pk}"

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_display(self, obj: OrderSync) -> SafeString:
        if obj.state == SyncState.PENDING and obj.last_error_key:
            # Retried after a transient failure (or waiting for the credentials): say why.
            return badge(_("retrying"), "wait", obj.last_error_message)
        title = obj.last_error_message if obj.state == SyncState.FAILED else ""
        return state_badge(obj.state, title)

    @admin.display(description=gettext_lazy("last error"), ordering="last_error_key")
    def error_key_display(self, obj: OrderSync) -> SafeString | str:
        if not obj.last_error_key:
            return "—"
        return format_html('<code title="{}">{}</code>', obj.last_error_message, obj.last_error_key)

    @admin.display(description=gettext_lazy("local order"))
    def local_order(self, obj: OrderSync) -> SafeString | str:
        url = self._order_url(obj.order_pk)
        if url is None:
            return obj.order_pk
        return format_html('<a href="{}">{}</a>', url, obj.order_pk)

    @admin.display(description=gettext_lazy("payload"))
    def last_payload_display(self, obj: OrderSync) -> SafeString:
        return pretty_json(obj.last_payload)

    @admin.display(description=gettext_lazy("snapshot"))
    def remote_snapshot_display(self, obj: OrderSync) -> SafeString:
        return pretty_json(obj.remote_snapshot)

    @admin.display(description=gettext_lazy("attempts"))
    def attempt_log(self, obj: OrderSync) -> SafeString:
        attempts = SyncAttempt.objects.filter(sync_id=obj.pk).order_by("-started_at", "-pk")
        rows = list(attempts[: ATTEMPT_LOG_LIMIT + 1])
        table = attempts_table(rows[:ATTEMPT_LOG_LIMIT])
        if len(rows) > ATTEMPT_LOG_LIMIT:
            note = _("The newest %(limit)d attempts are shown.") % {"limit": ATTEMPT_LOG_LIMIT}
            return format_html('{}<p class="help">{}</p>', table, note)
        return table

    def _order_url(self, key: str) -> str | None:
        try:
            from ..mapping import get_order_model

            model = get_order_model()
        except Exception:  # not configured for live sync: no order model to link to
            return None
        if model not in self.admin_site._registry:
            return None
        return admin_change_url(self.admin_site.name, model, key)

    # --- pages -----------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("remote/", wrap(self.remote_view), name=f"{prefix}_remote"),
            path("health/", wrap(self.health_view), name=f"{prefix}_health"),
            *super().get_urls(),
        ]

    def remote_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(REMOTE_PERMISSION):
            raise PermissionDenied
        return remote_orders_view(self, request)

    def health_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        health = sync_health()
        changelist = reverse(
            f"{self.admin_site.name}:voucherify_orders_ordersync_changelist",
            current_app=self.admin_site.name,
        )
        pending_url = None
        if health.oldest_pending is not None:
            pending_url = admin_change_url(
                self.admin_site.name, OrderSync, health.oldest_pending.pk
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Voucherify sync health"),
            "opts": self.opts,
            "health": health,
            "chart": hourly_chart_svg(health.hours),
            "changelist_url": changelist,
            "oldest_pending_url": pending_url,
            "generated": when(health.generated_at),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/voucherify_orders/health.html", context)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {
            "has_remote_permission": request.user.has_perm(REMOTE_PERMISSION),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra = {
            "has_push_permission": request.user.has_perm(PUSH_PERMISSION),
            "has_remote_permission": request.user.has_perm(REMOTE_PERMISSION),
            "next_field": NEXT_FIELD,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)
