"""The credentials never follow a redirect to another host.

`requests` drops only `Authorization` when a redirect leaves the host, so `X-App-Id` and
`X-App-Token` would go wherever a 3xx points. Two local servers stand in for Voucherify (the
configured API URL) and for an unrelated host on another port, which records what it gets.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from django_voucherify_orders.client import RetryPolicy, VoucherifyClient

APP_ID = "redirect-app-id"
SECRET = "redirect-secret-token"


class Server:
    """A local HTTP server that records each request's path and headers."""

    def __init__(self, answer) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append((self.path, dict(self.headers)))
                status, headers, body = answer(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def headers_seen(self, path_prefix: str) -> list[dict[str, str]]:
        return [h for p, h in self.seen if p.startswith(path_prefix)]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _elsewhere_answer(path: str) -> tuple[int, dict[str, str], bytes]:
    if path.startswith("/v1/orders/"):
        order = {"id": "ord_elsewhere", "object": "order", "status": "CREATED"}
        return 200, {"Content-Type": "application/json"}, json.dumps(order).encode()
    return 200, {"Content-Type": "text/plain"}, b"id,source_id,status\n"


@pytest.fixture
def elsewhere() -> Iterator[Server]:
    """Another host (another port): it must never see the credentials."""
    with Server(_elsewhere_answer) as server:
        yield server


@pytest.fixture
def voucherify(elsewhere: Server) -> Iterator[Server]:
    """The configured API host: every request is redirected to `elsewhere`, except /same/."""

    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/same/"):
            return 302, {"Location": path.removeprefix("/same")}, b""
        return 302, {"Location": elsewhere.url + path}, b""

    with Server(answer) as server:
        yield server


@pytest.fixture
def client(voucherify: Server) -> Iterator[VoucherifyClient]:
    with VoucherifyClient(
        APP_ID, SECRET, voucherify.url, retry=RetryPolicy(max_retries=0), sleep=lambda s: None
    ) as client:
        yield client


def _has_credentials(headers: dict[str, str]) -> bool:
    names = {name.lower() for name in headers}
    values = set(headers.values())
    return bool({"x-app-id", "x-app-token"} & names) or SECRET in values or APP_ID in values


def test_get_order_redirected_elsewhere_does_not_send_the_credentials(
    client, voucherify, elsewhere
):
    order = client.get_order("ord_1")

    assert order.id == "ord_elsewhere"  # the redirect was followed
    assert [_has_credentials(h) for h in voucherify.headers_seen("/v1/orders/")] == [True]
    assert [_has_credentials(h) for h in elsewhere.headers_seen("/v1/orders/")] == [False]


def test_download_redirected_elsewhere_does_not_send_the_credentials(client, voucherify, elsewhere):
    sink = io.BytesIO()
    written = client.download_export(f"{voucherify.url}/v1/exports/exp_1?token=t", sink)

    assert sink.getvalue() == b"id,source_id,status\n" and written == len(sink.getvalue())
    assert [_has_credentials(h) for h in voucherify.headers_seen("/v1/exports/")] == [True]
    assert [_has_credentials(h) for h in elsewhere.headers_seen("/v1/exports/")] == [False]


def test_a_redirect_on_voucherifys_own_host_keeps_the_credentials(client, voucherify, elsewhere):
    # /same/v1/orders/x -> /v1/orders/x on the same host -> elsewhere.
    client._call("GET", "/same/v1/orders/ord_2", None)

    own = voucherify.headers_seen("/same/") + voucherify.headers_seen("/v1/orders/")
    assert [_has_credentials(h) for h in own] == [True, True]
    assert [_has_credentials(h) for h in elsewhere.headers_seen("/v1/orders/")] == [False]


@pytest.mark.parametrize(
    ("api_url", "trusted", "untrusted"),
    [
        (
            "https://api.voucherify.io",
            ["https://api.voucherify.io/v1/x", "https://download.voucherify.io/v1/exports/e"],
            [
                "https://us1.download.voucherify.io/v1/exports/e",
                "https://evil.voucherify.io/v1/x",
                "http://download.voucherify.io/v1/exports/e",
                "https://api.voucherify.io:8443/v1/x",
                "https://download.voucherify.io.evil.example/v1/x",
            ],
        ),
        (
            "https://us1.api.voucherify.io",
            ["https://us1.download.voucherify.io/v1/exports/e"],
            ["https://download.voucherify.io/v1/exports/e", "https://api.voucherify.io/v1/x"],
        ),
        (
            "http://127.0.0.1:8080",
            ["http://127.0.0.1:8080/v1/exports/e?token=t"],
            ["http://127.0.0.1:8081/v1/exports/e", "https://127.0.0.1:8080/v1/x"],
        ),
    ],
)
def test_credentials_go_to_the_api_host_and_its_regions_download_host_only(
    api_url, trusted, untrusted
):
    client = VoucherifyClient(APP_ID, SECRET, api_url)
    assert [client._trusted(url) for url in trusted] == [True] * len(trusted)
    assert [client._trusted(url) for url in untrusted] == [False] * len(untrusted)
