"""Decimal amounts -> integer minor units that add up exactly to a given total."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ...mapping import currency_exponent

__all__ = ["split_minor_units"]


def split_minor_units(
    amounts: Sequence[Decimal], currency: str, total: Decimal | None = None
) -> list[int]:
    """Each amount in ``currency``'s minor units, rounded so that they add up to ``total``
    (default: their sum) rounded half up. Oscar keeps two decimals, and rounding each line
    of a JPY order on its own could miss its total by a yen a line; Oscar's own total can
    differ from its lines' sum by a cent of tax rounding.

    Largest remainders get the units left over (the largest amounts give back the units
    too many, never below zero). An amount that is exact in minor units, with the total
    its sum, is kept as it is, and a zero stays zero.
    """
    exponent = currency_exponent(currency)
    scaled = [Decimal(amount).scaleb(exponent) for amount in amounts]
    units = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in scaled]
    wanted = sum(scaled, Decimal(0)) if total is None else Decimal(total).scaleb(exponent)
    left = int(wanted.to_integral_value(rounding=ROUND_HALF_UP)) - sum(units)
    order = sorted(range(len(units)), key=lambda i: (scaled[i] - units[i], units[i], -i))
    while left > 0 and units:  # the largest remainders first, then the largest amounts
        for index in reversed(order):
            if left == 0:
                break
            units[index] += 1
            left -= 1
    while left < 0 and any(units):  # the largest amounts give units back
        index = max(range(len(units)), key=lambda i: (units[i], -i))
        units[index] -= 1
        left += 1
    return units
