"""Export parameters from command-line text: fields, ordering and filter expressions.

Each problem names the expression and what is wrong with it, instead of letting
Voucherify answer with a generic 400; nothing here talks to Voucherify.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from .client.schemas import (
    EXPORT_FIELDS,
    EXPORT_FILTER_FIELDS,
    ORDER_STATUSES,
    ExportParameters,
    validation_problems,
)

__all__ = [
    "DEFAULT_FIELDS",
    "EXPORT_ORDERINGS",
    "ExportInputError",
    "ExportRequest",
    "build_filters",
    "parse_fields",
    "parse_filter",
]

# "Passing an empty JSON will generate a file containing ... id, source_id, and status."
DEFAULT_FIELDS = ("id", "source_id", "status")
EXPORT_ORDERINGS = ("created_at", "-created_at", "updated_at", "-updated_at", "status", "-status")


class ExportInputError(ValueError):
    """Bad export parameters (a field, an ordering, a filter): nothing was created or sent."""


# --- parameters ---------------------------------------------------------------------------

_METADATA = "metadata."
_AMOUNT_FIELDS = frozenset(
    {"amount", "total_amount", "discount_amount", "total_discount_amount", "items_discount_amount"}
)
_DATE_FIELDS = frozenset({"created_at", "updated_at"})
_TEXT_FIELDS = frozenset({"source_id", "customer_id", "referrer_id"})
_FIELDS_HELP = ", ".join((*EXPORT_FIELDS, "metadata.<key>"))
_FILTER_FIELDS_HELP = ", ".join((*EXPORT_FILTER_FIELDS, "metadata.<key>"))


def _is_metadata_key(name: str) -> bool:
    return name.startswith(_METADATA) and len(name) > len(_METADATA)


def parse_fields(text: str) -> list[str]:
    """``"id,status, metadata.channel"`` -> ``["id", "status", "metadata.channel"]``.

    Every documented order field, ``metadata`` (the whole object as JSON) and
    ``metadata.<key>`` (one property). Repeats are dropped, the order is kept.
    """
    names = [name.strip() for name in text.split(",")]
    names = [name for name in names if name]
    if not names:
        raise ExportInputError(f"--fields {text!r} names no field; choose from {_FIELDS_HELP}")
    unknown = [name for name in names if name not in EXPORT_FIELDS and not _is_metadata_key(name)]
    if unknown:
        raise ExportInputError(
            f"--fields: unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; choose from {_FIELDS_HELP}"
        )
    return list(dict.fromkeys(names))


_EXPRESSION = re.compile(r"^\s*(?P<field>[^!=<>~]*?)\s*(?P<op>[!=<>~]+)\s*(?P<value>.*?)\s*$", re.S)
_OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
_ORDERING = {
    ">": "$more_than",
    ">=": "$more_than_equal",
    "<": "$less_than",
    "<=": "$less_than_equal",
}
_DATE_ORDERING = {">": "$after", "<": "$before"}


def parse_filter(text: str) -> tuple[str, dict[str, Any]]:
    """One filter expression -> ``(field, {"conditions": {"$operator": value}})``.

    ======================================  ===================================================
    ``status=PAID``                         ``{"$is": "PAID"}``
    ``status=PAID,FULFILLED``               ``{"$in": ["PAID", "FULFILLED"]}``
    ``status!=CANCELED`` / ``!=A,B``        ``{"$is_not": "CANCELED"}`` / ``{"$not_in": [...]}``
    ``created_at>2024-01-01``               ``{"$after": "2024-01-01T00:00:00.000Z"}`` (``<``:
                                            ``$before``; a date or ISO date-time, naive ones in
                                            Django's default time zone, sent as UTC)
    ``amount>=1000``                        ``{"$more_than_equal": 1000}`` (``>`` ``$more_than``,
                                            ``<`` ``$less_than``, ``<=`` ``$less_than_equal``;
                                            amounts in minor units, as the CSV shows them)
    ``metadata.channel=web``                ``{"$is": "web"}`` (``>`` etc. with a number)
    ======================================  ===================================================

    Raises :class:`ExportInputError` naming the expression and what is wrong with it.
    """
    match = _EXPRESSION.match(text)
    if match is None or not match["field"]:
        raise ExportInputError(
            f"filter {text!r}: expected FIELD OPERATOR VALUE such as status=PAID, "
            f"amount>=1000 or created_at>2024-01-01 (operators: {' '.join(_OPERATORS)})"
        )
    name, op, value = match["field"], match["op"], match["value"]
    if op == "==":
        op = "="
    if op not in _OPERATORS:
        raise ExportInputError(
            f"filter {text!r}: unknown operator {op!r}; use one of {' '.join(_OPERATORS)}"
        )
    if name not in EXPORT_FILTER_FIELDS and not _is_metadata_key(name):
        raise ExportInputError(
            f"filter {text!r}: unknown field {name!r}; filterable: {_FILTER_FIELDS_HELP}"
        )
    if not value:
        raise ExportInputError(f"filter {text!r}: no value after {op!r}")

    def problem(message: str) -> ExportInputError:
        return ExportInputError(f"filter {text!r}: {message}")

    if name in _DATE_FIELDS:
        if op not in _DATE_ORDERING:
            raise problem(f"{name} takes > (after) or < (before), not {op!r}")
        return name, {"conditions": {_DATE_ORDERING[op]: _rfc3339(value, problem)}}

    if op in _ORDERING:
        if name in _AMOUNT_FIELDS:
            number: int | float = _amount(value, problem)
        elif _is_metadata_key(name):
            number = _number(value, problem)
        else:
            kind = "a status" if name == "status" else "text"
            raise problem(
                f"{op!r} compares numbers and dates; {name} is {kind}: use = or != "
                "(a comma-separated list means any of them)"
            )
        return name, {"conditions": {_ORDERING[op]: number}}

    values: list[Any] = [part.strip() for part in value.split(",")]
    if any(not part for part in values):
        raise problem("empty value in the comma-separated list")
    if name == "status":
        unknown = [v for v in values if v.upper() not in ORDER_STATUSES]
        if unknown:
            raise problem(
                f"unknown status {', '.join(map(repr, unknown))}; "
                f"Voucherify's are {', '.join(ORDER_STATUSES)}"
            )
        values = [v.upper() for v in values]
    elif name in _AMOUNT_FIELDS:
        values = [_amount(v, problem) for v in values]
    values = list(dict.fromkeys(values))
    if len(values) == 1:
        return name, {"conditions": {"$is" if op == "=" else "$is_not": values[0]}}
    return name, {"conditions": {"$in" if op == "=" else "$not_in": values}}


def _amount(value: str, problem: Callable[[str], ExportInputError]) -> int:
    try:
        amount = int(value)
    except ValueError:
        raise problem(
            f"{value!r} is not an amount: use whole minor units (1999 for 19.99)"
        ) from None
    if amount < 0:
        raise problem(f"{value!r}: amounts are never negative")
    return amount


def _number(value: str, problem: Callable[[str], ExportInputError]) -> int | float:
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(value)
    raise problem(f"{value!r} is not a number ('>', '<' and friends compare numbers)")


def _rfc3339(value: str, problem: Callable[[str], ExportInputError]) -> str:
    """``2024-01-01`` (midnight) or an ISO-8601 date-time -> ``2024-01-01T00:00:00.000Z``.

    Naive values are in Django's default time zone (``TIME_ZONE``); the result is UTC.
    """
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise problem(
            f"{value!r} is not a date: use YYYY-MM-DD or an ISO-8601 date-time such as "
            "2024-01-31T18:00:00+01:00"
        ) from None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_default_timezone())
    utc = parsed.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def build_filters(expressions: Iterable[str], junction: str | None = None) -> dict[str, Any] | None:
    """Filter expressions merged into Voucherify's ``filters`` object; None without any.

    Conditions on one field must all hold (``created_at>A`` and ``created_at<B`` make a
    range); ``junction`` (``and``, the default, or ``or``) combines the fields.
    """
    if junction not in (None, "and", "or"):
        raise ExportInputError(f"--junction must be 'and' or 'or', not {junction!r}")
    filters: dict[str, Any] = {}
    for text in expressions:
        name, spec = parse_filter(text)
        conditions = filters.setdefault(name, {"conditions": {}})["conditions"]
        for operator, value in spec["conditions"].items():
            if operator in conditions:
                raise ExportInputError(
                    f"filter {text!r}: {name} already has a {operator} condition from an "
                    "earlier --filter; a comma-separated list means any of several values"
                )
            conditions[operator] = value
    if not filters:
        return None
    return {"junction": junction or "and", **filters}


@dataclass(frozen=True)
class ExportRequest:
    """What to export: ``None`` leaves the choice to Voucherify (id, source_id, status;
    ``-created_at``; every order)."""

    fields: tuple[str, ...] | None = None
    order: str | None = None
    filters: dict[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(parse_fields(",".join(self.fields))))
        if self.order is not None and self.order not in EXPORT_ORDERINGS:
            raise ExportInputError(
                f"--order {self.order!r}: choose from {', '.join(EXPORT_ORDERINGS)}"
            )
        try:  # the client's own request model has the last word
            ExportParameters.model_validate(self.to_json())
        except ValueError as exc:  # pydantic's ValidationError
            problems = "; ".join(f"{f}: {m}" for f, m in validation_problems(exc))  # type: ignore[arg-type]
            raise ExportInputError(f"invalid export parameters: {problems}") from None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.fields is not None:
            data["fields"] = list(self.fields)
        if self.order is not None:
            data["order"] = self.order
        if self.filters is not None:
            data["filters"] = self.filters
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRequest:
        fields = data.get("fields")
        return cls(
            fields=tuple(fields) if fields is not None else None,
            order=data.get("order"),
            filters=data.get("filters"),
        )

    @property
    def columns(self) -> tuple[str, ...]:
        return self.fields or DEFAULT_FIELDS
