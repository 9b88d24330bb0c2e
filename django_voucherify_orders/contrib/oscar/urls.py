"""The dashboard panel's actions, included in the shop's urls.py as
``path("voucherify/", include("django_voucherify_orders.contrib.oscar.urls"))``.
"""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "voucherify_oscar"

urlpatterns = [
    path("orders/<str:number>/push/", views.push, name="push"),
    path("orders/<str:number>/fetch/", views.fetch, name="fetch"),
]
