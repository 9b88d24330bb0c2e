"""register_admin(): the sync state inside Oscar's own, already registered, OrderAdmin."""

from __future__ import annotations

import importlib

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.exceptions import AlreadyRegistered
from django.urls import clear_url_caches
from oscar.apps.order.admin import OrderAdmin as OscarOrderAdmin
from oscar.core.loading import get_model

from django_voucherify_orders.admin import VoucherifySyncAdminMixin
from django_voucherify_orders.contrib.oscar import register_admin

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

Order = get_model("order", "Order")


def reload_urls() -> None:
    """``admin.site.urls`` binds each ModelAdmin when urls.py is imported, which is why a
    shop calls register_admin() in urls.py above it or in ready(): as a fresh process
    would, import the test project's urls again (once a test has made a request, they are
    loaded)."""
    importlib.reload(importlib.import_module(settings.ROOT_URLCONF))
    clear_url_caches()


@pytest.fixture
def site_admin():
    """admin.site as Oscar left it, restored after the test."""
    original = type(admin.site.get_model_admin(Order))
    yield admin.site
    admin.site.unregister(Order)
    admin.site.register(Order, original)
    reload_urls()


def test_the_readme_s_register_raises_in_an_oscar_project():
    with pytest.raises(AlreadyRegistered):
        admin.site.register(Order, admin.ModelAdmin)


def test_oscar_s_order_admin_gains_the_sync_state(site_admin, oscar_shop, emulator, admin_client):
    order = oscar_shop.place()

    combined = register_admin()

    assert issubclass(combined, VoucherifySyncAdminMixin)
    assert issubclass(combined, OscarOrderAdmin)  # Oscar's columns, inlines, search stay
    assert register_admin() is combined  # twice changes nothing
    reload_urls()
    page = admin_client.get("/admin/order/order/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Voucherify" in html and "Synced" in html and order.number in html
    change = admin_client.get(f"/admin/order/order/{order.pk}/change/")
    assert change.status_code == 200
    assert "vo-panel" in change.content.decode()


def test_an_order_model_nobody_registered_gets_a_plain_admin(db):
    site = admin.AdminSite(name="bare")

    combined = register_admin(site)

    assert issubclass(combined, VoucherifySyncAdminMixin)
    assert isinstance(site.get_model_admin(Order), combined)
