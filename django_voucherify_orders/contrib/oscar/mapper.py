"""``OscarOrderMapper``: an Oscar order as Voucherify's order, usable as it is.

Set it as ``VOUCHERIFY_ORDERS["MAPPER"]`` with ``"ORDER_MODEL": "order.Order"``. Adjust it
with ``VOUCHERIFY_ORDERS["OSCAR"]`` (see ``options.py``) or a subclass's class attributes.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.db import models
from django.db.models import Prefetch
from oscar.core.loading import get_model

from ...client.schemas import OrderStatus
from ...conf import VoucherifyOrdersSettings, get_settings
from ...mapping import InvalidField, OrderMapper, to_minor_units
from .money import split_minor_units
from .options import SANDBOX_STATUS_MAP, SETTING, OscarOptions, options_problems, oscar_options

__all__ = ["SHIPPING_PRODUCT_ID", "OscarOrderMapper"]

#: Voucherify's built-in shipping product, which its shipping discounts apply to.
SHIPPING_PRODUCT_ID = "prod_5h1pp1ng"


class OscarOrderMapper(OrderMapper):
    """Oscar's ``order.Order`` (or a forked app's) -> Voucherify's order.

    - ``source_id``: the order number. ``created_at``: ``date_placed``.
    - items: each line not cancelled (quantity, unit price, amount before discounts and
      its discount), then shipping as Voucherify's shipping product with its discount,
      then each surcharge; their amounts add up exactly to the order's total.
    - customer: a registered user by ``user-<pk>``, a guest by e-mail; none when the user
      was deleted and no guest e-mail was kept.
    - metadata: currency, Oscar's status, offers, vouchers (for reference only: nothing is
      redeemed), shipping method.
    """

    date_field = "date_placed"
    status_field = "status"
    source_id_field = "number"  # the commands' --ids take order numbers
    #: Oscar status -> Voucherify status; ``VOUCHERIFY_ORDERS["OSCAR"]["STATUS_MAP"]`` adds
    #: to it or overrides it.
    status_map: dict[str, OrderStatus] = SANDBOX_STATUS_MAP
    #: Amounts with tax (``*_incl_tax``) or without (``*_excl_tax``).
    tax_inclusive: bool = True
    #: Lines in these statuses are not sent (Oscar keeps the order's totals as placed).
    cancelled_line_statuses: tuple[str, ...] = ("Cancelled",)
    #: Orders in these statuses are held back from live sync (see ``ready``).
    hold_statuses: tuple[str, ...] = ()
    #: Oscar has no "paid" status: an order whose status maps to CREATED is sent as PAID
    #: once it has a payment event of one of these types (by name, e.g. "Settled").
    paid_event_types: tuple[str, ...] = ()
    #: Prepended to a registered user's pk for the customer's source_id.
    customer_prefix: str = "user-"

    def __init__(self, model: type[models.Model] | None = None) -> None:
        super().__init__(model or get_model("order", "Order"))
        self._options: tuple[VoucherifyOrdersSettings, OscarOptions] | None = None

    # --- options ---------------------------------------------------------------------

    def options(self) -> OscarOptions:
        config = get_settings()
        if self._options is None or self._options[0] is not config:
            self._options = (config, oscar_options())
        return self._options[1]

    def statuses(self) -> dict[str, OrderStatus]:
        return {**self.status_map, **self.options().STATUS_MAP}

    def is_tax_inclusive(self) -> bool:
        chosen = self.options().TAX_INCLUSIVE
        return self.tax_inclusive if chosen is None else chosen

    def cancelled_statuses(self) -> Iterable[str]:
        chosen = self.options().CANCELLED_LINE_STATUSES
        return self.cancelled_line_statuses if chosen is None else chosen

    def paid_events(self) -> Iterable[str]:
        chosen = self.options().PAID_EVENT_TYPES
        return self.paid_event_types if chosen is None else chosen

    # --- the mapping -----------------------------------------------------------------

    def get_queryset(self) -> models.QuerySet[Any]:
        line_model = get_model("order", "Line")
        line_discounts = get_model("order", "OrderLineDiscount").objects.select_related(
            "order_discount"
        )
        payments = get_model("order", "PaymentEvent")._default_manager.select_related("event_type")
        lines = line_model._default_manager.select_related("product").prefetch_related(
            Prefetch("discounts", queryset=line_discounts)
        )
        return (
            super()
            .get_queryset()
            .select_related("user")
            .prefetch_related(
                Prefetch("lines", queryset=lines), "discounts", "surcharges",
                Prefetch("payment_events", queryset=payments),
            )
        )  # fmt: skip

    def source_id(self, order: Any) -> str:
        return f"{self.source_id_prefix}{order.number}"

    def ready(self, order: Any) -> bool:
        """Placed: Oscar's ``OrderCreator`` writes the order and its lines in one
        transaction, so an order without lines is one still being written (by a script
        or a factory, in autocommit). Orders in ``hold_statuses`` wait too."""
        chosen = self.options().HOLD_STATUSES
        held = self.hold_statuses if chosen is None else chosen
        return order.status not in held and len(order.lines.all()) > 0

    def to_voucherify(self, order: Any) -> dict[str, Any]:
        currency = order.currency
        lines = list(order.lines.all())
        cancelled = set(self.cancelled_statuses())
        kept = [line for line in lines if line.status not in cancelled]
        items = [self.line_item(line, currency) for line in kept]
        items += self.shipping_items(order, currency)
        items += [self.surcharge_item(charge, currency) for charge in order.surcharges.all()]
        total = self._price(order.total_incl_tax, order.total_excl_tax) - sum(
            (self._price(line.line_price_incl_tax, line.line_price_excl_tax) for line in lines
             if line.status in cancelled),
            Decimal(0),
        )  # fmt: skip
        self._split_exactly(items, currency, total, slack=len(items) + len(lines))
        payload: dict[str, Any] = {
            "status": self.voucherify_status(order),
            "amount": sum(item["amount"] for item in items),
            "discount_amount": 0,  # Oscar's discounts are on the lines and the shipping
            "items": [{k: v for k, v in item.items() if k != "_exact"} for item in items],
            "created_at": order.date_placed,
            "metadata": self.metadata(order),
        }
        customer = self.customer(order)
        if customer is not None:
            payload["customer"] = customer
        return payload

    def voucherify_status(self, order: Any) -> OrderStatus:
        statuses = self.statuses()
        if order.status not in statuses:
            raise InvalidField(
                "status",
                f"Oscar status {order.status!r} has no Voucherify status; add it to "
                f'{SETTING}["STATUS_MAP"], e.g. {{{order.status!r}: "PAID"}}',
            )
        status = statuses[order.status]
        paid_by = set(self.paid_events())
        payments = order.payment_events.all() if status == "CREATED" and paid_by else ()
        if any(event.event_type.name in paid_by for event in payments):
            return "PAID"
        return status

    def _price(self, incl: Decimal | None, excl: Decimal | None) -> Decimal:
        value = incl if self.is_tax_inclusive() else excl
        return Decimal(0) if value is None else value

    def line_item(self, line: Any, currency: str) -> dict[str, Any]:
        before = self._price(
            line.line_price_before_discounts_incl_tax, line.line_price_before_discounts_excl_tax
        )
        after = self._price(line.line_price_incl_tax, line.line_price_excl_tax)
        unit = self._price(line.unit_price_incl_tax, line.unit_price_excl_tax)
        if not unit and line.quantity:
            unit = before / line.quantity
        metadata: dict[str, Any] = {"partner_sku": line.partner_sku}
        offers = sorted({d.order_discount.offer_name for d in line.discounts.all()} - {""})
        if offers:
            metadata["offers"] = offers
        return {
            "source_id": self.product_source_id(line),
            "related_object": "product",
            "quantity": line.quantity,
            "price": to_minor_units(unit, currency),
            "product": {"name": line.title or self.product_source_id(line)},
            "metadata": metadata,
            "_exact": (before, before - after),
        }

    def product_source_id(self, line: Any) -> str:
        """The product's UPC, else ``product-<pk>``; a deleted product's partner SKU, UPC
        or title (the line keeps them)."""
        if line.product is not None:
            return line.product.upc or f"product-{line.product.pk}"
        return line.partner_sku or line.upc or line.title

    def shipping_items(self, order: Any, currency: str) -> list[dict[str, Any]]:
        charged = self._price(order.shipping_incl_tax, order.shipping_excl_tax)
        # Oscar keeps one amount per shipping discount, and adds it back the same way for
        # its own "shipping before discounts".
        discount = sum(
            (d.amount for d in order.discounts.all() if d.category == "Shipping"), Decimal(0)
        )
        if not charged and not discount:
            return []
        return [
            {
                "product_id": SHIPPING_PRODUCT_ID,
                "related_object": "product",
                "quantity": 1,
                "metadata": {"shipping_method": order.shipping_code or order.shipping_method},
                "_exact": (charged + discount, discount),
            }
        ]

    def surcharge_item(self, charge: Any, currency: str) -> dict[str, Any]:
        amount = self._price(charge.incl_tax, charge.excl_tax)
        return {
            "source_id": f"surcharge-{charge.code}",
            "related_object": "product",
            "quantity": 1,
            "product": {"name": charge.name or charge.code},
            "_exact": (amount, Decimal(0)),
        }

    @staticmethod
    def _split_exactly(
        items: list[dict[str, Any]], currency: str, total: Decimal, slack: int
    ) -> None:
        """Minor units per item whose net amounts add up to Oscar's total (less cancelled
        lines). Oscar's total may differ from its lines' sum by a cent of tax rounding a
        line; beyond that (a line deleted after placing: Oscar keeps the total) the items
        are what Voucherify is told, and their own sum is the total."""
        exact = [i["_exact"] for i in items]
        nets = [gross - off for gross, off in exact]
        if abs(sum(nets, Decimal(0)) - total) > Decimal("0.01") * slack:
            total = sum(nets, Decimal(0))
        net_units = split_minor_units(nets, currency, total)
        off_units = split_minor_units([off for _, off in exact], currency)
        for item, net, off in zip(items, net_units, off_units, strict=True):
            item["amount"] = net + off
            item["discount_amount"] = off
            item.setdefault("price", item["amount"])

    def customer(self, order: Any) -> dict[str, Any] | None:
        user = order.user
        if user is not None:
            customer = {"source_id": f"{self.customer_prefix}{user.pk}"}
            if user.email:
                customer["email"] = user.email
            name = user.get_full_name() if hasattr(user, "get_full_name") else ""
            if name:
                customer["name"] = name
            return customer
        if order.guest_email:
            return {"source_id": order.guest_email.strip().lower(), "email": order.guest_email}
        return None  # the user was deleted and no e-mail was kept: Voucherify keeps its own

    def metadata(self, order: Any) -> dict[str, Any]:
        discounts = order.discounts.all()
        return {
            "currency": order.currency,
            "oscar_status": order.status,
            "offers": sorted({d.offer_name for d in discounts if d.offer_name}),
            "vouchers": sorted({d.voucher_code for d in discounts if d.voucher_code}),
            "shipping_method": order.shipping_code or order.shipping_method,
            "tax_inclusive": self.is_tax_inclusive(),
        }

    # --- checks ----------------------------------------------------------------------

    def check(self) -> list[CheckMessage]:
        problems = options_problems(get_settings().oscar)
        if problems:
            return [
                Error(problem, hint="See docs/oscar.md for the keys.", id="vo.E101")
                for problem in problems
            ]
        pipeline = getattr(settings, "OSCAR_ORDER_STATUS_PIPELINE", {}) or {}
        used = set(pipeline) | {s for nexts in pipeline.values() for s in nexts}
        initial = getattr(settings, "OSCAR_INITIAL_ORDER_STATUS", None)
        if initial is not None:
            used.add(initial)
        missing = sorted(used - set(self.statuses()))
        if not missing:
            return []
        example = ", ".join(f'"{status}": "PAID"' for status in missing)
        return [
            Error(
                f"OSCAR_ORDER_STATUS_PIPELINE has statuses with no Voucherify status: "
                f"{', '.join(repr(s) for s in missing)}; orders in them fail to sync.",
                hint=f'Map each to CREATED, PAID, FULFILLED or CANCELED:\n    "OSCAR": '
                f'{{"STATUS_MAP": {{{example}}}}},  # in VOUCHERIFY_ORDERS',
                id="vo.E102",
            )
        ]
