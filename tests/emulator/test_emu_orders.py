"""Orders: auth, create/upsert, get, update, list and request validation."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from django_voucherify_orders.emulator import Emulator

from .conftest import BASE, Api, FakeClock, item

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-App-Id": "test-app-id"},
        {"X-App-Id": "test-app-id", "X-App-Token": "wrong"},
        {"X-App-Id": "wrong", "X-App-Token": "test-secret-key"},
    ],
)
def test_wrong_or_missing_credentials_get_401(emu: Emulator, headers: dict[str, str]) -> None:
    response = Api(BASE, headers).get("/v1/orders")
    assert response.status_code == 401
    body = response.json()
    assert {k: body[k] for k in ("code", "message", "key")} == {
        "code": 401,
        "message": "Unauthorized",
        "key": "unauthorized",
    }
    assert re.fullmatch(r"v-[0-9a-f]{18}", body["request_id"])
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_auth_header_names_are_case_insensitive(emu: Emulator) -> None:
    headers = {"x-app-id": "test-app-id", "X-APP-TOKEN": "test-secret-key"}
    assert emu.handle("GET", f"{BASE}/v1/orders", headers, b"").status == 200


# -- create and upsert --------------------------------------------------------------------


def test_create_fills_server_fields(api: Api) -> None:
    response = api.post(
        "/v1/orders",
        json={
            "items": [item(quantity=3, price=500), item(product_id="prod_2", amount=200)],
            "customer": {"source_id": "cust-1", "name": "Ada"},
        },
    )
    assert response.status_code == 200
    order = response.json()
    assert re.fullmatch(r"ord_[A-Za-z0-9]{24}", order["id"])
    assert order["object"] == "order"
    assert RFC3339_MS.match(order["created_at"])
    assert order["updated_at"] is None
    assert order["status"] == "CREATED"
    assert order["source_id"] is None
    assert order["referrer_id"] is None
    assert "referrer" not in order
    assert order["metadata"] == {}
    assert [i["amount"] for i in order["items"]] == [1500, 200]
    assert all(i["object"] == "order_item" for i in order["items"])
    assert order["amount"] == order["initial_amount"] == order["total_amount"] == 1700
    for zero in ("discount_amount", "items_discount_amount", "total_discount_amount"):
        assert zero not in order
    assert re.fullmatch(r"cust_[A-Za-z0-9]{24}", order["customer_id"])
    assert order["customer"] == {"id": order["customer_id"], "object": "customer"}


def test_discounts_are_summed_and_subtracted(api: Api) -> None:
    order = api.post(
        "/v1/orders",
        json={"discount_amount": 100, "items": [item(price=1000, quantity=2, discount_amount=50)]},
    ).json()
    assert order["amount"] == 2000
    assert order["discount_amount"] == 100
    assert order["items_discount_amount"] == 50
    assert order["total_discount_amount"] == 150
    assert order["total_amount"] == 1850
    assert order["items"][0]["subtotal_amount"] == 1950


def test_order_without_items_or_amount_leaves_amount_out(api: Api) -> None:
    order = api.post("/v1/orders", json={"source_id": "empty"}).json()
    assert order["items"] == []
    assert "amount" not in order and "total_amount" not in order


def test_upsert_by_source_id_keeps_the_id_and_replaces_items(api: Api, clock: FakeClock) -> None:
    first = api.post(
        "/v1/orders",
        json={"source_id": "A-1", "status": "CREATED", "items": [item()], "metadata": {"a": 1}},
    ).json()
    clock.advance(5)
    second = api.post(
        "/v1/orders",
        json={"source_id": "A-1", "status": "PAID", "items": [item(product_id="p2", price=7)]},
    ).json()
    assert second["id"] == first["id"]
    assert second["status"] == "PAID"
    assert [i["product_id"] for i in second["items"]] == ["p2"]
    assert second["amount"] == 7
    assert second["metadata"] == {"a": 1}  # not sent: kept
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] is not None and second["updated_at"] > first["created_at"]


def test_upsert_by_id_updates_that_order(api: Api) -> None:
    first = api.post("/v1/orders", json={"source_id": "B-1", "amount": 10}).json()
    second = api.post("/v1/orders", json={"id": first["id"], "amount": 20}).json()
    assert second["id"] == first["id"]
    assert second["source_id"] == "B-1"
    assert second["amount"] == 20


def test_id_wins_over_source_id(api: Api) -> None:
    a = api.post("/v1/orders", json={"source_id": "A"}).json()
    b = api.post("/v1/orders", json={"id": a["id"], "source_id": "B", "status": "PAID"}).json()
    assert b["id"] == a["id"]
    assert b["source_id"] == "B"
    assert api.get("/v1/orders/A").status_code == 404  # the old source_id is released
    assert api.get("/v1/orders/B").json()["id"] == a["id"]


def test_unknown_id_is_404_and_taken_source_id_is_409(api: Api) -> None:
    assert api.post("/v1/orders", json={"id": "ord_nope"}).status_code == 404
    api.post("/v1/orders", json={"source_id": "one"})
    two = api.post("/v1/orders", json={"source_id": "two"}).json()
    clash = api.put(f"/v1/orders/{two['id']}", json={"source_id": "one"})
    assert clash.status_code == 409
    assert clash.json()["key"] == "duplicate_found"


def test_customer_is_upserted_by_source_id_and_referrer_is_kept(api: Api) -> None:
    one = api.post(
        "/v1/orders",
        json={"source_id": "c1", "customer": {"source_id": "ada"}, "referrer": {"name": "Bob"}},
    ).json()
    two = api.post("/v1/orders", json={"source_id": "c2", "customer": {"source_id": "ada"}}).json()
    assert one["customer_id"] == two["customer_id"]
    assert one["referrer"] == {"id": one["referrer_id"], "object": "customer"}
    by_id = api.post(
        "/v1/orders", json={"source_id": "c3", "customer": {"id": one["customer_id"]}}
    ).json()
    assert by_id["customer_id"] == one["customer_id"]
    unknown = api.post("/v1/orders", json={"customer": {"id": "cust_nope"}})
    assert unknown.status_code == 404
    assert unknown.json()["resource_type"] == "customer"


def test_unknown_top_level_fields_are_ignored(api: Api) -> None:
    order = api.post("/v1/orders", json={"source_id": "u", "shipping_method": "drone"}).json()
    assert "shipping_method" not in order


def test_created_at_sent_is_kept_and_normalised(api: Api) -> None:
    order = api.post("/v1/orders", json={"created_at": "2024-03-01T12:00:00+02:00"}).json()
    assert order["created_at"] == "2024-03-01T10:00:00.000Z"


# -- get ------------------------------------------------------------------------------------


def test_get_by_id_and_by_escaped_source_id(api: Api) -> None:
    created = api.post("/v1/orders", json={"source_id": "shop/2024 #1"}).json()
    assert api.get(f"/v1/orders/{created['id']}").json() == created
    assert api.get("/v1/orders/shop%2F2024%20%231").json()["id"] == created["id"]


def test_get_unknown_order_is_the_documented_404(api: Api) -> None:
    response = api.get("/v1/orders/ord_missing")
    assert response.status_code == 404
    body = response.json()
    request_id = body.pop("request_id")
    assert re.fullmatch(r"v-[0-9a-f]{18}", request_id)
    assert body == {
        "code": 404,
        "key": "not_found",
        "message": "Resource not found",
        "details": "Cannot find order with id ord_missing",
        "resource_id": "ord_missing",
        "resource_type": "order",
    }


def test_unknown_path_is_404_and_wrong_method_405(api: Api) -> None:
    missing = api.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["key"] == "not_found"
    wrong = api.request("DELETE", "/v1/orders")
    assert wrong.status_code == 405
    assert wrong.json()["key"] == "method_not_allowed"
    assert wrong.json()["message"] == "Method Not Allowed"


# -- update ---------------------------------------------------------------------------------


def test_put_is_a_partial_update(api: Api, clock: FakeClock) -> None:
    created = api.post(
        "/v1/orders", json={"source_id": "P-1", "items": [item()], "metadata": {"k": "v"}}
    ).json()
    clock.advance(1)
    updated = api.put("/v1/orders/P-1", json={"status": "CANCELED"}).json()
    assert updated["status"] == "CANCELED"
    assert updated["items"] == created["items"]
    assert updated["metadata"] == {"k": "v"}
    assert updated["updated_at"] == "2023-11-14T22:13:21.000Z"


def test_put_rejects_id_and_unknown_order(api: Api) -> None:
    api.post("/v1/orders", json={"source_id": "P-2"})
    with_id = api.put("/v1/orders/P-2", json={"id": "ord_x"})
    assert with_id.status_code == 400
    assert with_id.json()["details"] == "Property .id is not allowed"
    assert api.put("/v1/orders/nope", json={"status": "PAID"}).status_code == 404


# -- list -----------------------------------------------------------------------------------


def _create_many(api: Api, clock: FakeClock, count: int) -> list[dict[str, Any]]:
    created = []
    for n in range(count):
        clock.advance(1)
        created.append(api.post("/v1/orders", json={"source_id": f"L-{n}"}).json())
    return created


def test_list_defaults_to_newest_first_ten_per_page(api: Api, clock: FakeClock) -> None:
    created = _create_many(api, clock, 12)
    body = api.get("/v1/orders").json()
    assert body["object"] == "list" and body["data_ref"] == "orders"
    assert body["total"] == 12
    assert [o["source_id"] for o in body["orders"]] == [f"L-{n}" for n in range(11, 1, -1)]
    page2 = api.get("/v1/orders", params={"page": 2}).json()
    assert [o["id"] for o in page2["orders"]] == [created[1]["id"], created[0]["id"]]
    assert api.get("/v1/orders", params={"page": 3}).json()["orders"] == []


def test_list_orders_by_each_key(api: Api, clock: FakeClock) -> None:
    _create_many(api, clock, 3)
    clock.advance(1)
    api.put("/v1/orders/L-0", json={"status": "PAID"})

    def sources(order: str) -> list[str]:
        body = api.get("/v1/orders", params={"order": order, "limit": 100}).json()
        return [o["source_id"] for o in body["orders"]]

    assert sources("created_at") == ["L-0", "L-1", "L-2"]
    assert sources("-created_at") == ["L-2", "L-1", "L-0"]
    assert sources("-updated_at") == ["L-0", "L-2", "L-1"]
    assert sources("updated_at") == ["L-1", "L-2", "L-0"]


def test_same_millisecond_orders_sort_stably(api: Api) -> None:
    # The fake clock does not move: all ten share one created_at.
    for n in range(10):
        api.post("/v1/orders", json={"source_id": f"S-{n}"})
    ascending = api.get("/v1/orders", params={"order": "created_at"}).json()["orders"]
    descending = api.get("/v1/orders", params={"order": "-created_at"}).json()["orders"]
    assert [o["source_id"] for o in ascending] == [f"S-{n}" for n in range(10)]
    assert [o["source_id"] for o in descending] == [f"S-{n}" for n in range(9, -1, -1)]


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"limit": "0"}, "Property .limit cannot be lower than 1"),
        ({"limit": "101"}, "Property .limit cannot be greater than 100"),
        ({"limit": "ten"}, "Property .limit should be integer"),
        ({"page": "0"}, "Property .page cannot be lower than 1"),
        ({"page": "101"}, "Property .page cannot be greater than 100"),
        ({"order": "amount"}, "Property .order should be equal to one of the allowed values"),
    ],
)
def test_list_rejects_bad_query(api: Api, params: dict[str, str], details: str) -> None:
    response = api.get("/v1/orders", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["key"] == "invalid_query_params"
    assert body["message"] == "Invalid query params"
    assert body["details"].startswith(details)


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        ({"items": [item(quantity="2")]}, "Property .items[0].quantity should be integer"),
        ({"items": [item(quantity=True)]}, "Property .items[0].quantity should be integer"),
        ({"items": [item(quantity=0)]}, "Property .items[0].quantity cannot be lower than 1"),
        (
            {"items": [item(initial_quantity=0)]},
            "Property .items[0].initial_quantity cannot be lower than 1",
        ),
        ({"items": [item(price=-1)]}, "Property .items[0].price cannot be lower than 0"),
        ({"items": [item(amount=1.5)]}, "Property .items[0].amount should be integer"),
        ({"amount": -5}, "Property .amount cannot be lower than 0"),
        ({"amount": "100"}, "Property .amount should be integer"),
        ({"discount_amount": False}, "Property .discount_amount should be integer"),
        ({"metadata": []}, "Property .metadata should be object"),
        ({"items": {"a": 1}}, "Property .items should be array"),
        ({"items": ["x"]}, "Property .items[0] should be object"),
        ({"status": "SHIPPED"}, "Property .status should be equal to one of the allowed values"),
        ({"created_at": "yesterday"}, "Property .created_at cannot be recognized as a ISO-8601"),
        ({"source_id": 5}, "Property .source_id should be string"),
        ({"customer": "ada"}, "Property .customer should be object"),
        (
            {"items": [{"product": {"price": "12"}}]},
            "Property .items[0].product.price should be number",
        ),
        (
            {"items": [{"sku": {"override": "yes"}}]},
            "Property .items[0].sku.override should be boolean",
        ),
        (
            {"items": [{"source_id": "s", "related_object": "voucher"}]},
            "Property .items[0].related_object should be equal to one of the allowed values",
        ),
        ({"items": [item()] * 501}, "Property .items should have at most 500 items (got 501)"),
    ],
)
def test_invalid_order_bodies_get_400(api: Api, payload: dict[str, Any], details: str) -> None:
    response = api.post("/v1/orders", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400
    assert body["key"] == "invalid_payload"
    assert body["message"] == "Invalid payload"
    assert body["details"].startswith(details), body["details"]
    assert body["request_id"].startswith("v-")
    assert api.get("/v1/orders").json()["total"] == 0


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"'])
def test_body_must_be_a_json_object(api: Api, raw: bytes) -> None:
    response = api.post("/v1/orders", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["key"] == "invalid_payload"


def test_items_identified_every_documented_way_are_accepted(api: Api) -> None:
    items = [
        {"product_id": "prod_1", "quantity": 1},
        {"sku_id": "sku_1", "quantity": 1},
        {"source_id": "p", "related_object": "product", "quantity": 1},
        {"source_id": "s", "related_object": "sku", "quantity": 1},
        {"product": {"source_id": "p2", "name": "Mug", "override": True}, "quantity": 1},
        {"sku": {"source_id": "s2"}, "quantity": 1},
    ]
    order = api.post("/v1/orders", json={"items": items}).json()
    assert len(order["items"]) == 6
    assert order["items"][4]["product"] == {"source_id": "p2", "name": "Mug"}  # no override


# -- thread safety and Python API -----------------------------------------------------------


def test_parallel_upserts_of_one_source_id_make_one_order() -> None:
    emu = Emulator("a", "k", rate_limit_per_minute=None)
    headers = {"X-App-Id": "a", "X-App-Token": "k"}
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def worker(n: int) -> None:
        barrier.wait()
        for m in range(25):
            body = f'{{"source_id": "same", "amount": {n * 100 + m}}}'.encode()
            statuses.append(emu.handle("POST", "/v1/orders", headers, body).status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 200
    assert len(emu.orders()) == 1
    assert emu.count("POST", "/v1/orders") == 200


def test_python_inspection_api(emu: Emulator, api: Api) -> None:
    api.post("/v1/orders", json={"source_id": "I-1"})
    api.get("/v1/orders/I-1")
    snapshot = emu.orders()
    assert [o["source_id"] for o in snapshot] == ["I-1"]
    snapshot[0]["status"] = "MUTATED"  # a copy: the store is unaffected
    assert emu.get_order("I-1")["status"] == "CREATED"
    assert emu.get_order(snapshot[0]["id"])["source_id"] == "I-1"
    assert emu.get_order("nope") is None
    assert [tuple(r) for r in emu.requests] == [
        ("POST", "/v1/orders", 200),
        ("GET", "/v1/orders/I-1", 200),
    ]
    assert emu.count() == 2 and emu.count(method="GET") == 1
    emu.reset()
    assert emu.orders() == [] and emu.requests == []
