"""The HTTP door, its control endpoints, the command line and the pytest fixtures."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from django_voucherify_orders.emulator import Emulator

from .conftest import AUTH, Api, poll_until_done


def test_round_trip_and_auth(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    created = api.post("/v1/orders", json={"source_id": "H/1 x", "amount": 5})
    assert created.status_code == 200
    assert created.headers["Content-Type"] == "application/json; charset=utf-8"
    assert created.headers["Content-Length"] == str(len(created.content))
    assert api.get("/v1/orders/H%2F1%20x").json()["id"] == created.json()["id"]
    assert Api(api.base, headers={}).get("/v1/orders").status_code == 401
    assert emu.url == emu.base_url == emu.download_url == api.base


def test_export_download_link_points_at_the_server(served: tuple[Emulator, Api]) -> None:
    _, api = served
    api.post("/v1/orders", json={"source_id": "E-1"})
    export = api.post("/v1/orders/export", json={}).json()
    url = poll_until_done(api, f"/v1/exports/{export['id']}")["result"]["url"]
    assert url.startswith(api.base + "/v1/exports/")
    download = api.get(url)
    assert download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "E-1" in download.text


def test_keep_alive_throughput_over_one_connection(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    api.post("/v1/orders", json={"source_id": "K"})
    count = 300
    started = time.perf_counter()
    for _ in range(count):
        assert api.get("/v1/orders/K").status_code == 200
    elapsed = time.perf_counter() - started
    pools = api.session.get_adapter(api.base).poolmanager.pools
    opened = [pools[key].num_connections for key in pools.keys()]  # noqa: SIM118
    assert opened == [1]  # every request went over one keep-alive connection
    print(f"\nHTTP door, one keep-alive requests.Session: {count / elapsed:.0f} req/s")
    assert emu.count("GET", "/v1/orders/K") == count


def test_drop_closes_the_connection_and_the_next_one_works(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    emu.faults.script(["drop"])
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("/v1/orders")
    assert api.get("/v1/orders").status_code == 200
    assert [r.status for r in emu.requests] == [0, 200]


def test_injected_5xx_and_latency_over_http(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    emu.faults.script([503])
    emu.faults.latency = 0.03
    started = time.perf_counter()
    response = api.get("/v1/orders")
    assert time.perf_counter() - started >= 0.03
    assert response.status_code == 503
    assert response.json()["key"] == "service_unavailable"


def test_chunked_request_body(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    chunks = (part for part in (b'[{"source_id": ', b'"chunked"}]'))
    response = api.post("/v1/orders/import", data=chunks)
    assert response.status_code == 200, response.text
    emu.finish_async()
    assert emu.get_order("chunked") is not None


def _raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_expect_continue_connection_close_and_bad_requests(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    port = int(api.base.rsplit(":", 1)[1])
    body = b'{"source_id": "curl"}'
    request = (
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nX-App-Id: test-app-id\r\n"
        b"X-App-Token: test-secret-key\r\nExpect: 100-continue\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = _raw_exchange(port, request)  # returns because the server closes
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert b"Connection: close\r\n" in answer
    assert emu.get_order("curl") is not None
    assert _raw_exchange(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_control_endpoints(served: tuple[Emulator, Api]) -> None:
    emu, api = served
    control = Api(api.base, headers={})  # no credentials needed
    assert control.get("/_emulator/health").json() == {"ok": True}
    api.post("/v1/orders", json={"source_id": "C-1"})
    assert [o["source_id"] for o in control.get("/_emulator/orders").json()] == ["C-1"]

    faults = {"script": [500, "drop"], "latency_ms": 1, "retry_after": 3}
    assert control.post("/_emulator/faults", json=faults).json() == {"ok": True}
    assert emu.faults.latency == 0.001 and emu.faults.retry_after == 3
    assert api.get("/v1/orders").status_code == 500
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get("/v1/orders")
    control.post("/_emulator/faults", json={"rates": {"429": 1.0}, "seed": 1})
    assert api.get("/v1/orders").status_code == 429
    control.post("/_emulator/faults", json={"clear": True})
    assert api.get("/v1/orders").status_code == 200
    assert control.post("/_emulator/faults", json={"script": ["nope"]}).status_code == 400

    action = api.post("/v1/orders/import", json=[{"source_id": "C-2"}]).json()
    assert control.post("/_emulator/finish-async").json() == {"ok": True}
    assert api.get(f"/v1/async-actions/{action['async_action_id']}").json()["status"] == "DONE"

    counts = control.get("/_emulator/requests").json()
    assert counts["total"] == len(emu.requests) == 7  # control calls are not counted
    assert counts["by_status"]["200"] == 4
    assert counts["by_endpoint"]["GET /v1/orders"] == 4

    assert control.post("/_emulator/reset").json() == {"ok": True}
    assert control.get("/_emulator/orders").json() == []
    assert control.get("/_emulator/nothing").status_code == 404


def test_control_endpoints_are_not_rate_limited() -> None:
    emu = Emulator("a", "k", rate_limit_per_minute=1)
    with emu.serve() as server:
        api = Api(server.url, headers={"X-App-Id": "a", "X-App-Token": "k"})
        assert api.get("/v1/orders").status_code == 200
        assert api.get("/v1/orders").status_code == 429
        for _ in range(3):
            assert api.get("/_emulator/health").status_code == 200


def test_shutdown_closes_idle_keep_alive_connections() -> None:
    emu = Emulator("a", "k")
    server = emu.serve()
    session = requests.Session()
    session.get(server.url + "/_emulator/health")  # leaves an idle keep-alive connection
    started = time.perf_counter()
    server.shutdown()
    assert time.perf_counter() - started < 3
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/_emulator/health", timeout=2)


# -- command line ---------------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "django_voucherify_orders.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("Voucherify emulator listening on "):
            return process, line.split(" on ", 1)[1].strip()
        if not line and process.poll() is not None:
            break
    process.kill()
    errors = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"no listening line: {lines!r} {errors}")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    process, url = _start_cli("--fault-script", "503", "--rate-limit", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        headers = {"X-App-Id": "emulator-app-id", "X-App-Token": "emulator-secret-key"}
        assert requests.get(url + "/v1/orders", headers=headers, timeout=5).status_code == 503
        listed = requests.get(url + "/v1/orders", headers=headers, timeout=5)
        assert listed.status_code == 200
        assert listed.headers["X-Rate-Limit-Limit"] == "1000000"
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read() if process.stdout else ""
    assert "Voucherify emulator stopped" in output
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/_emulator/health", timeout=2)


def test_cli_prints_default_credentials_and_accepts_given_ones() -> None:
    process, url = _start_cli("--app-id", "id-1", "--secret-key", "key-1")
    try:
        given = {"X-App-Id": "id-1", "X-App-Token": "key-1"}
        ok = requests.get(url + "/v1/orders", headers=given, timeout=5)
        assert ok.status_code == 200
        assert ok.headers["X-Rate-Limit-Limit"] == "2000"
    finally:
        process.terminate()
        process.wait(timeout=10)
    defaults = subprocess.run(
        [sys.executable, "-m", "django_voucherify_orders.emulator", "--fault-rate", "500=2"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert defaults.returncode == 2  # a bad rate is refused before listening
    assert "Using default credentials: X-App-Id=emulator-app-id" in defaults.stdout


# -- pytest fixtures (registered through the pytest11 entry point) ---------------------------


def test_plugin_fixture_with_responses(voucherify_emulator: Emulator) -> None:
    response = requests.post(
        "https://api.voucherify.io/v1/orders", json={"source_id": "fx"}, headers=AUTH, timeout=5
    )
    assert response.status_code == 200
    assert voucherify_emulator.get_order("fx") is not None
    assert voucherify_emulator.rate_limit_per_minute is None


def test_plugin_fixture_with_http(voucherify_emulator_server: Emulator) -> None:
    emu = voucherify_emulator_server
    assert emu.url is not None and emu.url.startswith("http://127.0.0.1:")
    assert emu.base_url == emu.download_url == emu.url
    response = requests.get(emu.url + "/v1/orders", headers=AUTH, timeout=5)
    assert response.status_code == 200


def test_the_emulator_imports_no_django_and_nothing_else_of_the_package() -> None:
    code = (
        "import sys, django_voucherify_orders.emulator as e, "
        "django_voucherify_orders.emulator.pytest_plugin, "
        "django_voucherify_orders.emulator.http_door, django_voucherify_orders.emulator.__main__\n"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.') "
        "or m in ('requests', 'responses') "
        "or (m.startswith('django_voucherify_orders.') "
        "and not m.startswith('django_voucherify_orders.emulator'))]\n"
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
