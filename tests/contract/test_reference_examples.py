"""What Voucherify documents is accepted: the example bodies of its reference page.

`OrdersApi.md` (the official SDK's reference page) shows one request body for each of
create, update, export and import. Each is sent through the typed client to both doors of
the emulator, and the imported orders are read back with the amounts Voucherify computes:
item `amount` = price x quantity, the price coming from the item, its `product`/`sku`
object, or the product or SKU the project already holds; order `amount` = the sum of the
items that have one. The OpenAPI documents' own request examples must validate against
the client's request models too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from django_voucherify_orders.client import RetryPolicy, VoucherifyClient
from django_voucherify_orders.client.schemas import (
    ExportParameters,
    OrderCreate,
    OrderImport,
    OrderUpdate,
)
from django_voucherify_orders.emulator import Emulator
from tests.contract.openapi_contract import raw_document, validate_request

# A byte copy of shared/voucherify/OrdersApi.md, kept beside the OpenAPI documents.
REFERENCE_PAGE = Path(__file__).resolve().parent / "openapi" / "OrdersApi.md"
APP_ID, SECRET = "test-app-id", "test-secret-key"

# Ids of things the import example expects the project to hold already (orderImport16).
HELD_CUSTOMERS = ("cust_LMY4ZylSdUYB1J4tzqNcl5VV", "cust_Vzck5i8U3OhcEUFY6MKhN9Rv")
HELD_PRODUCT = {"id": "prod_0b72b0bd64d198e3ae", "source_id": "lamp_1", "price": 4500}
HELD_SKU = {"id": "sku_0b1621b319d248b79f", "source_id": "lamp_1_red", "price": 5000}


def reference_bodies() -> dict[str, Any]:
    """The example bodies of the page, by variable name (`orders_create_request_body`...)."""
    text = REFERENCE_PAGE.read_text(encoding="utf-8")
    found = re.findall(r"^\s*(orders_\w+) = (\{.*\}|\[.*\]) # ", text, flags=re.MULTILINE)
    return {name: json.loads(value) for name, value in found}


BODIES = reference_bodies()


def test_the_page_has_the_four_example_bodies() -> None:
    assert set(BODIES) == {
        "orders_create_request_body",
        "orders_update_request_body",
        "orders_export_create_request_body",
        "orders_import_create_request_body_item",
    }
    assert len(BODIES["orders_import_create_request_body_item"]) == 7


@pytest.fixture(params=["responses", "http"])
def door(request: pytest.FixtureRequest) -> Iterator[tuple[VoucherifyClient, Emulator]]:
    """The typed client, talking to the emulator through one of its two doors."""
    emulator = Emulator(APP_ID, SECRET, rate_limit_per_minute=None)
    emulator.add_customer(id=HELD_CUSTOMERS[0], source_id="held-1")
    emulator.add_customer(id=HELD_CUSTOMERS[1], source_id="held-2")
    emulator.add_product(**HELD_PRODUCT)
    emulator.add_sku(product_id=HELD_PRODUCT["id"], **HELD_SKU)
    retry = RetryPolicy(max_retries=0)
    if request.param == "responses":
        with emulator.mock():
            yield VoucherifyClient(APP_ID, SECRET, retry=retry), emulator
    else:
        with emulator.serve() as server:
            yield VoucherifyClient(APP_ID, SECRET, server.url, retry=retry), emulator


def _amounts(order: Any) -> tuple[int | None, list[int | None]]:
    return order.amount, [item.amount for item in order.items]


def test_every_reference_example_goes_through_the_client_to_the_emulator(door) -> None:
    client, emulator = door

    created = client.create_order(BODIES["orders_create_request_body"])
    assert created.status == "PAID" and _amounts(created) == (20000, [20000])
    assert created.customer is not None

    updated = client.update_order(created.id, BODIES["orders_update_request_body"])
    assert updated.status == "CANCELED" and updated.amount == 20000

    action = client.wait_for_async_action(
        client.import_orders(BODIES["orders_import_create_request_body_item"]), poll_interval=0
    )
    result = action.import_result
    assert result is not None
    assert (result.done_count, result.failed_count, result.failed) == (7, 0, [])

    # Read back: the amounts Voucherify computes for each documented way of giving a price.
    read = {f"orderImport{n}": client.get_order(f"orderImport{n}") for n in range(14, 21)}
    # Prices in product.price / sku.price (override: stored in the catalogue).
    assert _amounts(read["orderImport14"]) == (2 * 70000 + 1600, [140000, 1600])
    # No price at all: the SKU stored by orderImport14; vase_1 is unknown, so no amount.
    assert _amounts(read["orderImport15"]) == (4 * 1600, [6400, None])
    # Products and customers the project already holds, named by Voucherify id.
    assert _amounts(read["orderImport16"]) == (2 * 4500 + 2 * 5000, [9000, 10000])
    assert read["orderImport16"].customer_id == HELD_CUSTOMERS[0]
    assert read["orderImport16"].referrer_id == HELD_CUSTOMERS[1]
    assert _amounts(read["orderImport17"]) == (7000, [])
    assert _amounts(read["orderImport18"]) == (2900, [900, 2000])
    # Items with only an amount, or only price and quantity (refused before).
    assert _amounts(read["orderImport19"]) == (2900, [900, 2000])
    assert _amounts(read["orderImport20"]) == (2 * 900 + 3 * 2000, [1800, 6000])
    assert [read[f"orderImport{n}"].status for n in range(14, 21)] == [
        "PAID", "PAID", "FULFILLED", "CANCELED", "CREATED", "CREATED", "CREATED",
    ]  # fmt: skip
    assert read["orderImport14"].metadata == {
        "location_id": ["L1", "L2"],
        "payment_mean": ["paypal", "credit-card"],
    }
    assert emulator.get_order("orderImport14")["items"][0]["price"] == 70000

    export = client.create_order_export(**BODIES["orders_export_create_request_body"]["parameters"])
    done = client.wait_for_export(export.id, poll_interval=0)
    sink = io.BytesIO()
    client.download_export(done, sink)
    rows = list(csv.DictReader(io.StringIO(sink.getvalue().decode("utf-8"))))
    fields = BODIES["orders_export_create_request_body"]["parameters"]["fields"]
    assert list(rows[0]) == fields
    by_source = {row["source_id"]: row for row in rows}
    assert len(rows) == 8
    assert by_source["orderImport20"]["amount"] == "7800"
    assert json.loads(by_source["orderImport14"]["metadata.payment_mean"]) == [
        "paypal",
        "credit-card",
    ]


# --- the documents' own request examples against the request models --------------------------


def _document_request_examples() -> list[tuple[str, str, Any]]:
    examples = []
    for item in raw_document("orders")["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            for name, value in (media or {}).get("examples", {}).items():
                examples.append((operation["operationId"], name, value["value"]))
    return examples


DOCUMENT_EXAMPLES = _document_request_examples()


def test_the_documents_have_six_request_examples() -> None:
    assert sorted(op for op, _, _ in DOCUMENT_EXAMPLES) == [
        "create-order", "create-order", "create-order-export", "create-order-export",
        "import-orders", "update-order",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("operation", "name", "body"),
    DOCUMENT_EXAMPLES,
    ids=[f"{o}:{n}" for o, n, _ in DOCUMENT_EXAMPLES],
)
def test_document_request_example_validates_against_the_request_models(operation, name, body):
    if operation == "create-order":
        assert OrderCreate.model_validate(body).to_json() == body
    elif operation == "update-order":
        assert OrderUpdate.model_validate(body).to_json() == body
    elif operation == "import-orders":
        assert [OrderImport.model_validate(order).to_json() for order in body] == body
    else:
        assert ExportParameters.model_validate(body["parameters"]).to_json() == body["parameters"]


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("POST /v1/orders", BODIES["orders_create_request_body"]),
        ("PUT /v1/orders/ord_1", BODIES["orders_update_request_body"]),
        ("POST /v1/orders/export", BODIES["orders_export_create_request_body"]),
        ("POST /v1/orders/import", BODIES["orders_import_create_request_body_item"]),
    ],
)
def test_reference_page_bodies_match_the_patched_documents(operation, body):
    """The page and the documents agree (after VALIDATION.md's patches): neither is stale."""
    method, path = operation.split()
    headers = {"X-App-Id": APP_ID, "X-App-Token": SECRET}
    validate_request(
        requests.Request(method, f"http://127.0.0.1{path}", json=body, headers=headers).prepare()
    )


# --- the official Python SDK against the HTTP door -----------------------------------------


def test_the_official_sdk_imports_the_reference_example() -> None:
    """The SDK sends `null` for every field it wasn't given (docs/emulator.md L4)."""
    import voucherify  # the test extra installs it
    from voucherify.models.orders_import_create_request_body_item import (
        OrdersImportCreateRequestBodyItem,
    )

    emulator = Emulator(APP_ID, SECRET, rate_limit_per_minute=None)
    for customer_id in HELD_CUSTOMERS:
        emulator.add_customer(id=customer_id)
    with emulator.serve() as server:
        configuration = voucherify.Configuration(host=server.url)
        configuration.api_key["X-App-Id"] = APP_ID
        configuration.api_key["X-App-Token"] = SECRET
        with voucherify.ApiClient(configuration) as api_client:
            body = [
                OrdersImportCreateRequestBodyItem.from_dict(order)
                for order in BODIES["orders_import_create_request_body_item"]
            ]
            answer = voucherify.OrdersApi(api_client).import_orders(
                orders_import_create_request_body_item=body
            )
            emulator.finish_async()
            action = voucherify.AsyncActionsApi(api_client).get_async_action(answer.async_action_id)
    assert action.status == "DONE"
    assert emulator.get_order("orderImport20")["amount"] == 7800
    assert len(emulator.orders()) == 7
