from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone


@pytest.fixture
def emulator(voucherify_emulator):
    return voucherify_emulator


def remote(emulator, order):
    return emulator.get_order(str(order.pk))


@pytest.fixture
def clock():
    """Django's clock (``timezone.now``), moved forward by the test: leases, retry times
    and the sweep's grace pass without waiting. Real time still runs underneath."""
    real_now = timezone.now

    class Clock:
        offset = timedelta()

        def now(self):
            return real_now() + self.offset

        def advance(self, seconds: float) -> None:
            self.offset += timedelta(seconds=seconds)

    moved = Clock()
    with mock.patch("django.utils.timezone.now", moved.now):
        yield moved
