"""Oscar's ``OrderAdmin`` (already registered by ``oscar.apps.order``) with the sync state.

``@admin.register(Order)`` raises ``AlreadyRegistered`` in an Oscar project. Call
``register_admin()`` once the admin has autodiscovered Oscar's admin modules, e.g. in your
app's ``AppConfig.ready()`` (with ``django.contrib.admin`` above it in INSTALLED_APPS) or
in ``urls.py``: it re-registers the order's ModelAdmin, whatever it is, with
``VoucherifySyncAdminMixin`` in front.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from oscar.core.loading import get_model

from ...admin import VoucherifySyncAdminMixin

__all__ = ["register_admin"]


def register_admin(site: admin.AdminSite | None = None) -> type[admin.ModelAdmin[Any]]:
    """Re-register the order model's admin on ``site`` (default ``admin.site``) with the
    Voucherify mixin; returns the new ModelAdmin class. Calling it again changes nothing."""
    site = site or admin.site
    order_model = get_model("order", "Order")
    try:
        current: type[admin.ModelAdmin[Any]] = type(site.get_model_admin(order_model))
    except NotRegistered:
        current = admin.ModelAdmin
    if issubclass(current, VoucherifySyncAdminMixin):
        return current
    combined = type(current.__name__, (VoucherifySyncAdminMixin, current), {"__module__": __name__})
    if site.is_registered(order_model):
        site.unregister(order_model)
    site.register(order_model, combined)
    return combined
