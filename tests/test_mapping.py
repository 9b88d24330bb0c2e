from __future__ import annotations

from decimal import Decimal

import pytest

from django_voucherify_orders.conf import RateLimit
from django_voucherify_orders.mapping import currency_exponent, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("19.99"), "EUR", 1999),
        (Decimal("19.995"), "usd", 2000),  # half up
        (Decimal("19.994"), "USD", 1999),
        (Decimal("1500"), "JPY", 1500),
        (Decimal("1500.5"), "JPY", 1501),
        (Decimal("12.345"), "KWD", 12345),
        ("0.01", "EUR", 1),
        (7, "EUR", 700),
        (Decimal("0"), "EUR", 0),
    ],
)
def test_to_minor_units(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        (19.99, "EUR", TypeError),
        ("abc", "EUR", ValueError),
        (Decimal("NaN"), "EUR", ValueError),
        (Decimal("Infinity"), "EUR", ValueError),
        (Decimal("1"), "EURO", ValueError),
        (Decimal("1"), "", ValueError),
    ],
)
def test_to_minor_units_refuses_what_it_cannot_convert(amount, currency, error):
    with pytest.raises(error):
        to_minor_units(amount, currency)


def test_currency_exponents():
    assert [currency_exponent(c) for c in ("JPY", "USD", "EUR", "KWD", "BHD", "CLF")] == [
        0, 2, 2, 3, 3, 4,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "count", "period"), [("100/m", 100, 60.0), ("5/s", 5, 1.0), ("1000/h", 1000, 3600.0)]
)
def test_rate_limits_parse(text, count, period):
    assert RateLimit.parse(text) == RateLimit(count, period)


@pytest.mark.parametrize("text", ["100", "0/m", "-1/m", "100/d", "x/m"])
def test_bad_rate_limits_are_refused(text):
    with pytest.raises(ValueError, match="100/m"):
        RateLimit.parse(text)
