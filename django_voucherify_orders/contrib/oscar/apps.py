"""The app that puts the sync panel on Oscar's dashboard order page (docs/oscar.md).

Listed in INSTALLED_APPS *before* Oscar's apps, so that its
``oscar/dashboard/orders/order_detail.html`` is found first; that template extends Oscar's
own one of the same name and only adds the panel. Optional: the mapper and ``TRIGGERS``
work without it.
"""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VoucherifyOscarConfig(AppConfig):
    name = "django_voucherify_orders.contrib.oscar"
    # Not "oscar": that is Oscar's own label (oscar.config.Shop).
    label = "voucherify_orders_oscar"
    verbose_name = _("Voucherify orders: django-oscar dashboard")
