"""How a stored order looks through the API (OrderCalculated, API-NOTES 5.6), and its sorting.

The store keeps what clients sent; everything derived (amounts, item objects, customer
references) is computed here, so an upsert that changes items recomputes the totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Order fields a client may send and the store keeps (OrderBase + create extras).
ORDER_INPUT_FIELDS = (
    "source_id",
    "status",
    "amount",
    "initial_amount",
    "discount_amount",
    "items",
    "metadata",
)
_ITEM_FIELDS = (
    "sku_id",
    "product_id",
    "related_object",
    "source_id",
    "quantity",
    "discount_quantity",
    "initial_quantity",
    "amount",
    "discount_amount",
    "initial_amount",
    "price",
)
_ZERO_OMITTED = ("discount_amount", "discount_quantity")


@dataclass
class OrderRecord:
    id: str
    seq: int  # insertion sequence: the tiebreak that keeps same-millisecond orders stable
    created_at: str
    updated_at: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    customer_id: str | None = None
    referrer_id: str | None = None
    # Per item, what the catalogue knew when the items were written (ids, unit price):
    # an order keeps the price it was sold at when the product's price changes later.
    resolved: list[dict[str, Any]] = field(default_factory=list)
    view: dict[str, Any] = field(default_factory=dict)  # replaced on change, never mutated

    @property
    def source_id(self) -> str | None:
        return self.inputs.get("source_id")

    def refresh(self) -> None:
        self.view = render_order(self)


def render_item(item: dict[str, Any], resolved: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"object": "order_item"}
    for key in _ITEM_FIELDS:
        if key in item and not (key in _ZERO_OMITTED and item[key] == 0):
            out[key] = item[key]
    for key, value in (resolved or {}).items():
        out.setdefault(key, value)  # what was sent wins over what the catalogue knows
    if "amount" not in out and "price" in out and "quantity" in item:
        out["amount"] = out["price"] * item["quantity"]  # "price * quantity" [D-ord]
    if "amount" in out:
        out["subtotal_amount"] = out["amount"] - out.get("discount_amount", 0)
    for key in ("product", "sku"):
        if key in item:
            # `override` is an instruction to the product catalogue, not part of the item.
            out[key] = {k: v for k, v in item[key].items() if k != "override"}
    if "metadata" in item:
        out["metadata"] = item["metadata"]
    return out


def render_order(record: OrderRecord) -> dict[str, Any]:
    inputs = record.inputs
    sent = inputs.get("items", [])
    resolved = record.resolved or [{} for _ in sent]
    items = [render_item(item, known) for item, known in zip(sent, resolved, strict=True)]
    amount = inputs.get("amount")
    if amount is None:
        item_amounts = [item["amount"] for item in items if "amount" in item]
        # No items and no amount: the API leaves amount out rather than inventing 0.
        amount = sum(item_amounts) if item_amounts else None
    discount = inputs.get("discount_amount", 0)
    items_discount = sum(item.get("discount_amount", 0) for item in items)
    total_discount = discount + items_discount

    view: dict[str, Any] = {
        "id": record.id,
        "source_id": inputs.get("source_id"),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "status": inputs.get("status", "CREATED"),  # the SDK's live test expects CREATED
    }
    if amount is not None:
        view["amount"] = amount
        view["initial_amount"] = inputs.get("initial_amount", amount)
    elif "initial_amount" in inputs:
        view["initial_amount"] = inputs["initial_amount"]
    # Zero discount fields are omitted, as in every documented example.
    if discount:
        view["discount_amount"] = discount
    if items_discount:
        view["items_discount_amount"] = items_discount
    if total_discount:
        view["total_discount_amount"] = total_discount
    if amount is not None:
        view["total_amount"] = amount - total_discount
    view["items"] = items
    view["metadata"] = inputs.get("metadata", {})
    # customer/referrer are left out, not null: the documents do not allow null there.
    if record.customer_id:
        view["customer"] = {"id": record.customer_id, "object": "customer"}
    if record.referrer_id:
        view["referrer"] = {"id": record.referrer_id, "object": "customer"}
    view["customer_id"] = record.customer_id
    view["referrer_id"] = record.referrer_id
    view["object"] = "order"
    return view


def sort_records(records: list[OrderRecord], order: str) -> list[OrderRecord]:
    """Sort by `created_at`, `updated_at` or `status`; a leading dash means descending.

    Timestamps share one fixed UTC format, so string order is time order. An order never
    updated sorts by its created_at under `updated_at` (undocumented; "last change" is the
    least surprising reading). The insertion sequence breaks ties in the same direction.
    """
    descending = order.startswith("-")
    key_name = order.lstrip("-")

    def key(record: OrderRecord) -> tuple[str, int]:
        if key_name == "updated_at":
            return (record.updated_at or record.created_at, record.seq)
        if key_name == "status":
            return (record.view["status"], record.seq)
        return (record.created_at, record.seq)

    return sorted(records, key=key, reverse=descending)
