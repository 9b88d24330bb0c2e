"""Decimal amounts -> integer minor units that add up exactly to their rounded sum."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ...mapping import currency_exponent

__all__ = ["split_minor_units"]


def split_minor_units(amounts: Sequence[Decimal], currency: str) -> list[int]:
    """Each amount in ``currency``'s minor units, rounded so that they sum to the sum of
    the amounts rounded half up (largest remainders): Oscar keeps two decimals, and
    rounding each line of a JPY order on its own could miss its total by a yen a line.

    An amount that is exact in minor units (every amount of a currency with two or more
    digits) is kept as it is; a zero stays zero. Never negative for non-negative input.
    """
    exponent = currency_exponent(currency)
    scaled = [Decimal(amount).scaleb(exponent) for amount in amounts]
    floors = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in scaled]
    target = int(sum(scaled, Decimal(0)).to_integral_value(rounding=ROUND_HALF_UP))
    by_remainder = sorted(
        range(len(scaled)), key=lambda i: (scaled[i] - floors[i], -i), reverse=True
    )
    for index in by_remainder[: target - sum(floors)]:
        floors[index] += 1
    return floors
