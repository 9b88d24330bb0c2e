"""A push that waited for a rate-limit slot renews its lease before the call, or leaves
the order to the worker that took it meanwhile (the wait is on a fake clock)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync
from django_voucherify_orders.sync import engine, push

from .conftest import remote


class Monotonic:
    """The engine's time.monotonic, moved by the test's slot waits only."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def order(shop):
    with paused_sync():
        return shop.order(status="paid")


def wait_for_a_slot(seconds: float, meanwhile=lambda: None):
    """Patch the limiter: the slot comes after ``seconds`` (on the fake clock)."""
    clock = Monotonic()

    def acquire(max_wait):
        clock.now += seconds
        meanwhile()
        return 0.0

    return (
        mock.patch.object(engine, "time", clock),
        mock.patch.object(engine.SharedRateLimiter, "acquire", side_effect=acquire),
    )


def test_a_push_that_waited_for_a_slot_renews_its_lease_before_the_call(order, emulator):
    key = str(order.pk)
    seen: list = []
    handle = emulator.handle

    def door(method, url, headers, body=b""):
        seen.append(OrderSync.objects.get(pk=key).lease_until - timezone.now())
        return handle(method, url, headers, body)

    def the_lease_nearly_ran_out():
        OrderSync.objects.filter(pk=key).update(lease_until=timezone.now() + timedelta(seconds=1))

    clock, limiter = wait_for_a_slot(3.0, the_lease_nearly_ran_out)
    with clock, limiter, mock.patch.object(emulator, "handle", door):
        assert push(key).outcome == "pushed"

    assert seen and seen[0] > timedelta(seconds=60)  # LEASE_SECONDS (120) again
    assert remote(emulator, order)["status"] == "PAID"


def test_an_order_taken_while_the_push_waited_for_a_slot_is_left_to_its_taker(order, emulator):
    key = str(order.pk)

    def another_worker_takes_it():  # the lease ran out during the wait
        OrderSync.objects.filter(pk=key).update(lease_token="other-worker")

    clock, limiter = wait_for_a_slot(3.0, another_worker_takes_it)
    with clock, limiter:
        assert push(key).outcome == "busy"

    assert remote(emulator, order) is None  # never pushed by two workers at once
    assert OrderSync.objects.get(pk=key).lease_token == "other-worker"
