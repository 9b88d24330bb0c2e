"""pytest fixtures for the Voucherify emulator (registered as the `voucherify_emulator` plugin).

Loaded by every pytest run in an environment where this package is installed, so it
imports nothing heavy at import time: the emulator is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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
