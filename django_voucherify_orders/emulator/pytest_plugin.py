"""pytest fixtures for the Voucherify emulator (registered as the `voucherify_emulator` plugin).

Loaded by every pytest run in an environment where this package is installed, so it
imports nothing heavy at import time: the emulator is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .app import Emulator

APP_ID = "test-app-id"
SECRET_KEY = "test-secret-key"  # noqa: S105 - a fixed credential of the in-memory emulator


@pytest.fixture
def voucherify_emulator() -> Iterator[Emulator]:
    """An Emulator at https://api.voucherify.io behind `responses` for this test."""
    from .app import Emulator

    emu = Emulator(
        APP_ID, SECRET_KEY, base_url="https://api.voucherify.io", rate_limit_per_minute=None
    )
    with emu.mock():
        yield emu


@pytest.fixture
def voucherify_emulator_server() -> Iterator[Emulator]:
    """An Emulator served over real HTTP on 127.0.0.1; its URL is `emu.url` (= base_url)."""
    from .app import Emulator

    emu = Emulator(APP_ID, SECRET_KEY, rate_limit_per_minute=None)
    with emu.serve("127.0.0.1", 0):
        yield emu


@pytest.fixture
def voucherify_retry_at_once(request: pytest.FixtureRequest, settings: Any) -> None:
    """Retries without waiting: no backoff between tries (the client's and the sync
    engine's) and injected 429s that ask for no wait, so ``faults.script([503, 429])``
    costs a test no time. Uses pytest-django's ``settings`` fixture."""
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        "HTTP_BACKOFF_BASE": 0,
        "RETRY_BACKOFF_BASE": 0,
    }
    for name in ("voucherify_emulator", "voucherify_emulator_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).faults.retry_after = 0
