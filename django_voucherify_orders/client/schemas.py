"""Pydantic models of every Voucherify request and response body the client uses.

Request models forbid unknown fields, so a misspelt field fails here, naming the
field, instead of being silently ignored by Voucherify. Response models allow
unknown fields: Voucherify adds fields over time ("your integration should ignore
unknown fields"). Amounts are integers in the currency's minor units.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

__all__ = [
    "EXPORT_FIELDS",
    "EXPORT_FILTER_FIELDS",
    "FILTER_OPERATORS",
    "ORDER_STATUSES",
    "AsyncAction",
    "CustomerAddress",
    "CustomerInput",
    "CustomerRef",
    "Export",
    "ExportParameters",
    "ExportResult",
    "ImportFailure",
    "Order",
    "OrderCreate",
    "OrderImport",
    "OrderItem",
    "OrderItemInput",
    "OrderUpdate",
    "OrdersImportResult",
    "OrdersPage",
    "ProductInput",
    "SkuInput",
]

ORDER_STATUSES = ("CREATED", "PAID", "CANCELED", "FULFILLED")
OrderStatus = Literal["CREATED", "PAID", "CANCELED", "FULFILLED"]
ListOrdering = Literal["created_at", "-created_at", "updated_at", "-updated_at"]
ExportOrdering = Literal[
    "created_at", "-created_at", "updated_at", "-updated_at", "status", "-status"
]
MAX_ORDER_ITEMS = 500

# Minor units: never negative, always a JSON integer (20000.0 and True are rejected).
Amount = Annotated[StrictInt, Field(ge=0)]
Quantity = Annotated[StrictInt, Field(ge=1)]
# A product's or SKU's price is a JSON number in the documents (an item's price is an
# integer): an int stays an int on the wire; text, booleans and NaN are refused.
CataloguePrice = (
    Annotated[StrictInt, Field(ge=0)] | Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
)
Metadata = dict[str, Any]


def validation_problems(exc: ValidationError, limit: int = 10) -> list[tuple[str, str]]:
    """pydantic's errors as short ``(field path, message)`` pairs, without the input values."""
    problems = []
    for error in exc.errors()[:limit]:
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append((field, error["msg"].removeprefix("Value error, ")))
    return problems


def _check_metadata(value: Metadata | None) -> Metadata | None:
    """Metadata must survive a JSON round trip: no Decimals, dates, sets or NaN."""
    if value is None:
        return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    _json: dict[str, Any] | None = PrivateAttr(default=None)

    def to_json(self) -> dict[str, Any]:
        """The body as sent: ``None`` fields left out, datetimes in RFC 3339.

        Computed once (the model is frozen): an import hashes and sends the same body.
        Treat the returned dict as read-only.
        """
        if self._json is None:
            self._json = self.model_dump(mode="json", exclude_none=True)
        return self._json


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- requests ---------------------------------------------------------------------------


class ProductInput(_Request):
    id: StrictStr | None = None
    source_id: StrictStr | None = None
    override: StrictBool | None = None
    name: StrictStr | None = None
    price: CataloguePrice | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class SkuInput(_Request):
    id: StrictStr | None = None
    source_id: StrictStr | None = None
    override: StrictBool | None = None
    sku: StrictStr | None = None
    price: CataloguePrice | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class OrderItemInput(_Request):
    """One order line. Nothing is required, as in the documents' ``OrderItem``.

    An item may name a product or SKU (by Voucherify id, or ``source_id`` with
    ``related_object``), carry its price in ``price``, ``product.price`` or ``sku.price``,
    give only an ``amount``, or none of these for a product Voucherify already holds:
    Voucherify computes ``amount`` (price x quantity) where it can.
    """

    sku_id: StrictStr | None = None
    product_id: StrictStr | None = None
    related_object: Literal["product", "sku"] | None = None
    source_id: StrictStr | None = None
    quantity: Quantity | None = None
    discount_quantity: Annotated[StrictInt, Field(ge=0)] | None = None
    initial_quantity: Quantity | None = None
    amount: Amount | None = None
    discount_amount: Amount | None = None
    initial_amount: Amount | None = None
    price: Amount | None = None
    product: ProductInput | None = None
    sku: SkuInput | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


