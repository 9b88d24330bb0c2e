from __future__ import annotations

import pytest

from django_voucherify_orders.client import RetryPolicy, VoucherifyClient

API_URL = "https://api.voucherify.io"
APP_ID = "test-app-id"
SECRET = "test-secret-key"


class SleepRecorder:
    """Stands in for time.sleep: records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(voucherify_emulator, sleeps) -> VoucherifyClient:
    with VoucherifyClient(
        APP_ID,
        SECRET,
        API_URL,
        retry=RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.05, max_wait=5),
        sleep=sleeps,
    ) as client:
        yield client
