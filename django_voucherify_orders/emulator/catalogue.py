"""The project's products and SKUs, as far as orders need them: to price an item.

An order item names what was sold by Voucherify id (`product_id`, `sku_id`), by the
merchant's `source_id` with `related_object`, or by a nested `product`/`sku` object. With
`override: true` the nested object is stored: "If the product does not exist, it will be
created with a source_id; if it does exist, the provided values for the name, price, and
metadata will replace those already stored" - only on "endpoints that create an order"
[D-ord]. An item without a price takes the stored SKU's price, else the product's.
Not locked: State locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .util import random_alnum

_STORED = {"product": ("name", "price", "metadata"), "sku": ("sku", "price", "metadata")}


@dataclass
class _Kind:
    prefix: str
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_source_id: dict[str, str] = field(default_factory=dict)

    def find(self, id_: Any, source_id: Any) -> dict[str, Any] | None:
        if isinstance(id_, str) and id_ in self.by_id:
            return self.by_id[id_]
        if isinstance(source_id, str) and source_id in self.by_source_id:
            return self.by_id[self.by_source_id[source_id]]
        return None

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry.setdefault("id", f"{self.prefix}_{random_alnum(18)}")
        self.by_id[entry["id"]] = entry
        if entry.get("source_id") is not None:
            self.by_source_id[entry["source_id"]] = entry["id"]
        return entry


class Catalogue:
    def __init__(self) -> None:
        self.products = _Kind("prod")
        self.skus = _Kind("sku")

    def add_product(self, **fields: Any) -> dict[str, Any]:
        return dict(self.products.add({k: v for k, v in fields.items() if v is not None}))

    def add_sku(self, **fields: Any) -> dict[str, Any]:
        return dict(self.skus.add({k: v for k, v in fields.items() if v is not None}))

    def resolve(self, item: dict[str, Any], *, store: bool) -> dict[str, Any]:
        """What the catalogue adds to one validated item: ids and the unit price, if known.

        `store`: the endpoint creates orders, so `override: true` objects are written.
        """
        related = item.get("related_object")
        product_ref = item.get("product") or {}
        sku_ref = item.get("sku") or {}
        product_source = product_ref.get("source_id")
        if product_source is None and related == "product":
            product_source = item.get("source_id")
        sku_source = sku_ref.get("source_id")
        if sku_source is None and related == "sku":
            sku_source = item.get("source_id")

        product = self._entry(
            self.products, "product", item.get("product_id") or product_ref.get("id"),
            product_source, product_ref, store,
        )  # fmt: skip
        sku = self._entry(
            self.skus, "sku", item.get("sku_id") or sku_ref.get("id"), sku_source, sku_ref, store
        )
        if sku is not None and product is not None:
            sku.setdefault("product_id", product["id"])

        resolved: dict[str, Any] = {}
        if product is not None:
            resolved["product_id"] = product["id"]
        elif sku is not None and "product_id" in sku:
            resolved["product_id"] = sku["product_id"]
        if sku is not None:
            resolved["sku_id"] = sku["id"]
        # The most specific price wins: the item's, the SKU's, then the product's.
        for price in (
            item.get("price"),
            sku_ref.get("price"),
            None if sku is None else sku.get("price"),
            product_ref.get("price"),
            None if product is None else product.get("price"),
        ):
            if price is not None:
                resolved["price"] = round(price)  # product/sku prices are numbers [D-ord]
                break
        return resolved

    @staticmethod
    def _entry(
        kind: _Kind,
        name: str,
        id_: Any,
        source_id: Any,
        given: dict[str, Any],
        store: bool,
    ) -> dict[str, Any] | None:
        entry = kind.find(id_, source_id)
        if not (store and given.get("override") is True):
            return entry
        if entry is None:
            if source_id is None:
                return None  # "created with a source_id": nothing to create it by
            entry = kind.add({"source_id": source_id})
        for key in _STORED[name]:
            if key in given:
                entry[key] = given[key]
        return entry
