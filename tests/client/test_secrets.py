"""The secret key never shows in logs, exception text or repr()."""

from __future__ import annotations

import logging

import pytest

from django_voucherify_orders.client import (
    RetryPolicy,
    VoucherifyClient,
    VoucherifyError,
)

SECRET = "test-secret-key"


def test_repr_of_the_client_hides_the_key(client):
    assert SECRET not in repr(client)
    assert SECRET not in str(vars(client).get("_session"))


def test_authentication_failure_hides_the_key(voucherify_emulator, caplog):
    wrong = "sk_live_definitely_secret_value"
    client = VoucherifyClient("test-app-id", wrong, retry=RetryPolicy(max_retries=0))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(VoucherifyError) as caught:
        client.get_order("o-1")

    error = caught.value
    assert error.status_code == 401 and error.key == "unauthorized"
    texts = [str(error), repr(error), repr(vars(error)), caplog.text]
    assert all(wrong not in text for text in texts)
    assert error.response.request.headers["X-App-Token"] == "********"


@pytest.mark.parametrize("fault", [500, 429, "drop"])
def test_failures_and_retry_logs_hide_the_key(client, voucherify_emulator, caplog, fault):
    caplog.set_level(logging.DEBUG)
    voucherify_emulator.faults.script([fault] * 5)
    with pytest.raises(VoucherifyError) as caught:
        client.get_order("o-1")

    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert SECRET not in text
    assert "retry 1 of 2" in caplog.text


def test_observers_see_each_attempt_without_the_key(voucherify_emulator):
    calls = []
    client = VoucherifyClient(
        "test-app-id", SECRET, observers=[calls.append], retry=RetryPolicy(backoff_base=0.001),
        sleep=lambda s: None,
    )  # fmt: skip
    voucherify_emulator.faults.script([503])
    client.create_order({"source_id": "o-1"})

    assert [c.status_code for c in calls] == [503, 200]
    assert calls[0].error and "HTTP 503" in calls[0].error
    assert calls[1].response_excerpt.startswith("{")
    assert all(SECRET not in repr(call) for call in calls)


def test_body_logging_shows_the_bodies_but_not_the_key(voucherify_emulator, caplog):
    caplog.set_level(logging.DEBUG, logger="django_voucherify_orders.client.bodies")
    client = VoucherifyClient("test-app-id", SECRET, log_bodies=True, retry=RetryPolicy(0))
    client.create_order({"source_id": "o-1", "amount": 1234})
    voucherify_emulator.faults.script([500])
    with pytest.raises(VoucherifyError):
        client.get_order("o-1")

    bodies = [r.getMessage() for r in caplog.records if r.name.endswith(".bodies")]
    assert len(bodies) == 4  # two requests, two responses
    assert '"amount": 1234' in bodies[0] and '"source_id":"o-1"' in bodies[1].replace(" ", "")
    assert "500" in bodies[3]
    assert all(SECRET not in text for text in bodies)


def test_bodies_are_not_logged_unless_asked_for(client, voucherify_emulator, caplog):
    caplog.set_level(logging.DEBUG)
    client.create_order({"source_id": "o-1", "amount": 1234})
    assert not [r for r in caplog.records if r.name.endswith(".bodies")]
