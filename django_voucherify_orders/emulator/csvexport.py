"""Order export parameters (fields, order, filters) and the CSV file they produce."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from .errors import ApiError, invalid_payload
from .filters import Filters, field_value, is_metadata_key
from .orders import OrderRecord, sort_records
from .validation import check_object, check_string

EXPORT_FIELDS = (
    "id",
    "source_id",
    "created_at",
    "updated_at",
    "status",
    "amount",
    "discount_amount",
    "items_discount_amount",
    "total_discount_amount",
    "total_amount",
    "customer_id",
    "referrer_id",
    "metadata",
)
# "Passing an empty JSON will generate a file containing ... id, source_id, and status." [D-ord]
DEFAULT_FIELDS = ("id", "source_id", "status")
EXPORT_ORDERS = ("-created_at", "created_at", "-updated_at", "updated_at", "-status", "status")
DEFAULT_ORDER = "-created_at"  # what finished order exports in the docs show


@dataclass(frozen=True)
class ExportParameters:
    order: str
    fields: tuple[str, ...]
    filters: Filters

    def echo(self) -> dict[str, Any]:
        """`parameters` as the export object shows them, defaults filled in [D-exp]."""
        return {"order": self.order, "fields": list(self.fields), "filters": self.filters.echo}


def parse_parameters(raw: Any) -> ExportParameters:
    params = check_object({} if raw is None else raw, ".parameters")
    fields = params.get("fields")
    if fields is None or fields == []:
        # An empty list is read like a missing one (undocumented): a CSV needs columns.
        fields = list(DEFAULT_FIELDS)
    if not isinstance(fields, list):
        raise invalid_payload("Property .parameters.fields should be array")
    for index, name in enumerate(fields):
        check_string(name, f".parameters.fields[{index}]")
        if name not in EXPORT_FIELDS and not is_metadata_key(name):
            raise ApiError(
                400,
                "invalid_export_fields",
                "Invalid Export",
                "Unsupported field used. Allowed fields: " + ", ".join(EXPORT_FIELDS),
            )
    order = params.get("order", DEFAULT_ORDER)
    if order not in EXPORT_ORDERS:
        raise invalid_payload(
            "Property .parameters.order should be equal to one of the allowed values "
            f"[ {', '.join(EXPORT_ORDERS)} ]"
        )
    return ExportParameters(
        order=order, fields=tuple(fields), filters=Filters(params.get("filters"))
    )


def _cell(view: dict[str, Any], field: str) -> str:
    value = field_value(view, field)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # metadata objects, arrays, numbers, booleans: compact JSON.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render_csv(params: ExportParameters, records: list[OrderRecord]) -> str:
    """One header row of the requested field keys, then one row per matching order.

    The real header labels for order exports are undocumented (the voucher example uses
    display labels like "Voucher Type"); the keys are the one stable, testable choice.
    Rows end in CRLF, as RFC 4180 has it.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(params.fields)
    for record in sort_records(records, params.order):
        if params.filters.matches(record.view):
            writer.writerow([_cell(record.view, field) for field in params.fields])
    return out.getvalue()
