"""Rate limiting (with an injected clock) and injected faults through the responses door."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from django_voucherify_orders.emulator import DroppedConnection, Emulator, Faults

from .conftest import APP_ID, AUTH, BASE, SECRET, Api, FakeClock

WINDOW_END = 1_700_000_040  # the fake clock starts at ...000; minute windows end at ...040


def test_rate_limit_headers_429_and_recovery(clock: FakeClock) -> None:
    emu = Emulator(APP_ID, SECRET, rate_limit_per_minute=3, clock=clock)
    with emu.mock():
        api = Api(BASE)
        for remaining in ("2", "1", "0"):
            ok = api.get("/v1/orders")
            assert ok.status_code == 200
            assert ok.headers["X-Rate-Limit-Limit"] == "3"
            assert ok.headers["X-Rate-Limit-Remaining"] == remaining
            assert ok.headers["X-Rate-Limit-Retry"] == str(WINDOW_END)
            assert "Retry-After" not in ok.headers
        limited = api.get("/v1/orders")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "40"
        assert limited.headers["X-Rate-Limit-Type"] == "api_calls"
        assert limited.headers["X-Rate-Limit-Remaining"] == "0"
        assert limited.headers["X-Rate-Limit-Retry"] == str(WINDOW_END)
        body = limited.json()
        assert body["code"] == 429
        assert body["key"] == "too_many_requests"
        assert body["message"] == "Too many requests hit the API too quickly."
        assert body["details"] == "Rate limit of 3 requests per minute exceeded"
        assert body["request_id"].startswith("v-")

        clock.advance(39.5)
        assert api.get("/v1/orders").headers["Retry-After"] == "1"  # rounded up, at least 1
        clock.advance(1)
        recovered = api.get("/v1/orders")
        assert recovered.status_code == 200
        assert recovered.headers["X-Rate-Limit-Remaining"] == "2"
        assert recovered.headers["X-Rate-Limit-Retry"] == str(WINDOW_END + 60)
        assert [r.status for r in emu.requests].count(429) == 2


def test_unauthenticated_requests_do_not_use_the_budget(clock: FakeClock) -> None:
    emu = Emulator(APP_ID, SECRET, rate_limit_per_minute=1, clock=clock)
    with emu.mock():
        rejected = Api(BASE, headers={}).get("/v1/orders")
        assert rejected.status_code == 401
        assert rejected.headers["X-Rate-Limit-Remaining"] == "1"
        assert Api(BASE).get("/v1/orders").status_code == 200


def test_unlimited_still_sends_headers(api: Api) -> None:
    response = api.get("/v1/orders")
    assert response.headers["X-Rate-Limit-Limit"] == "1000000"
    assert int(response.headers["X-Rate-Limit-Remaining"]) == 999_999
    assert int(response.headers["X-Rate-Limit-Retry"]) % 60 == 0


def test_fault_script_then_normal(emu: Emulator, api: Api) -> None:
    emu.faults.retry_after = 7
    emu.faults.script([500, 503, 429, "drop", 502])
    first = api.get("/v1/orders")
    assert first.status_code == 500
    body = first.json()
    assert body.pop("request_id").startswith("v-")
    assert body == {
        "code": 500,
        "key": "internal_error",
        "message": "Internal Server Error",
        "details": "Injected fault",
    }
    unavailable = api.get("/v1/orders")
    assert unavailable.status_code == 503
    assert unavailable.json()["key"] == "service_unavailable"
    limited = api.get("/v1/orders")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.headers["X-Rate-Limit-Type"] == "api_calls"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert "X-Rate-Limit-Limit" in limited.headers
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("/v1/orders")
    assert api.get("/v1/orders").json()["key"] == "bad_gateway"
    assert api.get("/v1/orders").status_code == 200
    assert [r.status for r in emu.requests] == [500, 503, 429, 0, 502, 200]


def test_faults_hit_before_auth_and_skip_control_paths(emu: Emulator) -> None:
    emu.faults.script([500])
    health = emu.handle("GET", f"{BASE}/_emulator/health", {}, b"")
    assert health.status == 200  # control: no fault consumed
    assert emu.handle("GET", f"{BASE}/v1/orders", {}, b"").status == 500
    assert emu.handle("GET", f"{BASE}/v1/orders", {}, b"").status == 401


def test_handle_raises_dropped_connection(emu: Emulator) -> None:
    emu.faults.script(["drop"])
    with pytest.raises(DroppedConnection):
        emu.handle("GET", f"{BASE}/v1/orders", AUTH, b"")


def _draws(rates: dict[object, float], seed: int, count: int = 2000) -> list[object]:
    faults = Faults()
    faults.set_rates(rates, seed=seed)
    return [faults.draw() for _ in range(count)]


def test_seeded_rates_repeat_and_roughly_match() -> None:
    rates: dict[object, float] = {500: 0.10, 503: 0.0, 429: 0.05, "drop": 0.02}
    first = _draws(rates, seed=42)
    assert first == _draws(rates, seed=42)
    counts = Counter(first)
    assert 120 < counts[500] < 280
    assert 40 < counts[429] < 160
    assert 10 < counts["drop"] < 80
    assert counts[503] == 0
    assert _draws({"500": 1.0}, seed=1, count=5) == [500] * 5  # JSON-style string keys


def test_rates_apply_per_request(emu: Emulator, api: Api) -> None:
    emu.faults.set_rates({503: 1.0})
    assert api.get("/v1/orders").status_code == 503
    emu.faults.clear()
    assert api.get("/v1/orders").status_code == 200


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        ("script", [200]),
        ("script", ["boom"]),
        ("set_rates", {500: 1.5}),
        ("set_rates", {500: 0.6, 503: 0.6}),
    ],
)
def test_bad_fault_settings_are_refused(call: str, arg: object) -> None:
    with pytest.raises(ValueError):
        getattr(Faults(), call)(arg)


def test_latency_is_added(emu: Emulator, api: Api) -> None:
    emu.faults.latency = 0.05
    started = time.perf_counter()
    api.get("/v1/orders")
    assert time.perf_counter() - started >= 0.05


def test_reset_clears_faults(emu: Emulator, api: Api) -> None:
    emu.faults.script([500])
    emu.faults.latency = 1.0
    emu.reset()
    assert emu.faults.latency == 0
    assert api.get("/v1/orders").status_code == 200
