"""Request-body and query checks that end in Voucherify-shaped 400 responses.

Messages follow the documented style, e.g. "Property .items[0].initial_quantity cannot be
lower than 1" [D-ord]: a property path from the body root, then what is wrong with it.
Unknown properties are ignored, as the real API does ("ignore unknown fields").
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

from .errors import ApiError, invalid_payload, invalid_query
from .util import parse_iso

ORDER_STATUSES = ("CREATED", "PAID", "CANCELED", "FULFILLED")
RELATED_OBJECTS = ("product", "sku")
MAX_ITEMS = 500  # "up to 500 items" [D-ord]
MAX_IMPORT = 2000  # "There is a 2000 limit of orders per one request." [D-ord]

_ORDER_INTS = ("amount", "initial_amount", "discount_amount")
_ITEM_STRINGS = ("sku_id", "product_id", "source_id")
_ITEM_AMOUNTS = ("amount", "discount_amount", "initial_amount", "price")
_CUSTOMER_STRINGS = ("name", "description", "email", "phone")
_CUSTOMER_DATES = ("birthdate", "birthday")  # format: date, YYYY-MM-DD [D-ord]


def parse_json(body: bytes, *, empty: Any = None) -> Any:
    """Decode a request body; an empty body becomes `empty` (or a 400 when that is None)."""
    if not body or not body.strip():
        if empty is not None:
            return empty
        raise invalid_payload("Request body is empty")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_payload(f"Request body is not valid JSON: {exc}") from None


def fail(path: str, problem: str) -> ApiError:
    return invalid_payload(f"Property {path or '.'} {problem}")


def check_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, "should be object")
    return value


def check_string(value: Any, path: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        raise fail(path, "should be string")


def check_int(value: Any, path: str, minimum: int) -> None:
    # bool is a subclass of int in Python, but JSON `true` is not an integer.
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(path, "should be integer")
    if value < minimum:
        raise fail(path, f"cannot be lower than {minimum}")


def check_number(value: Any, path: str, minimum: int) -> None:
    # bool is a subclass of int; NaN/Infinity aren't JSON, but Python's parser takes them.
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise fail(path, "should be number")
    if value < minimum:
        raise fail(path, f"cannot be lower than {minimum}")


def check_enum(value: Any, path: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise fail(path, f"should be equal to one of the allowed values [ {', '.join(allowed)} ]")


def check_date(value: Any, path: str) -> None:
    if parse_iso(value) is None:
        raise fail(path, "cannot be recognized as a ISO-8601 compliant date")


def _drop_nulls(value: Any, keep: tuple[str, ...] = ()) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if v is not None or k in keep}


def without_nulls(order: dict[str, Any]) -> dict[str, Any]:
    """A null is a field not given, except where null means "none" (no upsert key, no
    referrer, no address): the SDK's document (openapi.json) makes every request field
    nullable, and the official SDK sends null for each field it wasn't given (L4)."""
    out = _drop_nulls(order, keep=("source_id", "referrer_id"))
    for key in ("customer", "referrer"):
        if key in out:
            out[key] = _drop_nulls(out[key], keep=("address",))
    if isinstance(out.get("items"), list):
        items = [_drop_nulls(item) for item in out["items"]]
        for item in items:
            for key in ("product", "sku"):
                if isinstance(item, dict) and key in item:
                    item[key] = _drop_nulls(item[key])
        out["items"] = items
    return out


def validate_order(body: Any, prefix: str = "", *, allow_id: bool = True) -> dict[str, Any]:
    """Check one order body (create, update, or one import element); return it as stored."""
    order = without_nulls(check_object(body, prefix))
    if "id" in order:
        if not allow_id:
            # PUT /v1/orders/{id}: the update body is the create body without `id` [D-ord].
            raise fail(f"{prefix}.id", "is not allowed")
        check_string(order["id"], f"{prefix}.id")
    for key in ("source_id", "referrer_id"):
        if key in order:
            check_string(order[key], f"{prefix}.{key}", nullable=True)
    if "status" in order:
        check_enum(order["status"], f"{prefix}.status", ORDER_STATUSES)
    for key in _ORDER_INTS:
        if key in order:
            check_int(order[key], f"{prefix}.{key}", 0)
    if "metadata" in order:
        check_object(order["metadata"], f"{prefix}.metadata")
    if "created_at" in order:
        check_date(order["created_at"], f"{prefix}.created_at")
    for key in ("customer", "referrer"):
        if key in order:
            _validate_customer(order[key], f"{prefix}.{key}")
    if "items" in order:
        items = order["items"]
        if not isinstance(items, list):
            raise fail(f"{prefix}.items", "should be array")
        if len(items) > MAX_ITEMS:
            raise fail(
                f"{prefix}.items", f"should have at most {MAX_ITEMS} items (got {len(items)})"
            )
        for index, item in enumerate(items):
            _validate_item(item, f"{prefix}.items[{index}]")
    return order


