"""The Django admin of django-voucherify-orders.

Registers read-only admins for ``OrderSync`` (with the actions, the orders Voucherify
holds and the health page), ``ImportJob`` and ``ExportJob``; offers
``VoucherifySyncAdminMixin`` for the shop's own order admin.
"""

from .actions import fetch_from_voucherify, push_now, retry_failed
from .jobs import ExportJobAdmin, ImportJobAdmin
from .mixin import VoucherifySyncAdminMixin, VoucherifySyncStateFilter
from .sync_state import OrderSyncAdmin

__all__ = [
    "ExportJobAdmin",
    "ImportJobAdmin",
    "OrderSyncAdmin",
    "VoucherifySyncAdminMixin",
    "VoucherifySyncStateFilter",
    "fetch_from_voucherify",
    "push_now",
    "retry_failed",
]
