"""The sweep, as Celery beat runs it: it re-enqueues what was never delivered, once per
SWEEP_AFTER, leaves alone what a worker is pushing, and does nothing with AUTO_SYNC off.

Its clock is passed in (``sweep(now=...)``); the broker records what it is given.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import publisher, sweep


def _settings(**changes) -> dict:
    from django.conf import settings

    return {**settings.VOUCHERIFY_ORDERS, **changes}


@pytest.fixture
def broker(monkeypatch):
    """The order keys of each push task sent (none runs)."""
    sent: list[list[str]] = []
    monkeypatch.setattr(publisher, "_send_task", lambda task, batch, *args: sent.append(batch))
    return sent


@pytest.fixture
def lost(shop):
    """A committed order whose push was never queued (a broker outage at commit)."""
    with paused_sync():
        order = shop.order(status="paid")
    return str(order.pk)


def later(seconds: float = 0.0):
    """The sweep's clock once a row has been left alone for SWEEP_AFTER, plus ``seconds``."""
    return timezone.now() + timedelta(seconds=get_settings().sweep_after + 1 + seconds)


def test_a_row_a_worker_is_pushing_is_left_alone(lost, broker):
    now = later()
    OrderSync.objects.filter(pk=lost).update(
        lease_until=now + timedelta(minutes=5), lease_token="a-worker"
    )
    due = OrderSync.objects.get(pk=lost).next_attempt_at

    assert sweep(now=now) == 0

    assert broker == []
    row = OrderSync.objects.get(pk=lost)
    assert row.next_attempt_at == due and row.lease_token == "a-worker"


def test_a_row_whose_worker_died_mid_push_is_swept_once_its_lease_ran_out(lost, broker):
    now = later()
    OrderSync.objects.filter(pk=lost).update(
        lease_until=now - timedelta(seconds=1), lease_token="a-dead-worker"
    )

    assert sweep(now=now) == 1

    assert broker == [[lost]]


def test_a_swept_row_is_not_queued_again_by_the_next_sweeps(lost, broker):
    """The re-enqueued push may wait in a long queue: the sweeps every few seconds meanwhile
    must not add copies of it; one SWEEP_AFTER later, it is due again (the copy was lost)."""
    now = later()
    sweep_after = timedelta(seconds=get_settings().sweep_after)

    assert sweep(now=now) == 1
    assert OrderSync.objects.get(pk=lost).next_attempt_at == now + sweep_after
    assert sweep(now=now + timedelta(seconds=1)) == 0
    assert sweep(now=now + sweep_after - timedelta(seconds=1)) == 0
    assert broker == [[lost]]

    assert sweep(now=now + sweep_after) == 1
    assert broker == [[lost], [lost]]


def test_the_sweep_does_nothing_with_auto_sync_off(lost, broker):
    due = OrderSync.objects.get(pk=lost).next_attempt_at
    with override_settings(VOUCHERIFY_ORDERS=_settings(AUTO_SYNC=False)):
        assert sweep(now=later()) == 0

    assert broker == []
    row = OrderSync.objects.get(pk=lost)
    assert row.state == SyncState.PENDING and row.next_attempt_at == due

    assert sweep(now=later()) == 1  # switched back on, it catches up
    assert broker == [[lost]]
