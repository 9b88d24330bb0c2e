"""Every request the client sends and every response the emulator returns, errors included,
validates against Voucherify's OpenAPI documents (patched as VALIDATION.md says)."""

from __future__ import annotations

import io
from collections import Counter

import pytest
import requests

from django_voucherify_orders.client import (
    AuthenticationError,
    NotFound,
    RateLimited,
    RetryPolicy,
    ValidationError,
    VoucherifyClient,
    VoucherifyServerError,
)
from django_voucherify_orders.client.schemas import Order
from django_voucherify_orders.emulator import Emulator
from tests.contract.openapi_contract import validate_exchange, validate_response

ORDER = {
    "source_id": "contract-1",
    "status": "CREATED",
    "created_at": "2024-03-01T10:00:00Z",
    "customer": {"source_id": "cust-1", "name": "Ada", "birthdate": "1990-05-01"},
    "items": [
        {"source_id": "sku-1", "related_object": "sku", "quantity": 2, "price": 1500},
        {"product_id": "prod_1", "quantity": 1, "price": 999, "product": {"name": "Mug"}},
    ],
    "metadata": {"channel": "web", "gift": True},
}


@pytest.fixture
def checked():
    """An emulator whose every exchange is validated; yields (client, emulator, operations)."""
    emulator = Emulator(
        app_id="test-app-id", secret_key="test-secret-key", rate_limit_per_minute=None
    )
    seen: Counter[str] = Counter()
    handle = emulator.handle
    # Requests that are wrong on purpose (to get a 400) are not checked, their answers are.
    emulator.requests_are_valid = True

    def validating_handle(method, url, headers, body=b""):
        reply = handle(method, url, headers, body)
        prepared = requests.Request(method, url, headers=dict(headers), data=body or None).prepare()
        check = validate_exchange if emulator.requests_are_valid else validate_response
        route = check(prepared, reply.status, reply.headers, reply.body)
        seen[f"{route.operation_id} {reply.status}"] += 1
        return reply

    emulator.handle = validating_handle
    client = VoucherifyClient(
        "test-app-id", "test-secret-key", retry=RetryPolicy(max_retries=0), sleep=lambda s: None
    )
    with emulator.mock():
        yield client, emulator, seen


def test_every_operation_and_its_errors_match_the_documents(checked):
    client, emulator, seen = checked

    created = client.create_order(ORDER)
    client.create_order({**ORDER, "status": "PAID"})  # upsert
    client.create_order({"status": "CREATED"})  # no upsert key: a new order
    client.get_order(created.id)
    client.get_order("contract-1")
    client.update_order("contract-1", {"status": "FULFILLED", "metadata": {"channel": "pos"}})
    client.list_orders(limit=100, page=1, order="-updated_at")
    client.list_orders(limit=5, page=100)  # past the end: empty page
    list(client.iter_orders(page_size=1))

    action_id = client.import_orders(
        [
            {
                "source_id": f"hist-{n}",
                "status": "PAID",
                "items": [{"product_id": "prod_1", "quantity": 1, "price": 100}],
                "metadata": {"imported": True},
            }
            for n in range(3)
        ]
        + [{"source_id": "contract-1", "status": "PAID"}]  # exists: a per-order failure
    )
    action = client.wait_for_async_action(action_id, poll_interval=0)
    assert action.import_result.failed_count == 1

    export = client.create_order_export(
        fields=["id", "source_id", "status", "amount", "metadata", "metadata.channel"],
        order="-created_at",
        filters={
            "junction": "and",
            "status": {"conditions": {"$in": ["PAID", "FULFILLED"]}},
            "created_at": {"conditions": {"$after": ["2020-01-01T00:00:00Z"]}},
            "amount": {"conditions": {"$more_than": 0}},
        },
    )
    client.create_order_export()  # `{}` parameters: the default fields
    done = client.wait_for_export(export.id, poll_interval=0)
    client.download_export(done, io.BytesIO())

    # Errors, each in Voucherify's shape.
    with pytest.raises(NotFound):
        client.get_order("missing")
    with pytest.raises(NotFound):
        client.update_order("missing", {"status": "PAID"})
    with pytest.raises(NotFound):
        client.get_export("exp_missing")
    with pytest.raises(NotFound):
        client.get_async_action("aa_000000000000000000")
    with pytest.raises(AuthenticationError):
        client.download_export(done.result.url.split("?")[0] + "?token=bad", io.BytesIO())
    emulator.requests_are_valid = False
    with pytest.raises(ValidationError):
        client._call("POST", "/v1/orders", Order, json={"status": "SHIPPED"})
    with pytest.raises(ValidationError):
        client._call("POST", "/v1/orders/import", None, json=[{"source_id": "x", "amount": "1"}])
    with pytest.raises(ValidationError):
        client._call("POST", "/v1/orders/export", None, json={"parameters": {"order": "amount"}})
    emulator.requests_are_valid = True
    emulator.faults.script([500, 503, 429])
    with pytest.raises(VoucherifyServerError):
        client.get_order("contract-1")
    with pytest.raises(VoucherifyServerError):
        client.list_orders()
    with pytest.raises(RateLimited):
        client.create_order(ORDER)
    wrong = VoucherifyClient("test-app-id", "wrong", retry=RetryPolicy(max_retries=0))
    with pytest.raises(AuthenticationError):
        wrong.get_order("contract-1")

    operations = {key.split()[0] for key in seen}
    assert operations == {
        "create-order",
        "get-order",
        "update-order",
        "list-orders",
        "import-orders",
        "get-async-action",
        "create-order-export",
        "get-export",
        "download-export",
    }, seen
    statuses = {int(key.split()[1]) for key in seen}
    assert {200, 400, 401, 404, 429, 500, 503} <= statuses, seen
