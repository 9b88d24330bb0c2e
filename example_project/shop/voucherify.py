"""How a shop order becomes a Voucherify order (``VOUCHERIFY_ORDERS["MAPPER"]``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet

from django_voucherify_orders.mapping import InvalidField, OrderMapper, to_minor_units

from .models import Order, OrderItem

#: The shop's own statuses -> Voucherify's.
STATUS_MAP: dict[str, str] = {
    Order.Status.NEW: "CREATED",
    Order.Status.PAID: "PAID",
    Order.Status.SHIPPED: "FULFILLED",
    Order.Status.CANCELLED: "CANCELED",
}


class ShopOrderMapper(OrderMapper):
    """``source_id`` is the order's pk as text (set by ``OrderMapper.build``)."""

    source_id_prefix = ""
    date_field = "created_at"

    def get_queryset(self) -> QuerySet[Any]:
        # Three queries for any number of orders: orders joined to customers, their
        # items, and the (few, shared) products of those items, each loaded once rather
        # than once per line as a join would. to_voucherify reads only what is loaded here.
        items = OrderItem.objects.order_by("pk")
        return (
            super()
            .get_queryset()
            .select_related("customer")
            .prefetch_related(Prefetch("items", queryset=items), "items__product")
        )

    def to_voucherify(self, order: Order) -> dict[str, Any]:
        currency = order.currency
        try:
            status = STATUS_MAP[order.status]
        except KeyError:
            known = ", ".join(STATUS_MAP)
            raise InvalidField(
                "status", f"{order.status!r} is not a shop status this mapper knows ({known})"
            ) from None

        items = []
        for item in order.items.all():  # prefetched: never .filter() here, it would query
            price = to_minor_units(item.unit_price, currency)
            items.append(
                {
                    "source_id": item.product.sku,
                    "related_object": "product",
                    "quantity": item.quantity,
                    "price": price,
                    "amount": price * item.quantity,
                    "product": {"name": item.product.name},
                }
            )

        payload: dict[str, Any] = {
            "status": status,
            "amount": sum(item["amount"] for item in items),
            "items": items,
            "customer": self.customer(order),
            "created_at": order.created_at,
            "metadata": self.metadata(order),
            # Always sent, 0 included: an update leaves out-of-body fields unchanged in
            # Voucherify, so leaving a removed discount out would keep the old one there.
            # Voucherify does not echo a zero discount back (the admin's compare knows).
            "discount_amount": to_minor_units(order.discount or Decimal(0), currency),
        }
        return payload

    def customer(self, order: Order) -> dict[str, Any]:
        customer = order.customer
        data: dict[str, Any] = {"source_id": f"customer-{customer.pk}", "name": customer.name}
        # Blank fields are left out rather than sent as "" (which would erase them remotely).
        if customer.email:
            data["email"] = customer.email
        if customer.phone:
            data["phone"] = customer.phone
        address = {key: value for key in ("city", "country") if (value := getattr(customer, key))}
        if address:
            data["address"] = address
        return data

    def metadata(self, order: Order) -> dict[str, Any]:
        metadata = {"number": order.number, "currency": order.currency}
        if order.note:
            metadata["note"] = order.note
        return metadata
