"""POST /v1/orders/import and GET /v1/async-actions/{id}."""

from __future__ import annotations

import re
from typing import Any

import pytest

from django_voucherify_orders.emulator import Emulator

from .conftest import APP_ID, BASE, SECRET, Api, FakeClock, item


def _import(api: Api, orders: list[dict[str, Any]]) -> str:
    response = api.post("/v1/orders/import", json=orders)
    assert response.status_code == 200, response.text
    action_id = response.json()["async_action_id"]
    assert re.fullmatch(r"aa_[0-9a-f]{18}", action_id)
    return action_id


def _poll(api: Api, action_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/async-actions/{action_id}")
    assert response.status_code == 200
    return response.json()


def test_import_lifecycle_takes_async_steps_polls(emu: Emulator, api: Api) -> None:
    action_id = _import(api, [{"source_id": f"H-{n}", "items": [item()]} for n in range(3)])
    assert emu.orders() == []  # nothing applied before DONE
    first = _poll(api, action_id)
    assert first["status"] == "IN_PROGRESS"
    assert "result" not in first
    assert first["type"] == "ORDERS.IMPORT"
    assert first["object"] == "async_action"
    assert 0 < first["progress"] < 100
    done = _poll(api, action_id)
    assert done["status"] == "DONE"
    assert done["progress"] == 100
    assert done["result"] == {
        "message": "3 order(s) imported successfully, 0 failed.",
        "failed": [],
        "done_count": 3,
        "failed_count": 0,
    }
    assert isinstance(done["processing_time"], int)
    assert [o["source_id"] for o in emu.orders()] == ["H-0", "H-1", "H-2"]
    assert _poll(api, action_id) == done  # stays DONE


def test_import_keeps_given_created_at_else_now(api: Api, emu: Emulator) -> None:
    action_id = _import(
        api, [{"source_id": "old", "created_at": "2020-01-02T03:04:05Z"}, {"source_id": "new"}]
    )
    emu.finish_async()
    assert _poll(api, action_id)["status"] == "DONE"
    assert emu.get_order("old")["created_at"] == "2020-01-02T03:04:05.000Z"
    assert emu.get_order("new")["created_at"] == "2023-11-14T22:13:20.000Z"


def test_more_async_steps_mean_more_polls(clock: FakeClock) -> None:
    emu = Emulator(APP_ID, SECRET, async_steps=3, clock=clock, rate_limit_per_minute=None)
    with emu.mock():
        api = Api(BASE)
        action_id = _import(api, [{"source_id": "Q"}])
        listed = api.get("/v1/async-actions").json()  # listing is not a poll
        assert listed["data_ref"] == "async_actions"
        assert listed["has_more"] is False
        assert [(a["id"], a["status"]) for a in listed["async_actions"]] == [
            (action_id, "ENQUEUED")
        ]
        statuses = [_poll(api, action_id)["status"] for _ in range(3)]
        assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "DONE"]
        listed = api.get("/v1/async-actions").json()
        assert "result" not in listed["async_actions"][0]


def test_imports_run_one_at_a_time_first_in_first_out(emu: Emulator, api: Api) -> None:
    first = _import(api, [{"source_id": "F-1"}])
    second = _import(api, [{"source_id": "F-2"}])
    assert _poll(api, second)["status"] == "ENQUEUED"  # this poll drives the first import
    assert _poll(api, first)["status"] == "DONE"
    assert emu.get_order("F-2") is None
    assert _poll(api, second)["status"] == "IN_PROGRESS"
    assert _poll(api, second)["status"] == "DONE"
    assert emu.get_order("F-2") is not None


def test_existing_and_duplicated_source_ids_fail_per_order(emu: Emulator, api: Api) -> None:
    api.post("/v1/orders", json={"source_id": "exists", "amount": 1})
    emu.faults.fail_import(["broken"], "Internal error")
    action_id = _import(
        api,
        [
            {"source_id": "exists", "amount": 2},
            {"source_id": "twice"},
            {"source_id": "twice"},
            {"source_id": "broken"},
            {"source_id": "fine"},
        ],
    )
    emu.finish_async()
    result = _poll(api, action_id)["result"]
    assert result["done_count"] == 2
    assert result["failed_count"] == 3
    assert result["message"] == "2 order(s) imported successfully, 3 failed."
    assert result["failed"] == [
        {"source_id": "exists", "reason": "Order with source_id exists already exists"},
        {"source_id": "twice", "reason": "Order with source_id twice already exists"},
        {"source_id": "broken", "reason": "Internal error"},
    ]
    assert emu.get_order("exists")["amount"] == 1  # untouched


def test_upsert_policy_updates_existing_orders(clock: FakeClock) -> None:
    emu = Emulator(APP_ID, SECRET, import_existing="upsert", clock=clock)
    with emu.mock():
        api = Api(BASE)
        api.post("/v1/orders", json={"source_id": "exists", "amount": 1})
        action_id = _import(api, [{"source_id": "exists", "amount": 2}])
        emu.finish_async()
        assert _poll(api, action_id)["result"]["done_count"] == 1
        assert emu.get_order("exists")["amount"] == 2


def test_import_accepts_2000_and_rejects_2001(emu: Emulator, api: Api) -> None:
    orders = [{"source_id": f"N-{n}", "amount": n} for n in range(2001)]
    too_many = api.post("/v1/orders/import", json=orders)
    assert too_many.status_code == 400
    assert too_many.json()["key"] == "invalid_payload"
    assert too_many.json()["details"] == "Property . should have at most 2000 items (got 2001)"
    action_id = _import(api, orders[:2000])
    emu.finish_async()
    assert _poll(api, action_id)["result"]["done_count"] == 2000
    assert api.get("/v1/orders").json()["total"] == 2000


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        ({"source_id": "x"}, "Property . should be array"),
        (["x"], "Property .[0] should be object"),
        (
            [{"source_id": "ok"}, {"items": [item(initial_quantity=0)]}],
            "Property .items[0].initial_quantity cannot be lower than 1",
        ),
        ([{"amount": "1"}], "Property .amount should be integer"),
    ],
)
def test_invalid_imports_are_rejected_whole(
    emu: Emulator, api: Api, payload: Any, details: str
) -> None:
    response = api.post("/v1/orders/import", json=payload)
    assert response.status_code == 400
    assert response.json()["details"] == details
    emu.finish_async()
    assert emu.orders() == []


def test_an_empty_import_is_accepted_as_the_documents_allow(emu: Emulator, api: Api) -> None:
    # OrdersImportCreateRequestBody sets no minItems; the import simply has nothing to do.
    action_id = _import(api, [])
    emu.finish_async()
    result = _poll(api, action_id)["result"]
    assert (result["done_count"], result["failed_count"], result["failed"]) == (0, 0, [])


def test_unknown_async_action_is_404(api: Api) -> None:
    body = api.get("/v1/async-actions/aa_000000000000000000").json()
    assert body["code"] == 404
    assert body["resource_type"] == "async_action"
    assert body["details"] == "Cannot find async_action with id aa_000000000000000000"


def test_async_steps_zero_finishes_at_once(clock: FakeClock) -> None:
    emu = Emulator(APP_ID, SECRET, async_steps=0, clock=clock)
    with emu.mock():
        api = Api(BASE)
        action_id = _import(api, [{"source_id": "now"}])
        assert emu.get_order("now") is not None
        assert _poll(api, action_id)["status"] == "DONE"
