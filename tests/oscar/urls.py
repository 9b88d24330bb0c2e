from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # What docs/oscar.md tells a shop to add for the dashboard panel's buttons.
    path("voucherify/", include("django_voucherify_orders.contrib.oscar.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
