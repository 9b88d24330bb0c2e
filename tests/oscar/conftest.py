"""Orders placed Oscar's way: baskets, Oscar's strategies, offers, vouchers and OrderCreator."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from typing import Any

import pytest

_numbers = itertools.count(100001)


@pytest.fixture
def emulator(voucherify_emulator):
    return voucherify_emulator


class OscarShop:
    """A checkout as Oscar's PaymentDetailsView does it, without the views."""

    def __init__(self) -> None:
        from oscar.test import factories

        self.factories = factories

    def product(self, price: str = "10.00", currency: str = "GBP", **fields: Any) -> Any:
        product = self.factories.create_product(**fields)
        self.factories.create_stockrecord(
            product, price=D(price), num_in_stock=1000, currency=currency
        )
        return product

    def place(
        self,
        lines: list[tuple[Any, int]] | None = None,
        *,
        user: Any = None,
        guest_email: str = "",
        shipping: tuple[str, str] | None = None,
        surcharges: list[tuple[str, str]] = (),
        vouchers: list[Any] = (),
        taxed: bool = False,
        number: str | None = None,
    ) -> Any:
        """Place an order: the basket gets ``lines`` (product, quantity), Oscar's offers and
        ``vouchers``; shipping (excl, incl) at a fixed price, shipping offers applied."""
        from oscar.apps.checkout.applicator import SurchargeList, SurchargePrice
        from oscar.apps.checkout.calculators import OrderTotalCalculator
        from oscar.apps.checkout.surcharges import FlatCharge
        from oscar.apps.offer.applicator import Applicator
        from oscar.apps.order.utils import OrderCreator
        from oscar.apps.partner.strategy import UK, Default
        from oscar.apps.shipping.methods import FixedPrice, Free
        from oscar.apps.shipping.repository import Repository

        basket = self.factories.BasketFactory(owner=user)
        basket.strategy = UK() if taxed else Default()
        for product, quantity in lines or [(self.product(), 1)]:
            basket.add_product(product, quantity)
        for voucher in vouchers:
            basket.vouchers.add(voucher)
        Applicator().apply(basket, user)
        method = FixedPrice(D(shipping[0]), D(shipping[1])) if shipping else Free()
        if basket.shipping_discounts:
            method = Repository().apply_shipping_offers(basket, [method])[0]
        shipping_charge = method.calculate(basket)
        charges = None
        if surcharges:
            charges = SurchargeList()
            for index, (excl, incl) in enumerate(surcharges):
                charge = FlatCharge(excl_tax=D(excl), incl_tax=D(incl))
                charge.code = f"fee-{index}"
                charges.append(SurchargePrice(charge, charge.calculate(basket)))
        total = OrderTotalCalculator().calculate(basket, shipping_charge, charges)
        order = OrderCreator().place_order(
            basket=basket, total=total, shipping_method=method, shipping_charge=shipping_charge,
            user=user, order_number=number or str(next(_numbers)), surcharges=charges,
            guest_email=guest_email,
        )  # fmt: skip
        basket.set_as_submitted()
        return order


@pytest.fixture
def oscar_shop(transactional_db) -> OscarShop:
    return OscarShop()