def _validate_customer(value: Any, path: str) -> None:
    customer = check_object(value, path)
    for key in ("id", "source_id"):
        if key in customer:
            check_string(customer[key], f"{path}.{key}", nullable=key == "source_id")
    for key in _CUSTOMER_STRINGS:
        if key in customer:
            check_string(customer[key], f"{path}.{key}", nullable=True)
    for key in _CUSTOMER_DATES:
        if customer.get(key) is not None and not _is_full_date(customer[key]):
            raise fail(f"{path}.{key}", 'should match format "date" (YYYY-MM-DD)')
    if "metadata" in customer:
        check_object(customer["metadata"], f"{path}.metadata")
    if customer.get("address") is not None:
        address = check_object(customer["address"], f"{path}.address")
        for key in ("city", "state", "line_1", "line_2", "country", "postal_code"):
            if key in address:
                check_string(address[key], f"{path}.address.{key}")


def _validate_item(value: Any, path: str) -> None:
    item = check_object(value, path)
    for key in _ITEM_STRINGS:
        if key in item:
            check_string(item[key], f"{path}.{key}")
    if "related_object" in item:
        check_enum(item["related_object"], f"{path}.related_object", RELATED_OBJECTS)
    for key in ("quantity", "initial_quantity"):
        if key in item:
            check_int(item[key], f"{path}.{key}", 1)
    if "discount_quantity" in item:
        check_int(item["discount_quantity"], f"{path}.discount_quantity", 0)
    for key in _ITEM_AMOUNTS:
        if key in item:
            check_int(item[key], f"{path}.{key}", 0)
    if "metadata" in item:
        check_object(item["metadata"], f"{path}.metadata")
    for key in RELATED_OBJECTS:
        if key in item:
            _validate_catalogue_object(item[key], f"{path}.{key}", key)
    # Nothing else is required: the documents' OrderItem requires neither an identity nor a
    # price, and the reference page imports items with only an `amount`, only `price` and
    # `quantity`, or a product's price in `product.price`. (The rule "product_id, or
    # source_id + related_object" was a 2019 maintainer reply, superseded by the documents.)


def _validate_catalogue_object(value: Any, path: str, kind: str) -> None:
    """An item's `product` or `sku`: OrderItem.product / OrderItem.sku [D-ord]."""
    obj = check_object(value, path)
    for key in ("id", "source_id", "name" if kind == "product" else "sku"):
        if key in obj:
            check_string(obj[key], f"{path}.{key}")
    if "override" in obj and not isinstance(obj["override"], bool):
        raise fail(f"{path}.override", "should be boolean")
    if "price" in obj:
        check_number(obj["price"], f"{path}.price", 0)
    if "metadata" in obj:
        check_object(obj["metadata"], f"{path}.metadata")


def _is_full_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate_import(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise fail(".", "should be array")
    # An empty array is allowed: the documents set no minItems.
    if len(body) > MAX_IMPORT:
        # The error for more than 2000 orders is undocumented; this one says exactly why.
        raise fail(".", f"should have at most {MAX_IMPORT} items (got {len(body)})")
    orders = []
    for index, order in enumerate(body):
        if not isinstance(order, dict):
            raise fail(f".[{index}]", "should be object")
        # The documented import 400 names the path inside the order (".items[0]...")
        # without saying which order; we keep that form to stay faithful.
        orders.append(validate_order(order))
    return orders


def query_int(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = query.get(name)
    if not values:
        return default
    raw = values[-1]
    try:
        value = int(raw)
    except ValueError:
        raise invalid_query(f"Property .{name} should be integer") from None
    if value < low:
        raise invalid_query(f"Property .{name} cannot be lower than {low}")
    if value > high:
        raise invalid_query(f"Property .{name} cannot be greater than {high}")
    return value


def query_enum(
    query: dict[str, list[str]], name: str, default: str, allowed: tuple[str, ...]
) -> str:
    values = query.get(name)
    if not values:
        return default
    if values[-1] not in allowed:
        raise invalid_query(
            f"Property .{name} should be equal to one of the allowed values "
            f"[ {', '.join(allowed)} ]"
        )
    return values[-1]
