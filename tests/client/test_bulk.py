"""Import, export, download and async-action calls of the client."""

from __future__ import annotations

import io

import pytest

from django_voucherify_orders.client import (
    AuthenticationError,
    NotFound,
    PayloadError,
    VoucherifyClient,
)
from django_voucherify_orders.client.client import MAX_IMPORT_ORDERS
from django_voucherify_orders.emulator import Emulator


def _orders(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "source_id": f"hist-{i}",
            "status": "PAID" if i % 2 else "FULFILLED",
            "amount": 1000 + i,
            "items": [{"product_id": "prod_1", "quantity": 1, "price": 1000 + i}],
            "metadata": {"payment_mean": "card" if i % 3 else "cash"},
        }
        for i in range(start, start + n)
    ]


def test_import_then_wait_reports_done_counts(client, voucherify_emulator):
    action_id = client.import_orders(_orders(3))
    assert action_id.startswith("aa_")

    seen: list[str] = []
    action = client.wait_for_async_action(action_id, on_poll=lambda a: seen.append(a.status))

    assert action.status == "DONE"
    assert seen[-1] == "DONE" and len(seen) >= 2
    result = action.import_result
    assert result is not None
    assert (result.done_count, result.failed_count, result.failed) == (3, 0, [])
    assert {o["source_id"] for o in voucherify_emulator.orders()} == {"hist-0", "hist-1", "hist-2"}


def test_import_reports_per_order_failures(client, voucherify_emulator):
    client.create_order({"source_id": "hist-1"})

    action = client.wait_for_async_action(client.import_orders(_orders(3)))

    result = action.import_result
    assert (result.done_count, result.failed_count) == (2, 1)
    assert result.failed[0].source_id == "hist-1"
    assert "already exists" in result.failed[0].reason


@pytest.mark.parametrize("count", [0, MAX_IMPORT_ORDERS + 1])
def test_import_batch_size_is_checked_before_sending(client, voucherify_emulator, count):
    with pytest.raises(ValueError, match="1 to 2000 orders"):
        client.import_orders(_orders(count))
    assert voucherify_emulator.count() == 0


def test_import_of_2000_orders_is_one_request(client, voucherify_emulator):
    client.import_orders(_orders(MAX_IMPORT_ORDERS))
    assert voucherify_emulator.count(method="POST") == 1


def test_import_names_the_bad_order_and_field_and_sends_nothing(client, voucherify_emulator):
    orders = _orders(3)
    orders[1]["status"] = "LOST"

    with pytest.raises(PayloadError) as caught:
        client.import_orders(orders)

    assert "#1 (source_id 'hist-1')" in str(caught.value)
    assert caught.value.problems[0][0] == "status"
    assert voucherify_emulator.count() == 0


def test_import_without_source_id_is_sent_as_documented(client, voucherify_emulator):
    # The documents don't require source_id on an imported order (the mapper always sets it).
    action = client.wait_for_async_action(client.import_orders([{"status": "PAID", "amount": 5}]))
    assert action.import_result.done_count == 1
    assert [o["amount"] for o in voucherify_emulator.orders()] == [5]


def test_wait_gives_up_after_the_timeout(sleeps):
    slow = Emulator(app_id="test-app-id", secret_key="test-secret-key", async_steps=1000)
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    client = VoucherifyClient("test-app-id", "test-secret-key", sleep=sleeps, clock=clock)
    with slow.mock():
        action_id = client.import_orders(_orders(1))
        with pytest.raises(TimeoutError, match=f"async action {action_id} still IN_PROGRESS"):
            client.wait_for_async_action(action_id, timeout=10, poll_interval=1)
    assert 1 <= len(sleeps.calls) <= 10


def test_export_download_streams_the_csv_in_chunks(client, voucherify_emulator):
    client.wait_for_async_action(client.import_orders(_orders(50)))

    export = client.create_order_export(
        fields=["source_id", "status", "amount", "metadata.payment_mean"],
        order="created_at",
        filters={"junction": "and", "status": {"conditions": {"$in": ["PAID"]}}},
    )
    assert export.status == "SCHEDULED"
    done = client.wait_for_export(export.id)
    assert done.status == "DONE" and done.result is not None

    class Sink(io.BytesIO):
        writes = 0

        def write(self, data: bytes) -> int:
            Sink.writes += 1
            return super().write(data)

    sink = Sink()
    written = client.download_export(done, sink, chunk_size=256)

    lines = sink.getvalue().decode().splitlines()
    assert written == len(sink.getvalue())
    assert Sink.writes > 1
    assert lines[0] == "source_id,status,amount,metadata.payment_mean"
    assert len(lines) == 1 + 25
    assert all(",PAID," in line for line in lines[1:])


def test_download_with_a_bad_token_is_an_authentication_error(client, voucherify_emulator):
    export = client.wait_for_export(client.create_order_export().id)
    url = export.result.url.split("?")[0] + "?token=wrong-token"

    with pytest.raises(AuthenticationError) as caught:
        client.download_export(url, io.BytesIO())
    assert "wrong-token" not in str(caught.value)
    assert "token=********" in str(caught.value)


def test_download_of_an_unfinished_export_is_refused(client):
    export = client.create_order_export()
    with pytest.raises(ValueError, match="not DONE"):
        client.download_export(export, io.BytesIO())


def test_credentials_go_only_to_voucherify_hosts(client):
    assert client._trusted("https://download.voucherify.io/v1/exports/exp_1?token=x")
    assert client._trusted("https://api.voucherify.io/v1/exports/exp_1?token=x")
    assert not client._trusted("https://evil.example.com/v1/exports/exp_1?token=x")
    assert not client._trusted("http://download.voucherify.io/v1/exports/exp_1?token=x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ["id", "colour"]}, "unknown export field"),
        ({"fields": ["metadata."]}, "unknown export field"),
        ({"order": "amount"}, "order"),
        ({"filters": {"junction": "xor"}}, "junction"),
        ({"filters": {"status": {"conditions": {"$like": ["P%"]}}}}, "unknown condition"),
        ({"filters": {"colour": {"conditions": {"$is": "red"}}}}, "cannot filter"),
        ({"filters": {"status": "PAID"}}, "conditions"),
    ],
)
def test_bad_export_parameters_fail_locally(client, voucherify_emulator, kwargs, message):
    with pytest.raises(PayloadError, match=message):
        client.create_order_export(**kwargs)
    assert voucherify_emulator.count() == 0


def test_export_accepts_metadata_fields(client):
    export = client.create_order_export(fields=["id", "metadata", "metadata.payment_mean"])
    assert export.parameters["fields"] == ["id", "metadata", "metadata.payment_mean"]


def test_unknown_async_action_and_export_are_not_found(client):
    with pytest.raises(NotFound, match="async_action"):
        client.get_async_action("aa_000000000000000000")
    with pytest.raises(NotFound, match="export"):
        client.get_export("exp_nope")