class CustomerAddress(_Request):
    city: StrictStr | None = None
    state: StrictStr | None = None
    line_1: StrictStr | None = None
    line_2: StrictStr | None = None
    country: StrictStr | None = None
    postal_code: StrictStr | None = None


class CustomerInput(_Request):
    """A customer is upserted by ``id`` or ``source_id`` (``id`` wins when both are given)."""

    id: StrictStr | None = None
    source_id: StrictStr | None = None
    name: StrictStr | None = None
    description: StrictStr | None = None
    email: StrictStr | None = None
    phone: StrictStr | None = None
    birthdate: date | None = None
    birthday: date | None = None  # deprecated in the documents for birthdate; still accepted
    address: CustomerAddress | None = None
    metadata: Metadata | None = None

    _metadata = field_validator("metadata")(_check_metadata)


# Top-level order fields that Voucherify's documents (docs-openapi) let a request set to
# null, meaning "none". The others are not nullable: clear them with 0, {} or [].
CLEARABLE_WITH_NULL = ("referrer_id",)


class _OrderFields(_Request):
    source_id: StrictStr | None = None
    status: OrderStatus | None = None
    amount: Amount | None = None
    initial_amount: Amount | None = None
    discount_amount: Amount | None = None
    items: Annotated[list[OrderItemInput], Field(max_length=MAX_ORDER_ITEMS)] | None = None
    metadata: Metadata | None = None
    referrer_id: StrictStr | None = None
    customer: CustomerInput | None = None
    referrer: CustomerInput | None = None

    _metadata = field_validator("metadata")(_check_metadata)

    def to_json(self) -> dict[str, Any]:
        """As :meth:`_Request.to_json`, but a ``referrer_id`` given as ``None`` is sent as
        null: the documents make it nullable, and null is how an update clears it (a field
        left out is left unchanged). Only when given: ``OrderCreate()`` sends no key."""
        body = super().to_json()
        for name in CLEARABLE_WITH_NULL:
            if name in self.model_fields_set and getattr(self, name) is None:
                body[name] = None
        return body


class OrderCreate(_OrderFields):
    """Body of POST /v1/orders. With ``id`` or ``source_id`` it is an upsert."""

    id: StrictStr | None = None
    created_at: AwareDatetime | None = None


class OrderUpdate(_OrderFields):
    """Body of PUT /v1/orders/{id}: only the fields given are changed."""

    created_at: AwareDatetime | None = None


class OrderImport(_OrderFields):
    """One element of POST /v1/orders/import.

    ``created_at`` is not in the current documentation's import schema (imported
    orders get the import time), but the official SDK still sends it; it is kept
    optional here and left out when unset. ``source_id`` is optional, as documented;
    the mapper always sets it, so the shop's imports can be matched again.
    """

    id: StrictStr | None = None
    created_at: AwareDatetime | None = None


def _is_export_field(name: str) -> bool:
    return name in EXPORT_FIELDS or (name.startswith("metadata.") and len(name) > len("metadata."))


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
EXPORT_FILTER_FIELDS = (
    "created_at",
    "updated_at",
    "status",
    "source_id",
    "amount",
    "total_amount",
    "discount_amount",
    "total_discount_amount",
    "items_discount_amount",
    # Not in ExportOrderFilters' property list, which allows any further key; the
    # exported columns customer_id and referrer_id are the ones a shop filters on.
    "customer_id",
    "referrer_id",
)
FILTER_OPERATORS = (
    "$in", "$not_in", "$is", "$is_days_ago", "$is_days_in_future", "$is_not", "$has_value",
    "$is_unknown", "$contains", "$not_contain", "$starts_with", "$ends_with", "$more_than",
    "$less_than", "$more_than_ago", "$less_than_ago", "$more_than_future", "$less_than_future",
    "$more_than_equal", "$less_than_equal", "$after", "$before", "$count", "$count_less",
    "$count_more",
)  # fmt: skip


