"""Orders and customers in memory, with Voucherify's upsert rules. Not locked: State locks."""

from __future__ import annotations

import itertools
from typing import Any

from .catalogue import Catalogue
from .errors import ApiError, not_found
from .orders import ORDER_INPUT_FIELDS, OrderRecord
from .util import new_customer_id, new_order_id, normalize_iso

_CUSTOMER_FIELDS = (
    "source_id",
    "name",
    "description",
    "email",
    "phone",
    "birthday",
    "birthdate",
    "address",
    "metadata",
)


class ImportConflict(Exception):
    """An imported order that may not be written; its message is the `failed[].reason`."""


class OrderStore:
    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.by_source_id: dict[str, str] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.customers_by_source_id: dict[str, str] = {}
        self.catalogue = Catalogue()
        self._seq = itertools.count()

    def add_customer(self, **fields: Any) -> dict[str, Any]:
        """A customer the project already holds (test set-up); ``id`` is kept if given."""
        customer = {"id": fields.pop("id", None) or new_customer_id(), "object": "customer"}
        self.customers[customer["id"]] = customer
        self._set_customer_fields(customer, fields)
        return dict(customer)

    def find(self, id_or_source_id: str) -> OrderRecord | None:
        """`orderId` paths accept a Voucherify id or a source id [D-ord]; the id is tried first."""
        return self.orders.get(id_or_source_id) or self.find_by_source_id(id_or_source_id)

    def upsert(self, body: dict[str, Any], now: str, *, existing: str = "upsert") -> OrderRecord:
        """POST /v1/orders semantics: update the order named by `id` or `source_id`, else create.

        `id` wins over `source_id`, as the docs say for customers. An `id` that names no
        order is a 404: Voucherify assigns ids, so a client cannot choose one (undocumented).
        existing="fail" is the import policy: an order that already exists is not written.
        """
        record: OrderRecord | None = None
        if "id" in body:
            record = self.orders.get(body["id"])
            if record is None:
                raise not_found("order", body["id"])
        elif body.get("source_id") is not None:
            record = self.find_by_source_id(body["source_id"])
        if record is not None and existing == "fail":
            label = record.source_id if record.source_id is not None else record.id
            key = "source_id" if record.source_id is not None else "id"
            raise ImportConflict(f"Order with {key} {label} already exists")
        if record is None:
            new = OrderRecord(id=new_order_id(), seq=next(self._seq), created_at=now)
            return self._write(new, body, now, created=True)
        return self._write(record, body, now, created=False)

    def update(self, record: OrderRecord, body: dict[str, Any], now: str) -> OrderRecord:
        """PUT: "Any parameters not provided will be left unchanged." [D-ord]

        Product `override` "works only for endpoints that create an order" [D-ord], so an
        update prices its items from the catalogue but doesn't write to it.
        """
        return self._write(record, body, now, created=False, creating_endpoint=False)

    def find_by_source_id(self, source_id: str) -> OrderRecord | None:
        order_id = self.by_source_id.get(source_id)
        return self.orders.get(order_id) if order_id else None

    def _write(
        self,
        record: OrderRecord,
        body: dict[str, Any],
        now: str,
        *,
        created: bool,
        creating_endpoint: bool = True,
    ) -> OrderRecord:
        new_source_id = body.get("source_id", record.source_id)
        if new_source_id is not None:
            owner = self.by_source_id.get(new_source_id)
            if owner is not None and owner != record.id:
                # Reachable by PUT, or POST with `id` plus another order's source_id.
                raise ApiError(
                    409,
                    "duplicate_found",
                    "Duplicated resource found",
                    f"Order with source_id {new_source_id} already exists",
                    resource_id=owner,
                    resource_type="order",
                )
        # Resolve customers before changing anything, so a 404 leaves the order untouched.
        customer_id = record.customer_id
        if "customer" in body:
            customer_id = self._upsert_customer(body["customer"])
        referrer_id = record.referrer_id
        if "referrer" in body:
            referrer_id = self._upsert_customer(body["referrer"])
        elif "referrer_id" in body:
            referrer_id = body["referrer_id"]
            if referrer_id is not None and referrer_id not in self.customers:
                raise not_found("customer", referrer_id)

        old_source_id = record.source_id
        if "items" in body:
            record.resolved = [
                self.catalogue.resolve(item, store=creating_endpoint) for item in body["items"]
            ]
        # Upsert and update replace `items` and `metadata` when sent and keep them when not:
        # the docs are silent on merge vs replace; replacing matches "set the values passed".
        for key in ORDER_INPUT_FIELDS:
            if key in body:
                record.inputs[key] = body[key]
        if "created_at" in body:
            record.created_at = normalize_iso(body["created_at"])
        if not created:
            record.updated_at = now
        record.customer_id = customer_id
        record.referrer_id = referrer_id

        if old_source_id is not None and old_source_id != record.source_id:
            del self.by_source_id[old_source_id]
        if record.source_id is not None:
            self.by_source_id[record.source_id] = record.id
        self.orders[record.id] = record
        record.refresh()
        return record

    def _upsert_customer(self, body: dict[str, Any]) -> str:
        """Customers are upserted by id or source_id; "if you also pass a customer ID ...,
        the source ID will be ignored" [D-ord]. An unknown id is a 404 (undocumented)."""
        customer: dict[str, Any] | None = None
        if "id" in body:
            customer = self.customers.get(body["id"])
            if customer is None:
                raise not_found("customer", body["id"])
        elif body.get("source_id") is not None:
            customer_id = self.customers_by_source_id.get(body["source_id"])
            customer = self.customers.get(customer_id) if customer_id else None
        if customer is None:
            customer = {"id": new_customer_id(), "object": "customer"}
            self.customers[customer["id"]] = customer
        fields = {k: v for k, v in body.items() if not (k == "source_id" and "id" in body)}
        self._set_customer_fields(customer, fields)
        return str(customer["id"])

    def _set_customer_fields(self, customer: dict[str, Any], fields: dict[str, Any]) -> None:
        for key in _CUSTOMER_FIELDS:
            if key in fields:
                customer[key] = fields[key]
        if customer.get("source_id") is not None:
            self.customers_by_source_id[customer["source_id"]] = customer["id"]
