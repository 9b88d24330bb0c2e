"""Fixtures for the emulator's own tests: plain pytest, no Django."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from django_voucherify_orders.emulator import Emulator

APP_ID = "test-app-id"
SECRET = "test-secret-key"
AUTH = {"X-App-Id": APP_ID, "X-App-Token": SECRET}
BASE = "https://api.voucherify.io"


class FakeClock:
    """An injectable clock: tests move time by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A requests.Session bound to one base URL, with or without credentials."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(AUTH if headers is None else headers)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[Emulator]:
    """An emulator behind the responses door, unlimited, with a hand-moved clock."""
    emulator = Emulator(APP_ID, SECRET, base_url=BASE, rate_limit_per_minute=None, clock=clock)
    with emulator.mock():
        yield emulator


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(BASE)


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[Emulator, Api]]:
    """An emulator behind the HTTP door, and a client for it."""
    emulator = Emulator(APP_ID, SECRET, rate_limit_per_minute=None, clock=clock)
    with emulator.serve() as server:
        yield emulator, Api(server.url)


def item(**overrides: Any) -> dict[str, Any]:
    return {"product_id": "prod_1", "quantity": 1, "price": 1000, **overrides}


def poll_until_done(api: Api, path: str, limit: int = 20) -> dict[str, Any]:
    for _ in range(limit):
        body = api.get(path).json()
        if body["status"] in ("DONE", "ERROR"):
            return body
    raise AssertionError(f"{path} never finished")
