"""Every field the mapper sends beside the order Voucherify holds: what ``--deep`` reports.

One order's payload (``OrderCreate.to_json()``, what a push sends) is compared with the
order a GET returns, field by field, and each difference is one short phrase:
``items differ (quantity of product MUG 2 → 3)``, ``metadata.gift differs (true → false)``.

Only what the mapper sends is compared; what Voucherify adds (its ids, ``object`` fields,
computed totals, ``updated_at``) is not ours. Where Voucherify computes or normalises what
was sent, the comparison does the same, so a pair in step reports nothing:

- an amount not sent is compared with what Voucherify computes (``expected_state``);
- zero discounts are not echoed back (``discount_amount``, ``discount_quantity``);
- times are the same moment to the millisecond (Voucherify keeps milliseconds);
- items are matched by what identifies them (``related_object`` + ``source_id``, or
  ``sku_id`` / ``product_id``), in order among equals, not by position only; of an item's
  ``product`` and ``sku`` only the keys sent are compared (``override`` is an instruction);
- a customer or referrer is kept by Voucherify as a customer of its own, and an order
  answers with a reference only. A mapper that sends the customer's Voucherify ``id`` is
  compared by that; otherwise the order's ``customer_id`` is compared with the one the
  last successful push left (``OrderSync.remote_snapshot``), and details changed here
  since that push are reported as such. With no push on record there is nothing to
  compare the reference with, and it is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .client.schemas import OrderCreate
from .echoes import ZERO_OMITTED_ITEM_FIELDS, ZERO_OMITTED_ORDER_FIELDS, same_value

__all__ = ["deep_compare"]

_IDENTITY = frozenset({"id", "source_id"})
_PARTIES = {"customer": "customer_id", "referrer": "referrer_id"}


def deep_compare(
    payload: OrderCreate,
    remote: dict[str, Any],
    *,
    last_payload: dict[str, Any] | None = None,
    snapshot: dict[str, Any] | None = None,
) -> list[str]:
    """The differences between what a push would send and Voucherify's order (JSON)."""
    from .reconcile import expected_state  # the same computed status and amount

    local = payload.to_json()
    status, amount = expected_state(payload)
    differences: list[str] = []
    if "status" not in local:
        differences += _scalar("status", status, remote.get("status"))
    if "amount" not in local and amount is not None:
        differences += _scalar("amount", amount, remote.get("amount"))
    for key, value in local.items():
        if key in _IDENTITY:
            continue  # the order was found by it
        theirs = remote.get(key)
        if key == "items":
            differences += _items(value, remote.get("items") or [])
        elif key == "metadata":
            differences += _metadata("metadata", value, theirs)
        elif key in _PARTIES:
            differences += _party(key, value, remote, last_payload, snapshot)
        elif not (key in ZERO_OMITTED_ORDER_FIELDS and _zero_omitted(value, theirs)):
            differences += _scalar(key, value, theirs)
    return differences


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _zero_omitted(ours: Any, theirs: Any) -> bool:
    return type(ours) is int and ours == 0 and theirs in (None, 0)


def _scalar(name: str, ours: Any, theirs: Any) -> list[str]:
    if same_value(ours, theirs):
        return []
    if theirs is None:
        return [f"{name} missing in Voucherify (here {_show(ours)})"]
    return [f"{name} differs ({_show(theirs)} → {_show(ours)})"]


def _metadata(prefix: str, ours: dict[str, Any], theirs: Any) -> list[str]:
    theirs = theirs if isinstance(theirs, dict) else {}
    out = []
    for key, value in ours.items():
        if key not in theirs:
            out.append(f"{prefix}.{key} missing in Voucherify (here {_show(value)})")
        elif not same_value(value, theirs[key]):
            out.append(f"{prefix}.{key} differs ({_show(theirs[key])} → {_show(value)})")
    # A push replaces the metadata sent, so a key only Voucherify has is drift too.
    out += [f"{prefix}.{key} only in Voucherify" for key in theirs if key not in ours]
    return out


# --- items --------------------------------------------------------------------------------


def _item_label(item: dict[str, Any], position: int) -> str:
    if item.get("source_id"):
        return f"{item.get('related_object') or 'item'} {item['source_id']}"
    for key, kind in (("sku_id", "sku"), ("product_id", "product")):
        if item.get(key):
            return f"{kind} {item[key]}"
    return f"item #{position + 1}"


def _keyed(items: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Items by label; a second line of the same product is ``product MUG (2nd)``."""
    out: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(items):
        label = _item_label(item, position)
        seen = sum(1 for key in out if key == label or key.startswith(f"{label} ("))
        out[label if not seen else f"{label} ({seen + 1}{_ordinal(seen + 1)})"] = item
    return out


def _ordinal(n: int) -> str:
    return {2: "nd", 3: "rd"}.get(n, "th")


def _items(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[str]:
    local, remote = _keyed(ours), _keyed(theirs)
    parts: list[str] = []
    for label, item in local.items():
        other = remote.get(label)
        if other is None:
            parts.append(f"{label} missing in Voucherify")
            continue
        parts += _item_fields(label, item, other)
    parts += [f"{label} only in Voucherify" for label in remote if label not in local]
    return [f"items differ ({'; '.join(parts)})"] if parts else []


def _item_fields(label: str, ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    parts = []
    for key, value in ours.items():
        other = theirs.get(key)
        if key in ("product", "sku") and isinstance(value, dict):
            other = other if isinstance(other, dict) else {}
            for sub, sub_value in value.items():
                if sub != "override" and not same_value(sub_value, other.get(sub)):
                    shown = _show(other.get(sub))
                    parts.append(f"{key}.{sub} of {label} {shown} → {_show(sub_value)}")
        elif key == "metadata" and isinstance(value, dict):
            parts += [f"{p} of {label}" for p in _metadata("metadata", value, other)]
        elif key in ZERO_OMITTED_ITEM_FIELDS and _zero_omitted(value, other):
            continue
        elif not same_value(value, other):
            parts.append(f"{key} of {label} {_show(other)} → {_show(value)}")
    if "metadata" not in ours and theirs.get("metadata"):  # a push sends the items whole
        parts += [f"{p} of {label}" for p in _metadata("metadata", {}, theirs["metadata"])]
    return parts


# --- customer and referrer ----------------------------------------------------------------


def _party(
    key: str,
    ours: dict[str, Any],
    remote: dict[str, Any],
    last_payload: dict[str, Any] | None,
    snapshot: dict[str, Any] | None,
) -> list[str]:
    id_field = _PARTIES[key]
    theirs = remote.get(id_field) or (remote.get(key) or {}).get("id")
    if theirs is None:
        return [f"{key} missing in Voucherify"]
    if ours.get("id"):
        if ours["id"] != theirs:
            return [f"{key} differs (Voucherify's order points at {theirs}, not {ours['id']})"]
        return []
    if last_payload is not None and last_payload.get(key) != ours:
        return [f"{key} differs (changed here since the last push)"]
    pushed = (snapshot or {}).get(id_field)
    if pushed and pushed != theirs:
        return [
            f"{key} differs (Voucherify's order points at {theirs}; the last push left {pushed})"
        ]
    return []
