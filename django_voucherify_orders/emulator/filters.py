"""Order export filters: parse `parameters.filters` and test an order against them.

Shape [D-ord]: {"junction": "and"|"or", "<field>": {"conditions": {"$op": [values] | value}}}.
Conditions inside one field must all hold (so `$after` + `$before` make a range); fields
are combined by the top-level junction. The docs do not spell this out.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .errors import invalid_payload
from .util import parse_iso

FILTER_FIELDS = (
    "status",
    "source_id",
    "amount",
    "total_amount",
    "discount_amount",
    "total_discount_amount",
    "items_discount_amount",
    "created_at",
    "updated_at",
    "customer_id",
)
DATE_FIELDS = ("created_at", "updated_at")
_METADATA = "metadata."

# The condition list of the documented 400 for a bad filter [D-ord], verbatim.
DOCUMENTED_CONDITIONS = (
    "$in, $not_in, $in_location, $not_in_location, $is, $is_days_ago, $is_days_in_future, "
    "$is_not, $has_value, $is_unknown, $contains, $not_contain, $starts_with, $ends_with, "
    "$more_than, $less_than, $more_than_ago, $less_than_ago, $more_than_future, "
    "$less_than_future, $more_than_equal, $less_than_equal, $after, $before, $count, "
    "$count_less, $count_more, $today, $tomorrow, $yesterday, $this_week, $last_week, "
    "$next_week, $this_month, $last_month, $next_month, $this_year, $next_year, $last_year, "
    "$is_day_of_month, $is_day, $is_month, $is_year, $today_md, $tomorrow_md, $yesterday_md, "
    "$this_week_md, $last_week_md, $next_week_md, $this_month_md, $last_month_md, "
    "$next_month_md, $is_days_ago_md, $is_more_days_ago_md, $is_less_days_ago_md, "
    "$is_days_in_future_md, $is_more_days_in_future_md, $is_less_days_in_future_md, "
    "$is_years_ago, $active, $failed, $in_progress, $expired, $before_start, $enabled, "
    "$disabled, $redeemed, $redeemable"
)
BAD_FILTER_DETAILS = (
    "Property .parameters.filters should match either "
    "`filters[${field}][conditions][${condition}][${index}]` or "
    "`filters[${field}][conditions][${condition}]` format and condition must be one of: "
    + DOCUMENTED_CONDITIONS
)
_DATE_OPS = ("$after", "$before")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):  # a metadata array matches when one element does
        return any(_equal(element, expected) for element in actual)
    if actual is None:
        return False
    if isinstance(actual, bool):  # metadata flags: true matches true and "true"
        return expected is actual or str(expected).lower() == str(actual).lower()
    if isinstance(actual, int | float):
        return _number(expected) == float(actual)
    return actual == expected


def _has_value(actual: Any) -> bool:
    return actual not in (None, "", [], {})


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_equal(element, expected) for element in actual)
    return isinstance(actual, str) and str(expected) in actual


def _compare(actual: Any, expected: Any, is_date: bool) -> tuple[Any, Any] | None:
    """Both sides as comparable values (datetimes for date fields), or None."""
    left: datetime | float | None
    right: datetime | float | None
    if is_date:
        left, right = parse_iso(actual), parse_iso(expected)
    else:
        left, right = _number(actual), _number(expected)
        if isinstance(actual, str):  # a numeric-looking string field is not a number
            left = None
    if left is None or right is None:
        return None
    return left, right


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "$more_than": operator.gt,
    "$less_than": operator.lt,
    "$more_than_equal": operator.ge,
    "$less_than_equal": operator.le,
    "$after": operator.gt,
    "$before": operator.lt,
}


def _ordering(op: str) -> Callable[[Any, list[Any], bool], bool]:
    def check(actual: Any, values: list[Any], is_date: bool) -> bool:
        if not values:
            return False
        pair = _compare(actual, values[0], is_date or op in _DATE_OPS)
        return pair is not None and _ORDERINGS[op](*pair)

    return check


# Each operator gets (field value, condition values as a list, is-date-field).
_OPERATORS: dict[str, Callable[[Any, list[Any], bool], bool]] = {
    "$in": lambda a, vs, _d: any(_equal(a, v) for v in vs),
    "$not_in": lambda a, vs, _d: not any(_equal(a, v) for v in vs),
    "$is": lambda a, vs, _d: bool(vs) and _equal(a, vs[0]),
    "$is_not": lambda a, vs, _d: not (vs and _equal(a, vs[0])),
    "$has_value": lambda a, _vs, _d: _has_value(a),
    "$is_unknown": lambda a, _vs, _d: not _has_value(a),
    "$contains": lambda a, vs, _d: bool(vs) and _contains(a, vs[0]),
    "$not_contain": lambda a, vs, _d: not (vs and _contains(a, vs[0])),
    "$starts_with": lambda a, vs, _d: bool(vs) and isinstance(a, str) and a.startswith(str(vs[0])),
    "$ends_with": lambda a, vs, _d: bool(vs) and isinstance(a, str) and a.endswith(str(vs[0])),
}
_OPERATORS.update({op: _ordering(op) for op in _ORDERINGS})
# The conditions the emulator evaluates, and those of them that compare (docs/emulator.md S7).
EVALUATED_CONDITIONS = frozenset(_OPERATORS)
COMPARING_CONDITIONS = frozenset(_ORDERINGS)


class Filters:
    """Parsed filters; `echo` is what the export shows back under `parameters.filters`."""

    def __init__(self, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise invalid_payload("Property .parameters.filters should be object")
        junction = raw.get("junction", "and")
        if junction not in ("and", "or"):
            raise invalid_payload(
                "Property .parameters.filters.junction should be equal to one of the allowed "
                "values [ and, or ]"
            )
        self.junction: str = junction
        self.conditions: list[tuple[str, str, list[Any]]] = []
        for name, spec in raw.items():
            if name != "junction":
                self._parse_field(name, spec)
        self.echo: dict[str, Any] = {"junction": junction}
        self.echo.update({k: v for k, v in raw.items() if k != "junction"})

    def _parse_field(self, name: str, spec: Any) -> None:
        known = name in FILTER_FIELDS or is_metadata_key(name)
        if not known or not isinstance(spec, dict):
            raise invalid_payload(BAD_FILTER_DETAILS)
        if spec in ({}, {"conditions": {}}):
            return  # the documents require no condition: a field without one filters nothing
        # {"status": {"$in": [...]}} (no `conditions`) would filter nothing: refuse it (S7).
        if not isinstance(spec.get("conditions"), dict):
            raise invalid_payload(BAD_FILTER_DETAILS)
        for op, value in spec["conditions"].items():
            if op not in _OPERATORS:
                if f"{op}," in DOCUMENTED_CONDITIONS + ",":
                    # A real condition this emulator does not evaluate: say so plainly
                    # rather than pretending the API would reject it.
                    raise invalid_payload(
                        f"Property .parameters.filters.{name}.conditions.{op}: condition {op} "
                        "is not implemented by the Voucherify emulator"
                    )
                raise invalid_payload(BAD_FILTER_DETAILS)
            values = value if isinstance(value, list) else [value]
            self._check_values(name, op, values)
            self.conditions.append((name, op, values))

    @staticmethod
    def _check_values(name: str, op: str, values: list[Any]) -> None:
        path = f"Property .parameters.filters.{name}.conditions.{op}"
        is_date = name in DATE_FIELDS or op in _DATE_OPS
        if op in _ORDERINGS:
            for value in values:
                if is_date and parse_iso(value) is None:
                    raise invalid_payload(
                        f"{path} cannot be recognized as a ISO-8601 compliant date"
                    )
                if not is_date and _number(value) is None:
                    raise invalid_payload(f"{path} should be number")

    def matches(self, view: dict[str, Any]) -> bool:
        if not self.conditions:
            return True
        by_field: dict[str, bool] = {}
        for name, op, values in self.conditions:
            result = _OPERATORS[op](field_value(view, name), values, name in DATE_FIELDS)
            by_field[name] = by_field.get(name, True) and result
        outcomes = by_field.values()
        return all(outcomes) if self.junction == "and" else any(outcomes)


def is_metadata_key(name: str) -> bool:
    """`metadata.<key>`: one metadata property, allowed in export fields and filters [D-ord]."""
    return name.startswith(_METADATA) and len(name) > len(_METADATA)


def field_value(view: dict[str, Any], name: str) -> Any:
    """An order field by export/filter name; `metadata.x` reads one metadata property."""
    if is_metadata_key(name):
        return (view.get("metadata") or {}).get(name[len(_METADATA) :])
    return view.get(name)