class ExportParameters(_Request):
    """``parameters`` of an orders export; all optional (the default is id, source_id, status)."""

    order: ExportOrdering | None = None
    fields: list[StrictStr] | None = None
    filters: dict[str, Any] | None = None

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: list[str] | None) -> list[str] | None:
        unknown = [name for name in value or () if not _is_export_field(name)]
        if unknown:
            allowed = ", ".join((*EXPORT_FIELDS, "metadata.<key>"))
            raise ValueError(f"unknown export field(s) {', '.join(unknown)}; allowed: {allowed}")
        return value

    @field_validator("filters")
    @classmethod
    def _well_formed_filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name, spec in (value or {}).items():
            if name == "junction":
                if spec not in ("and", "or"):
                    raise ValueError(f"filters.junction must be 'and' or 'or', not {spec!r}")
                continue
            if name not in EXPORT_FILTER_FIELDS and not name.startswith("metadata."):
                raise ValueError(f"filters.{name}: cannot filter on this field")
            conditions = spec.get("conditions") if isinstance(spec, dict) else None
            if not isinstance(conditions, dict) or not conditions:
                raise ValueError(f"filters.{name} must be {{'conditions': {{'$operator': value}}}}")
            for operator in conditions:
                if operator not in FILTER_OPERATORS:
                    raise ValueError(f"filters.{name}: unknown condition {operator!r}")
        return value


# --- responses --------------------------------------------------------------------------


class CustomerRef(_Response):
    id: str
    object: str = "customer"


class OrderItem(_Response):
    object: str = "order_item"
    id: str | None = None
    sku_id: str | None = None
    product_id: str | None = None
    related_object: str | None = None
    source_id: str | None = None
    quantity: int | None = None
    amount: int | None = None
    discount_amount: int | None = None
    initial_amount: int | None = None
    price: int | None = None
    subtotal_amount: int | None = None
    product: dict[str, Any] | None = None
    sku: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Order(_Response):
    """An order as Voucherify returns it (create, get, update, list)."""

    id: str
    source_id: str | None = None
    # A plain string, not the enum: a status Voucherify adds later must not break reads.
    status: str | None = None
    amount: int | None = None
    initial_amount: int | None = None
    discount_amount: int | None = None
    items_discount_amount: int | None = None
    total_discount_amount: int | None = None
    total_amount: int | None = None
    applied_discount_amount: int | None = None
    items_applied_discount_amount: int | None = None
    total_applied_discount_amount: int | None = None
    items: list[OrderItem] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    object: str = "order"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    customer_id: str | None = None
    referrer_id: str | None = None
    customer: CustomerRef | None = None
    referrer: CustomerRef | None = None
    redemptions: dict[str, Any] | None = None


class OrdersPage(_Response):
    object: str = "list"
    data_ref: str = "orders"
    orders: list[Order]
    total: int


class ImportFailure(_Response):
    source_id: str | None = None
    reason: str | None = None


class OrdersImportResult(_Response):
    """``result`` of a finished ORDERS.IMPORT async action."""

    message: str | None = None
    failed: list[ImportFailure] = Field(default_factory=list)
    done_count: int = 0
    failed_count: int = 0

    @field_validator("failed", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # The schema types `failed` as one object; the docs and the API return an array.
        if isinstance(value, dict):
            return [value]
        return value or []


class AsyncAction(_Response):
    id: str
    type: str | None = None
    status: str
    operation_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    request_id: str | None = None
    processing_time: int | None = None
    progress: int | None = None
    object: str = "async_action"
    result: dict[str, Any] | None = None

    FINISHED_STATUSES: ClassVar[frozenset[str]] = frozenset({"DONE", "FAILED"})

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def import_result(self) -> OrdersImportResult | None:
        """The parsed result of an ``ORDERS.IMPORT`` action, once it has one."""
        if self.result is None:
            return None
        return OrdersImportResult.model_validate(self.result)


class ExportResult(_Response):
    url: str


class Export(_Response):
    id: str
    object: str = "export"
    created_at: datetime | None = None
    status: str
    channel: str | None = None
    exported_object: str | None = None
    parameters: dict[str, Any] | None = None
    result: ExportResult | None = None
    user_id: str | None = None

    FINISHED_STATUSES: ClassVar[frozenset[str]] = frozenset({"DONE", "ERROR"})

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES
