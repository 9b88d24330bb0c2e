"""Faults an importer must survive: failures counted but not named, answers lost."""

from __future__ import annotations

import pytest

from django_voucherify_orders.emulator import Emulator
from django_voucherify_orders.emulator.faults import DroppedConnection

from .conftest import APP_ID, BASE, SECRET, Api, item


def test_an_unnamed_import_failure_is_counted_but_not_listed(emu: Emulator, api: Api) -> None:
    emu.faults.fail_import(["B"], named=False)
    emu.faults.fail_import(["C"], "Customer is blocked")
    action_id = api.post(
        "/v1/orders/import", json=[{"source_id": s, "items": [item()]} for s in "ABC"]
    ).json()["async_action_id"]
    emu.finish_async()

    result = api.get(f"/v1/async-actions/{action_id}").json()["result"]

    assert result["failed_count"] == 2 and result["done_count"] == 1
    assert result["failed"] == [{"source_id": "C", "reason": "Customer is blocked"}]
    assert [o["source_id"] for o in emu.orders()] == ["A"]


def test_drop_after_serves_the_request_then_drops_the_answer(emu: Emulator) -> None:
    emu.faults.script(["drop-after"])
    headers = {"X-App-Id": APP_ID, "X-App-Token": SECRET, "Content-Type": "application/json"}

    with pytest.raises(DroppedConnection):
        emu.handle("POST", f"{BASE}/v1/orders", headers, b'{"source_id": "landed"}')

    assert emu.get_order("landed")["source_id"] == "landed"
