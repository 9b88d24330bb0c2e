from __future__ import annotations

import pytest


@pytest.fixture
def emulator(voucherify_emulator):
    return voucherify_emulator


def remote(emulator, order):
    return emulator.get_order(str(order.pk))
