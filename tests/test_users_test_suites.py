"""What a shop's own test suite gets from the package's pytest plugin (docs/emulator.md)."""

from __future__ import annotations

import importlib
import sys
import time

import pytest
from django.conf import settings
from django.test import override_settings

from django_voucherify_orders.models import OrderSync, SyncState

# A user's settings keep the default backoffs (tests/settings.py shortens them).
USER_SETTINGS = {
    key: value
    for key, value in settings.VOUCHERIFY_ORDERS.items()
    if not key.endswith(("_BACKOFF_BASE", "_BACKOFF_MAX"))
}


@pytest.fixture
def waits(monkeypatch):
    """The seconds an eager push waited in-process for its retry (recorded, not slept)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def user_settings():
    with override_settings(VOUCHERIFY_ORDERS=USER_SETTINGS):
        yield


def test_injected_faults_make_a_users_test_wait(user_settings, shop, voucherify_emulator, waits):
    voucherify_emulator.faults.script([503, 429])
    order = shop.order()
    assert OrderSync.objects.get(order_pk=str(order.pk)).state == SyncState.SYNCED
    assert sum(waits) >= 1  # the 503's backoff and the 429's Retry-After, for real


def test_retry_at_once_retries_injected_faults_without_waiting(
    user_settings, shop, voucherify_emulator, voucherify_retry_at_once, waits
):
    voucherify_emulator.faults.script([503, 429])
    order = shop.order()
    assert OrderSync.objects.get(order_pk=str(order.pk)).state == SyncState.SYNCED
    assert voucherify_emulator.count("POST", "/v1/orders") == 3
    assert sum(waits) == 0


def test_retry_at_once_also_serves_the_http_door(
    user_settings, voucherify_emulator_server, voucherify_retry_at_once
):
    from django_voucherify_orders.conf import get_settings

    assert voucherify_emulator_server.faults.retry_after == 0
    assert get_settings().retry_backoff_base == get_settings().http_backoff_base == 0


def test_a_429_asking_for_no_wait_names_no_future_time(voucherify_emulator):
    import requests

    voucherify_emulator.faults.retry_after = 0
    voucherify_emulator.faults.script([429])
    response = requests.get(
        "https://api.voucherify.io/v1/orders",
        headers={"X-App-Id": "test-app-id", "X-App-Token": "test-secret-key"},
        timeout=5,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0"
    assert int(response.headers["X-Rate-Limit-Retry"]) <= time.time()


def test_without_responses_the_fixture_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "responses", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "django_voucherify_orders.emulator.responses_door")
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("django_voucherify_orders.emulator.responses_door")
    assert "pip install 'django-voucherify-orders[testing]'" in str(raised.value)


def test_the_testing_extra_brings_what_the_fixtures_need():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    testing = pyproject["project"]["optional-dependencies"]["testing"]
    assert any(r.startswith("responses") for r in testing)
    assert not any(r.startswith(("mypy", "playwright", "psycopg")) for r in testing)


def test_the_emulator_finds_an_order_by_an_integer_key(voucherify_emulator):
    """Oscar hands out order numbers as int until the instance is reloaded."""
    from django_voucherify_orders.conf import get_client

    get_client().create_order({"source_id": "12", "status": "PAID", "amount": 100})
    assert voucherify_emulator.get_order(12)["source_id"] == "12"
