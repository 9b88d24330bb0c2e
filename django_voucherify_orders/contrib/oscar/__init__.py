"""django-oscar: its orders in Voucherify with a few lines of settings (docs/oscar.md).

::

    from django_voucherify_orders.contrib import oscar

    VOUCHERIFY_ORDERS = {
        ...,
        "ORDER_MODEL": "order.Order",
        "MAPPER": "django_voucherify_orders.contrib.oscar.OscarOrderMapper",
        "TRIGGERS": oscar.TRIGGERS,
    }

Importing this package from settings imports nothing of Oscar or of Django's models:
the mapper and the admin helper load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin import register_admin
    from .mapper import OscarOrderMapper

__all__ = ["TRIGGERS", "OscarOrderMapper", "register_admin"]

#: Oscar's models whose saves and deletes change an order's payload, each with its
#: ForeignKey to the order. App labels stay the same in forked apps.
#:
#: - ``order.Line``: items (a line's status, for cancelled lines; prices; quantity).
#: - ``order.OrderDiscount``: offers and vouchers (metadata), the shipping discount.
#: - ``order.Surcharge``: surcharge items.
#: - ``order.PaymentEvent``: a payment may make the order PAID (``PAID_EVENT_TYPES``).
#:
#: A status change saves the order itself (``Order.set_status``), and shipping is on the
#: order, so neither needs a trigger. ``OrderLineDiscount`` points at a line, not at the
#: order, so it cannot be one: Oscar writes it with its line and ``OrderDiscount`` in
#: ``OrderCreator.place_order``'s transaction, whose marks cover it; code that changes one
#: alone calls ``enqueue_sync`` for its order.
TRIGGERS: dict[str, str] = {
    "order.Line": "order",
    "order.OrderDiscount": "order",
    "order.Surcharge": "order",
    "order.PaymentEvent": "order",
}


def __getattr__(name: str) -> Any:
    # "MAPPER": "django_voucherify_orders.contrib.oscar.OscarOrderMapper" imports it from
    # here once the apps are ready; settings that import TRIGGERS must not load Oscar.
    if name == "OscarOrderMapper":
        from .mapper import OscarOrderMapper

        return OscarOrderMapper
    if name == "register_admin":
        from .admin import register_admin

        return register_admin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
