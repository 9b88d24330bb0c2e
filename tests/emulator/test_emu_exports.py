"""Order exports: create, poll, download, and the CSV that filters and fields produce."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from django_voucherify_orders.emulator import Emulator

from .conftest import APP_ID, SECRET, Api, FakeClock, poll_until_done

DOWNLOAD = "https://download.voucherify.io"


@pytest.fixture
def shop(clock: FakeClock) -> Any:
    """Four orders a second apart, with a distinct download host."""
    emu = Emulator(APP_ID, SECRET, download_url=DOWNLOAD, rate_limit_per_minute=None, clock=clock)
    with emu.mock():
        api = Api("https://api.voucherify.io")
        orders = [
            {"source_id": "A-1", "status": "PAID", "amount": 100, "metadata": {"ch": "web"}},
            {"source_id": "A-2", "status": "CREATED", "amount": 250, "discount_amount": 50,
             "metadata": {"ch": "pos", "tags": ["x", "y"], "n": 3}},
            {"source_id": "B-3", "status": "CANCELED", "amount": 900, "metadata": {}},
            {"source_id": "B-4", "status": "PAID", "amount": 40,
             "customer": {"source_id": "cus"}, "metadata": {"ch": "web shop"}},
        ]  # fmt: skip
        for order in orders:
            clock.advance(1)
            assert api.post("/v1/orders", json=order).status_code == 200
        yield emu, api


def export_rows(api: Api, parameters: dict[str, Any] | None = None) -> list[list[str]]:
    body = {} if parameters is None else {"parameters": parameters}
    created = api.post("/v1/orders/export", json=body)
    assert created.status_code == 200, created.text
    done = poll_until_done(api, f"/v1/exports/{created.json()['id']}")
    assert done["status"] == "DONE"
    response = api.get(done["result"]["url"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text)))


def sources(api: Api, filters: dict[str, Any], order: str = "created_at") -> list[str]:
    rows = export_rows(api, {"fields": ["source_id"], "order": order, "filters": filters})
    assert rows[0] == ["source_id"]
    return [row[0] for row in rows[1:]]


def test_export_lifecycle_and_shape(shop: Any) -> None:
    _, api = shop
    created = api.post("/v1/orders/export", json={}).json()
    assert re.fullmatch(r"exp_[A-Za-z0-9]{24}", created["id"])
    assert created["object"] == "export"
    assert created["status"] == "SCHEDULED"
    assert created["channel"] == "API"
    assert created["exported_object"] == "order"
    assert created["result"] is None and created["user_id"] is None
    assert created["parameters"] == {
        "order": "-created_at",
        "fields": ["id", "source_id", "status"],
        "filters": {"junction": "and"},
    }
    path = f"/v1/exports/{created['id']}"
    assert api.get(path).json()["status"] == "IN_PROGRESS"
    done = api.get(path).json()
    assert done["status"] == "DONE"
    url = done["result"]["url"]
    assert re.fullmatch(rf"{DOWNLOAD}/v1/exports/{created['id']}\?token=[\w-]+", url)
    text = api.get(url).text
    assert text.splitlines()[0] == "id,source_id,status"
    assert [line.split(",")[1] for line in text.splitlines()[1:]] == ["B-4", "B-3", "A-2", "A-1"]
    assert text.endswith("\r\n")


def test_download_also_works_on_the_api_host(shop: Any) -> None:
    _, api = shop
    export_id = api.post("/v1/orders/export", json={}).json()["id"]
    done = poll_until_done(api, f"/v1/exports/{export_id}")
    token_path = done["result"]["url"].removeprefix(DOWNLOAD)
    assert api.get(token_path).status_code == 200


def test_download_with_a_bad_or_missing_token_is_401(shop: Any) -> None:
    _, api = shop
    first = api.post("/v1/orders/export", json={}).json()
    second = api.post("/v1/orders/export", json={}).json()
    url = poll_until_done(api, f"/v1/exports/{first['id']}")["result"]["url"]
    token = url.split("token=")[1]
    for bad in (
        f"/v1/exports/{first['id']}?token=wrong",
        f"/v1/exports/{first['id']}?token=",
        f"/v1/exports/{second['id']}?token={token}",  # another export's token
        f"/v1/exports/exp_missing?token={token}",
    ):
        response = api.get(bad)
        assert response.status_code == 401, bad
        body = response.json()
        assert (body["code"], body["message"], body["key"]) == (401, "Unauthorized", "unauthorized")
    no_auth = Api(DOWNLOAD, headers={}).get(url)
    assert no_auth.status_code == 401  # the auth headers are checked on download too


def test_fields_metadata_and_value_rendering(shop: Any) -> None:
    _, api = shop
    rows = export_rows(
        api,
        {
            "fields": ["source_id", "amount", "discount_amount", "total_amount", "updated_at",
                       "customer_id", "metadata", "metadata.ch", "metadata.tags", "metadata.n"],
            "order": "created_at",
        },
    )  # fmt: skip
    assert rows[0][0] == "source_id" and rows[0][-1] == "metadata.n"
    a1, a2, b3, b4 = rows[1:]
    assert a1 == ["A-1", "100", "", "100", "", "", '{"ch":"web"}', "web", "", ""]
    assert a2[:4] == ["A-2", "250", "50", "200"]
    assert a2[6:] == ['{"ch":"pos","tags":["x","y"],"n":3}', "pos", '["x","y"]', "3"]
    assert b3[6] == "{}"
    assert b4[5].startswith("cust_") and b4[7] == "web shop"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("created_at", ["A-1", "A-2", "B-3", "B-4"]),
        ("-created_at", ["B-4", "B-3", "A-2", "A-1"]),
        ("status", ["B-3", "A-2", "A-1", "B-4"]),
        ("-status", ["B-4", "A-1", "A-2", "B-3"]),
        ("-updated_at", ["A-1", "B-4", "B-3", "A-2"]),
        ("updated_at", ["A-2", "B-3", "B-4", "A-1"]),
    ],
)
def test_export_order(shop: Any, clock: FakeClock, order: str, expected: list[str]) -> None:
    _, api = shop
    clock.advance(10)
    api.put("/v1/orders/A-1", json={"status": "PAID"})
    assert sources(api, {}, order) == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"status": {"conditions": {"$in": ["PAID", "CANCELED"]}}}, ["A-1", "B-3", "B-4"]),
        ({"status": {"conditions": {"$not_in": ["PAID"]}}}, ["A-2", "B-3"]),
        ({"status": {"conditions": {"$is": "PAID"}}}, ["A-1", "B-4"]),
        ({"status": {"conditions": {"$is": ["PAID"]}}}, ["A-1", "B-4"]),
        ({"status": {"conditions": {"$is_not": ["PAID"]}}}, ["A-2", "B-3"]),
        ({"discount_amount": {"conditions": {"$has_value": True}}}, ["A-2"]),
        ({"customer_id": {"conditions": {"$is_unknown": True}}}, ["A-1", "A-2", "B-3"]),
        ({"source_id": {"conditions": {"$contains": "-"}}}, ["A-1", "A-2", "B-3", "B-4"]),
        ({"metadata.ch": {"conditions": {"$contains": ["web"]}}}, ["A-1", "B-4"]),
        ({"metadata.tags": {"conditions": {"$contains": "y"}}}, ["A-2"]),
        ({"source_id": {"conditions": {"$not_contain": ["A"]}}}, ["B-3", "B-4"]),
        ({"source_id": {"conditions": {"$starts_with": "B"}}}, ["B-3", "B-4"]),
        ({"source_id": {"conditions": {"$ends_with": ["2"]}}}, ["A-2"]),
        ({"amount": {"conditions": {"$more_than": 100}}}, ["A-2", "B-3"]),
        ({"amount": {"conditions": {"$more_than_equal": [100]}}}, ["A-1", "A-2", "B-3"]),
        ({"total_amount": {"conditions": {"$less_than": 200}}}, ["A-1", "B-4"]),
        ({"total_amount": {"conditions": {"$less_than_equal": 200}}}, ["A-1", "A-2", "B-4"]),
        ({"metadata.n": {"conditions": {"$more_than": 2}}}, ["A-2"]),
        ({"metadata.ch": {"conditions": {"$in": ["pos", "web"]}}}, ["A-1", "A-2"]),
        (
            {"created_at": {"conditions": {"$after": ["2023-11-14T22:13:22Z"]}}},
            ["B-3", "B-4"],
        ),
        ({"created_at": {"conditions": {"$before": "2023-11-14T22:13:23Z"}}}, ["A-1", "A-2"]),
        (
            {
                "created_at": {
                    "conditions": {
                        "$after": "2023-11-14T22:13:21Z",
                        "$before": "2023-11-14T22:13:24Z",
                    }
                }
            },
            ["A-2", "B-3"],
        ),
        ({"updated_at": {"conditions": {"$is_unknown": True}}}, ["A-1", "A-2", "B-3", "B-4"]),
        (
            {
                "junction": "and",
                "status": {"conditions": {"$is": "PAID"}},
                "amount": {"conditions": {"$more_than": 50}},
            },
            ["A-1"],
        ),
        (
            {
                "junction": "or",
                "status": {"conditions": {"$is": "CANCELED"}},
                "amount": {"conditions": {"$less_than": 50}},
            },
            ["B-3", "B-4"],
        ),
    ],
)
def test_filters(shop: Any, filters: dict[str, Any], expected: list[str]) -> None:
    _, api = shop
    assert sources(api, filters) == expected


def test_the_file_is_a_snapshot_taken_when_the_export_finishes(shop: Any) -> None:
    _, api = shop
    created = api.post("/v1/orders/export", json={"parameters": {"fields": ["source_id"]}})
    api.post("/v1/orders", json={"source_id": "late"})  # before DONE: included
    done = poll_until_done(api, f"/v1/exports/{created.json()['id']}")
    api.post("/v1/orders", json={"source_id": "later"})  # after DONE: not included
    rows = api.get(done["result"]["url"]).text.split()
    assert "late" in rows and "later" not in rows


def test_generic_exports_endpoint(shop: Any) -> None:
    _, api = shop
    created = api.post(
        "/v1/exports", json={"exported_object": "order", "parameters": {"fields": ["id"]}}
    )
    assert created.status_code == 200
    assert created.json()["parameters"]["fields"] == ["id"]
    for other in ("voucher", "nonsense", None):
        response = api.post("/v1/exports", json={"exported_object": other})
        assert response.status_code == 400
        assert response.json()["key"] == "invalid_payload"
    listed = api.get("/v1/exports").json()
    assert listed["data_ref"] == "exports" and listed["total"] == 1
    assert api.request("DELETE", f"/v1/exports/{created.json()['id']}").status_code == 204
    assert api.get(f"/v1/exports/{created.json()['id']}").status_code == 404


def test_unknown_export_is_404(shop: Any) -> None:
    _, api = shop
    body = api.get("/v1/exports/exp_missing").json()
    assert body["code"] == 404
    assert body["resource_type"] == "export"
    assert body["details"] == "Cannot find export with id exp_missing"


def test_failed_export_ends_in_error(shop: Any) -> None:
    emu, api = shop
    emu.faults.fail_export_next()
    failing = api.post("/v1/orders/export", json={}).json()
    fine = api.post("/v1/orders/export", json={}).json()
    failed = poll_until_done(api, f"/v1/exports/{failing['id']}")
    assert failed["status"] == "ERROR" and failed["result"] is None
    assert poll_until_done(api, f"/v1/exports/{fine['id']}")["status"] == "DONE"


def test_finish_async_completes_exports(shop: Any) -> None:
    emu, api = shop
    created = api.post("/v1/orders/export", json={}).json()
    emu.finish_async()
    assert api.get(f"/v1/exports/{created['id']}").json()["status"] == "DONE"


def test_unsupported_field_is_invalid_export_fields(shop: Any) -> None:
    _, api = shop
    response = api.post("/v1/orders/export", json={"parameters": {"fields": ["id", "items"]}})
    assert response.status_code == 400
    body = response.json()
    assert body["key"] == "invalid_export_fields"
    assert body["message"] == "Invalid Export"
    assert body["details"].startswith("Unsupported field used. Allowed fields: id, source_id,")


@pytest.mark.parametrize(
    ("parameters", "details"),
    [
        ({"order": "amount"}, "Property .parameters.order should be equal to one of the allowed"),
        ({"filters": {"items": {"conditions": {"$in": [1]}}}}, "Property .parameters.filters "),
        ({"filters": {"status": {"conditions": {"$near": [1]}}}}, "Property .parameters.filters "),
        ({"filters": {"status": {"$in": ["PAID"]}}}, "Property .parameters.filters should match"),
        ({"filters": {"junction": "xor"}}, "Property .parameters.filters.junction should be"),
        (
            {"filters": {"created_at": {"conditions": {"$after": "soon"}}}},
            "Property .parameters.filters.created_at.conditions.$after cannot be recognized",
        ),
        (
            {"filters": {"amount": {"conditions": {"$more_than": "lots"}}}},
            "Property .parameters.filters.amount.conditions.$more_than should be number",
        ),
        ({"fields": "id"}, "Property .parameters.fields should be array"),
    ],
)
def test_invalid_export_parameters(shop: Any, parameters: dict[str, Any], details: str) -> None:
    _, api = shop
    response = api.post("/v1/orders/export", json={"parameters": parameters})
    assert response.status_code == 400
    assert response.json()["key"] == "invalid_payload"
    assert response.json()["details"].startswith(details)


def test_bad_filter_details_are_the_documented_text(shop: Any) -> None:
    _, api = shop
    response = api.post(
        "/v1/orders/export", json={"parameters": {"filters": {"colour": {"conditions": {}}}}}
    )
    assert response.json()["details"].startswith(
        "Property .parameters.filters should match either "
        "`filters[${field}][conditions][${condition}][${index}]` or "
        "`filters[${field}][conditions][${condition}]` format and condition must be one of: "
        "$in, $not_in,"
    )
