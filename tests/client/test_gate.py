"""The client's gate is passed before every HTTP request it makes: retries and redirect
hops included, so the shared rate limiter sees them all. A gate that refuses stops the
call before anything is sent, and is not retried."""

from __future__ import annotations

import pytest
import responses

from django_voucherify_orders.client import RateLimitBusy, RetryPolicy, VoucherifyClient

from .conftest import API_URL, APP_ID, SECRET


class Gate:
    def __init__(self, refuse_after: int | None = None) -> None:
        self.passed: list[tuple[str, str]] = []
        self.refuse_after = refuse_after

    def __call__(self, method: str, path: str) -> None:
        if self.refuse_after is not None and len(self.passed) >= self.refuse_after:
            raise RateLimitBusy(method, path, retry_in=42.0, waited_at_most=5.0)
        self.passed.append((method, path))


def gated(gate: Gate, retries: int = 2) -> VoucherifyClient:
    return VoucherifyClient(
        APP_ID, SECRET, API_URL, gate=gate, sleep=lambda _: None,
        retry=RetryPolicy(max_retries=retries, backoff_base=0.001, backoff_max=0.001),
    )  # fmt: skip


def test_every_retry_passes_the_gate(voucherify_emulator):
    voucherify_emulator.faults.script([503, 500])
    gate = Gate()

    gated(gate).list_orders()

    assert gate.passed == [("GET", "/v1/orders")] * 3
    assert voucherify_emulator.count() == 3


def test_a_refused_attempt_sends_nothing_and_is_not_retried(voucherify_emulator):
    voucherify_emulator.faults.script([503])
    gate = Gate(refuse_after=1)

    with pytest.raises(RateLimitBusy) as refused:
        gated(gate).list_orders()

    assert voucherify_emulator.count() == 1  # the first attempt (a 503); its retry was refused
    assert refused.value.retry_in == 42.0
    assert str(refused.value) == (
        "GET /v1/orders: not sent, the shared rate limit is busy (no slot within 5s; "
        "RATE_LIMIT or a pause Voucherify asked for); try again in 42s"
    )


def test_each_redirect_hop_passes_the_gate():
    gate = Gate()
    with responses.RequestsMock() as mock:
        mock.get(f"{API_URL}/v1/orders/o1", status=302, headers={"Location": "/v1/orders/o2"})
        mock.get(f"{API_URL}/v1/orders/o2", json={"id": "ord_2", "object": "order"})

        gated(gate).get_order("o1")

    assert [method for method, _ in gate.passed] == ["GET", "GET"]


def test_no_gate_no_change(voucherify_emulator):
    with VoucherifyClient(APP_ID, SECRET, API_URL) as client:
        assert client.list_orders().total == 0
