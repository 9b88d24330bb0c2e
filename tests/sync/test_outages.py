"""Voucherify down for hours, or refusing the credentials: no order is lost or failed
before RETRY_FOR, and a 401/403 pauses every push until the credentials work again.

The engine's clock is ``django.utils.timezone.now``: the ``clock`` fixture moves it, so a
day of outage takes no real time.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta
from html import unescape
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.checks import Tags, run_checks
from django.test import Client
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import due_for_push, outage, push, push_many
from django_voucherify_orders.tasks import push_orders

from .conftest import remote

DAY = 86400.0
HEALTH = "/admin/voucherify_orders/ordersync/health/"
PAUSED = "Pushes paused: Voucherify refused the credentials since"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock(timezone.now())
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def defaults(settings) -> dict:
    """The shipped retry policy (the test settings shrink the backoff to milliseconds)."""
    settings.VOUCHERIFY_ORDERS = {
        key: value
        for key, value in settings.VOUCHERIFY_ORDERS.items()
        if key not in ("RETRY_BACKOFF_BASE", "RETRY_BACKOFF_MAX")
    }
    return settings.VOUCHERIFY_ORDERS


def row_of(order) -> OrderSync:
    return OrderSync.objects.get(pk=str(order.pk))


def quiet_order(shop, **fields):
    """An order saved without its push: the test pushes it, on its own clock."""
    with paused_sync():
        return shop.order(**fields)


# --- transient failures ---------------------------------------------------------------------


@pytest.mark.parametrize("fault", [503, "drop"], ids=["503", "timeout"])
def test_a_day_of_failures_keeps_the_order_pending_then_fails_it_after_retry_for(
    shop, emulator, clock, defaults, fault
):
    order = quiet_order(shop, status="paid")
    emulator.faults.set_rates({fault: 1.0})
    started = clock.now

    waits = []
    while True:
        result = push(str(order.pk))
        row = row_of(order)
        if row.state != SyncState.PENDING:
            break
        # Pending and visible as retrying, from the first failure of the run.
        assert result.outcome == "retry"
        assert row.attempts == len(waits) + 1 and row.first_failed_at == started
        assert row.last_error_key in ("service_unavailable", "VoucherifyTransportError")
        wait = (row.next_attempt_at - clock.now).total_seconds()
        assert 0 <= wait <= 600  # RETRY_BACKOFF_MAX
        assert result.retry_in == pytest.approx(wait, abs=0.001)
        waits.append(wait)
        # The sweep brings it back at its time, not before.
        assert due_for_push(row.next_attempt_at, grace=0).filter(pk=row.pk).exists()
        if wait >= 1:
            early = row.next_attempt_at - timedelta(seconds=1)
            assert not due_for_push(early, grace=0).filter(pk=row.pk).exists()
        clock.now = row.next_attempt_at

    assert row.state == SyncState.FAILED
    # The last try is at RETRY_FOR; after a dropped write, not before that write could
    # still land (connect + read timeout), so at most that much later.
    late = 0 if fault == 503 else get_settings().connect_timeout + get_settings().read_timeout
    assert DAY <= (clock.now - started).total_seconds() <= DAY + late
    assert row.attempts == len(waits) + 1 == emulator.count(path_prefix="/v1/orders")
    assert len(waits) > 24 * 3600 / 600  # retried all day long, never more than 10 min apart
    assert max(waits) > 300  # the backoff reached its cap


def test_voucherify_back_after_six_hours_gets_the_order_as_it_is_now(
    shop, emulator, clock, defaults
):
    order = quiet_order(shop, status="paid")
    emulator.faults.set_rates({503: 1.0})
    for hour in range(6):
        if hour == 3:  # the shop changes the order during the outage
            order.status = "shipped"
            with paused_sync():
                order.save()
        while clock.now < order.created_at + timedelta(hours=hour + 1):
            assert push(str(order.pk)).outcome == "retry"
            clock.now = row_of(order).next_attempt_at
    assert row_of(order).state == SyncState.PENDING
    page = admin_page("/admin/voucherify_orders/ordersync/")
    assert ">retrying<" in page and "Service Unavailable" in page

    emulator.faults.clear()
    assert push(str(order.pk)).outcome == "pushed"

    row = row_of(order)
    assert (row.state, row.attempts, row.last_error_key) == (SyncState.SYNCED, 0, "")
    assert remote(emulator, order)["status"] == "FULFILLED"
    assert not OrderSync.objects.filter(state=SyncState.FAILED).exists()


def test_a_change_starts_a_new_run_of_failures(shop, emulator, clock, defaults):
    order = quiet_order(shop, status="paid")
    emulator.faults.set_rates({503: 1.0})
    push(str(order.pk))
    clock.advance(DAY - 10)
    order.status = "shipped"
    with paused_sync():
        order.save()
    push(str(order.pk))
    clock.advance(20)

    assert push(str(order.pk)).outcome == "retry"  # 24 h after the first failure, not of this run
    assert row_of(order).first_failed_at == clock.now - timedelta(seconds=20)


def test_a_long_retry_after_is_honoured_beyond_the_backoff_cap(shop, emulator, clock, defaults):
    order = quiet_order(shop, status="paid")
    emulator.faults.retry_after = 900
    emulator.faults.script([429])

    result = push(str(order.pk))

    wait = (row_of(order).next_attempt_at - clock.now).total_seconds()
    assert result.outcome == "retry" and 900 <= wait <= 902


def test_max_attempts_set_still_caps_the_tries_and_the_check_says_so(
    shop, emulator, clock, settings
):
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "MAX_ATTEMPTS": 8}
    order = quiet_order(shop, status="paid")
    emulator.faults.set_rates({503: 1.0})
    for _ in range(8):
        push(str(order.pk))

    assert (row_of(order).state, row_of(order).attempts) == (SyncState.FAILED, 8)
    warnings = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "vo.W003"]
    assert len(warnings) == 1 and "RETRY_FOR" in warnings[0].msg


def test_without_max_attempts_no_warning(defaults):
    assert not [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "vo.W003"]


# --- refused credentials ----------------------------------------------------------------------


def admin_page(url: str) -> str:
    user = User.objects.filter(username="boss").first() or User.objects.create_superuser(
        "boss", "boss@example.com", "pw"
    )
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def health_page() -> str:
    return admin_page(HEALTH)


def outcomes(results) -> set[str]:
    return {result.outcome for result in results.values()}


def test_a_refused_key_pauses_every_push_probes_and_resumes_by_itself(
    shop, emulator, clock, caplog
):
    caplog.set_level(logging.INFO, logger="django_voucherify_orders.sync")
    orders = [quiet_order(shop, status="paid") for _ in range(3)]
    keys = [str(order.pk) for order in orders]
    good_key, emulator.secret_key = emulator.secret_key, "rotated-in-the-dashboard"

    results = push_many(keys)  # the first push is refused: the batch stops there

    assert outcomes(results) == {"paused"}
    assert {result.retry_in for result in results.values()} == {60.0}  # AUTH_PROBE_EVERY
    assert emulator.count(path_prefix="/v1/orders") == 1
    assert row_of(orders[0]).last_error_status == 401
    for order in orders:
        row = row_of(order)
        assert (row.state, row.attempts) == (SyncState.PENDING, 0)
    assert PAUSED in health_page()

    clock.advance(30)  # before the probe: nothing is leased, nothing sent
    results = push_many(keys)
    assert outcomes(results) == {"paused"} and results[keys[0]].retry_in == 30.0
    assert emulator.count(path_prefix="/v1/orders") == 1
    assert not OrderSync.objects.filter(lease_token__gt="").exists()

    clock.advance(30)  # the probe: refused again, the pause goes on
    assert outcomes(push_many(keys)) == {"paused"}
    assert emulator.count(path_prefix="/v1/orders") == 2
    assert outage.current_pause().since == clock.now - timedelta(seconds=60)

    emulator.secret_key = good_key  # fixed in Voucherify's dashboard
    clock.advance(60)
    assert outcomes(push_many(keys)) == {"pushed"}

    assert outage.current_pause() is None
    assert PAUSED not in health_page()
    for order in orders:
        assert row_of(order).state == SyncState.SYNCED
        assert remote(emulator, order)["status"] == "PAID"
    logged = [r.getMessage() for r in caplog.records]
    assert len([m for m in logged if "refused the credentials" in m]) == 1  # once, not per order
    assert len([m for m in logged if "accepts the credentials again" in m]) == 1


def test_fixing_the_settings_resumes_at_once(shop, emulator, clock, settings):
    configured = settings.VOUCHERIFY_ORDERS
    settings.VOUCHERIFY_ORDERS = {**configured, "SECRET_KEY": "a-mistyped-key"}
    order = shop.order(status="paid")  # pushed after commit (eagerly), refused
    assert row_of(order).state == SyncState.PENDING
    assert OrderSync.objects.filter(state=SyncState.FAILED).count() == 0
    assert PAUSED in health_page()

    settings.VOUCHERIFY_ORDERS = configured  # other credentials: no wait for the probe
    assert push(str(order.pk)).outcome == "pushed"

    assert remote(emulator, order)["status"] == "PAID"
    assert outage.current_pause() is None


def test_a_long_credentials_pause_does_not_count_towards_retry_for(shop, emulator, clock, defaults):
    order = quiet_order(shop, status="paid")
    emulator.faults.script([503])
    push(str(order.pk))  # a run of transient failures begins
    good_key, emulator.secret_key = emulator.secret_key, "rotated-on-friday"
    clock.advance(60)
    assert push(str(order.pk)).outcome == "paused"
    clock.advance(3 * DAY)  # fixed on Monday
    emulator.secret_key = good_key
    emulator.faults.script([503])

    assert push(str(order.pk)).outcome == "retry"  # the probe: a 503, but not failed
    assert row_of(order).attempts == 1
    assert outage.current_pause() is not None  # a 503 proves nothing about the key
    clock.now = row_of(order).next_attempt_at
    assert push(str(order.pk)).outcome == "paused"  # one probe per AUTH_PROBE_EVERY
    clock.advance(60)
    assert push(str(order.pk)).outcome == "pushed"
    assert outage.current_pause() is None


def test_a_403_pauses_too(shop, emulator, clock):
    order = quiet_order(shop, status="paid")
    emulator.faults.script([403])

    assert push(str(order.pk)).outcome == "paused"
    assert row_of(order).state == SyncState.PENDING
    assert outage.current_pause().status == 403


def test_one_worker_probes_the_others_wait(shop, emulator, clock, settings):
    from django_voucherify_orders.conf import get_settings

    order = quiet_order(shop, status="paid")
    emulator.faults.script([401])
    push(str(order.pk))
    clock.advance(60)

    config = get_settings()
    assert outage.wait_for_credentials(config) is None  # this worker probes
    assert outage.wait_for_credentials(config) == outage.PROBE_BUSY_WAIT  # the next waits


def test_paused_pushes_are_queued_again_for_the_probe_and_the_sweep_leaves_them(
    shop, emulator, clock, monkeypatch
):
    order = quiet_order(shop, status="paid")
    emulator.faults.script([401])
    sent = []
    monkeypatch.setitem(push_orders.app.conf, "task_always_eager", False)
    with mock.patch.object(
        push_orders,
        "apply_async",
        side_effect=lambda args, countdown=None, **kw: sent.append((args[0], countdown)),
    ):
        assert push_orders.run([str(order.pk)]) == {str(order.pk): "paused"}
        assert sent == [([str(order.pk)], 60.0)]
        clock.advance(30)
        assert push_orders.run([str(order.pk)]) == {str(order.pk): "paused"}
        assert sent[-1] == ([str(order.pk)], 30.0)

    later = clock.now + timedelta(seconds=60)  # a sweep after SWEEP_AFTER, before the probe
    assert not due_for_push(later, grace=0).exists()


def test_a_cache_outage_does_not_fail_a_push(shop, emulator, clock):
    broken = mock.Mock(**{f"{name}.side_effect": ConnectionError("cache down") for name in (
        "get", "add", "set", "delete"
    )})  # fmt: skip
    order = quiet_order(shop, status="paid")
    emulator.faults.script([401])
    with mock.patch.object(outage, "cache", broken):
        assert push(str(order.pk)).outcome == "paused"  # no switch, but no failure either
        assert row_of(order).state == SyncState.PENDING
        assert push(str(order.pk)).outcome == "pushed"
    assert row_of(order).state == SyncState.SYNCED


def test_voucherify_sync_inline_says_the_pushes_are_paused_and_exits_non_zero(
    shop, emulator, clock
):
    from django.core.management import CommandError, call_command

    order = quiet_order(shop, status="paid")
    emulator.secret_key = "rotated-in-the-dashboard"
    out = io.StringIO()

    with pytest.raises(CommandError, match="refused the credentials"):
        call_command("voucherify_sync", "--inline", stdout=out)

    assert "1 paused" in out.getvalue()
    assert row_of(order).state == SyncState.PENDING  # nobody's fault: not failed
