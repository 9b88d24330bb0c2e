"""What the client retries, how long it waits, and what it refuses to repeat."""

from __future__ import annotations

import socket

import pytest

from django_voucherify_orders.client import (
    RateLimited,
    RetryPolicy,
    VoucherifyClient,
    VoucherifyServerError,
    VoucherifyTransportError,
)
from django_voucherify_orders.client.retry import full_jitter_backoff

IMPORT = [{"source_id": "h-1", "items": [{"product_id": "p", "quantity": 1, "price": 5}]}]


def test_transient_failures_of_a_read_are_retried(client, voucherify_emulator, sleeps):
    client.create_order({"source_id": "o-1"})
    voucherify_emulator.faults.script([503, "drop"])

    assert client.get_order("o-1").source_id == "o-1"
    assert len(sleeps.calls) == 2


def test_upsert_by_source_id_is_retried_after_a_5xx(client, voucherify_emulator, sleeps):
    voucherify_emulator.faults.script([500])

    client.create_order({"source_id": "o-1", "status": "PAID"})

    assert len(voucherify_emulator.orders()) == 1
    assert len(sleeps.calls) == 1


def test_create_without_an_upsert_key_is_not_repeated_after_a_5xx(
    client, voucherify_emulator, sleeps
):
    voucherify_emulator.faults.script([500])
    with pytest.raises(VoucherifyServerError):
        client.create_order({"status": "PAID"})
    assert sleeps.calls == []


def test_retries_stop_at_the_policy_limit(client, voucherify_emulator, sleeps):
    voucherify_emulator.faults.script([500, 500, 500, 500])
    with pytest.raises(VoucherifyServerError) as caught:
        client.get_order("o-1")
    assert caught.value.key == "internal_error"
    assert len(sleeps.calls) == 2  # max_retries=2: three attempts in all
    assert voucherify_emulator.count() == 3


@pytest.mark.parametrize("fault", [500, 503, "drop"])
def test_import_is_never_repeated_once_it_may_have_been_received(
    client, voucherify_emulator, sleeps, fault
):
    voucherify_emulator.faults.script([fault])
    with pytest.raises((VoucherifyServerError, VoucherifyTransportError)):
        client.import_orders(IMPORT)
    assert voucherify_emulator.count(method="POST") == 1
    assert sleeps.calls == []


def test_import_is_retried_after_a_429_which_is_refused_unprocessed(
    client, voucherify_emulator, sleeps
):
    voucherify_emulator.faults.retry_after = 2
    voucherify_emulator.faults.script([429])

    assert client.import_orders(IMPORT).startswith("aa_")
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] > 1.9  # Retry-After (2 s, less the moments since it arrived)


def test_import_is_retried_when_the_connection_was_never_made(sleeps):
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = VoucherifyClient(
        "a", "s", f"http://127.0.0.1:{port}", retry=RetryPolicy(max_retries=2), sleep=sleeps
    )
    with pytest.raises(VoucherifyTransportError) as caught:
        client.import_orders(IMPORT)
    assert caught.value.sent is False
    assert len(sleeps.calls) == 2


def test_a_long_retry_after_is_raised_not_slept_through(voucherify_emulator, sleeps):
    client = VoucherifyClient(
        "test-app-id", "test-secret-key", retry=RetryPolicy(max_wait=5), sleep=sleeps
    )
    voucherify_emulator.faults.retry_after = 60
    voucherify_emulator.faults.script([429])

    with pytest.raises(RateLimited) as caught:
        client.get_order("o-1")

    assert sleeps.calls == []
    assert 59 <= caught.value.retry_after <= 60
    assert caught.value.rate_limit.limit is not None


def test_rate_limit_headers_are_exposed(client):
    client.create_order({"source_id": "o-1"})
    info = client.last_rate_limit
    assert info.limit is not None and info.remaining is not None
    assert info.retry_at is not None


def test_emulator_rate_limit_is_a_429_with_retry_after(voucherify_emulator, sleeps):
    voucherify_emulator.rate_limit_per_minute = 2
    client = VoucherifyClient(
        "test-app-id", "test-secret-key", retry=RetryPolicy(max_retries=0), sleep=sleeps
    )
    client.create_order({"source_id": "o-1"})
    client.create_order({"source_id": "o-2"})
    assert client.last_rate_limit.remaining == 0
    with pytest.raises(RateLimited) as caught:
        client.create_order({"source_id": "o-3"})
    assert 0 < caught.value.retry_after <= 60
    assert caught.value.rate_limit.limit_type == "api_calls"


@pytest.mark.parametrize("retry_number", [1, 2, 3, 8, 30])
def test_full_jitter_stays_under_the_cap(retry_number):
    delays = [full_jitter_backoff(retry_number, 0.5, 8.0) for _ in range(200)]
    ceiling = min(8.0, 0.5 * 2 ** (retry_number - 1))
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling / 2  # it is spread over the range, not fixed


def test_server_wait_is_a_floor():
    assert all(full_jitter_backoff(1, 0.5, 8.0, server_wait=3) >= 3 for _ in range(100))
