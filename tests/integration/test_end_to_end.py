"""DESIGN.md's invariants end to end: real Celery workers over Redis, PostgreSQL, and the
emulator over HTTP. ``make test`` runs these in its PostgreSQL pass.

Each test starts its own workers on its own queue; saves happen in this process (the
shop), committed, so the workers see them.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from django.db import connections, transaction
from shop.models import Order, OrderItem

from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState

from .conftest import assert_remote_is_local, wait_until, writes

pytestmark = pytest.mark.integration


# 3. No stale overwrite, with two workers racing -----------------------------------------------


def test_concurrent_changes_on_two_workers_end_with_the_latest_state(harness, shop):
    emu = harness.emulator
    emu.faults.latency = 0.02  # pushes overlap with the changes that follow them
    harness.start_workers(2)
    orders = [shop.order(status="new", items=(("MUG", 1),)) for _ in range(3)]
    errors: list[BaseException] = []

    def shopper(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(12):
                with transaction.atomic():
                    order = Order.objects.select_for_update().get(pk=rng.choice(orders).pk)
                    action = rng.randrange(4)
                    item = order.items.order_by("?").first()
                    if action == 0:
                        order.status = rng.choice(Order.Status.values)
                        order.save()
                    elif action == 1 or item is None:
                        product = shop.products[rng.choice(list(shop.products))]
                        OrderItem.objects.create(
                            order=order, product=product, quantity=rng.randint(1, 5),
                            unit_price=product.price,
                        )  # fmt: skip
                    elif action == 2 and order.items.count() > 1:
                        item.delete()
                    else:
                        item.quantity = rng.randint(1, 9)
                        item.save()
                time.sleep(rng.uniform(0, 0.05))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=shopper, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    harness.wait_synced(orders, timeout=30)
    assert_remote_is_local(emu, orders)
    assert len(emu.orders()) == len(orders)
    assert all(status == 200 for _, _, status in emu.requests)
    pushes = {w.name: w.output(tail=10_000).count("push_orders[") for w in harness.workers}
    assert all(pushes.values()), f"one worker did all the work: {pushes}"


# 1. No lost change --------------------------------------------------------------------------


def test_broker_unreachable_at_commit_then_the_sweep_delivers(harness, shop, caplog):
    harness.start_workers(1)

    with harness.broker_unreachable():
        started = time.monotonic()
        order = shop.order(status="paid", items=(("MUG", 2), ("TEA", 1)))  # does not raise
        elapsed = time.monotonic() - started
    # 7. The request path stays fast: it did not wait for the broker (~6 s of reconnects).
    assert elapsed < 1.0, f"the commit took {elapsed:.1f} s"

    assert "the sweep will retry" in caplog.text
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.PENDING
    assert harness.emulator.count() == 0

    harness.wait_synced([order], timeout=30, beat=0.5)  # beat sends the sweep task
    assert_remote_is_local(harness.emulator, [order])


def _kill_mid_push(harness, shop):
    """Start a worker, save an order, SIGKILL the worker while its push is in flight
    (Voucherify answers after 1.5 s, and then drops the connection: nothing arrives)."""
    # A short lease, still longer than a request may take (docs/configuration.md), and
    # than a worker takes to restart, so that the restarted worker finds it held.
    harness.configure(LEASE_SECONDS=6, CONNECT_TIMEOUT=0.5, READ_TIMEOUT=2)
    emu = harness.emulator
    in_flight = threading.Event()
    handle = emu.handle

    def spy(method, url, headers, body=b""):
        if "/v1/orders" in url and method.upper() in ("POST", "PUT"):
            in_flight.set()
        return handle(method, url, headers, body)

    emu.handle = spy
    emu.faults.latency = 1.5
    emu.faults.script(["drop"])
    (worker,) = harness.start_workers(1)

    order = shop.order(status="paid")
    assert in_flight.wait(20), harness.describe()
    worker.kill()

    assert worker.process.poll() is not None
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.PENDING and row.lease_token, "the dead worker holds the lease"
    wait_until(lambda: emu.count() == 1, 10, lambda: str(emu.requests))  # the dropped call
    emu.faults.latency = 0
    return order


def _ship(order, shop):
    with transaction.atomic():
        order.status = Order.Status.SHIPPED
        order.save()
        OrderItem.objects.create(
            order=order, product=shop.products["TEA"], quantity=3, unit_price="8.00"
        )


def test_a_worker_killed_mid_push_then_lease_expiry_and_sweep_deliver(harness, shop):
    order = _kill_mid_push(harness, shop)
    _ship(order, shop)  # committed while no worker runs: its push waits in the queue
    assert harness.emulator.get_order(str(order.pk)) is None

    harness.start_workers(1)  # restarted: that push finds the dead worker's lease ("busy")
    harness.wait_synced([order], timeout=30, beat=0.5)  # lease expiry, then the sweep
    assert_remote_is_local(harness.emulator, [order])
    assert harness.emulator.get_order(str(order.pk))["status"] == "FULFILLED"


def test_a_push_held_by_a_killed_worker_is_swept(harness, shop):
    """The sweep re-enqueues a due row even though its "push queued" cache marker (60 s)
    still stands for the push that died with its worker."""
    # A push waits PUSH_DELAY in the worker that took it from the broker (unacknowledged:
    # the broker hands it out again only after its visibility timeout, an hour).
    harness.configure(PUSH_DELAY=3)
    (worker,) = harness.start_workers(1)
    order = shop.order(status="paid")
    harness.flush()
    wait_until(lambda: "push_orders[" in worker.output(), 10, worker.output)
    worker.kill()
    assert harness.emulator.count() == 0

    harness.start_workers(1)  # restarted
    # The row is due for the sweep after SWEEP_AFTER (1 s): 8 s is plenty.
    harness.wait_synced([order], timeout=8, beat=0.5)
    assert_remote_is_local(harness.emulator, [order])


# 5. Failures are bounded and visible --------------------------------------------------------


def test_a_storm_of_5xx_429_and_drops_ends_with_every_order_correct(harness, shop):
    harness.configure(MAX_ATTEMPTS=40)
    emu = harness.emulator
    emu.faults.retry_after = 1
    emu.faults.set_rates({500: 0.15, 503: 0.1, 429: 0.05, "drop": 0.1}, seed=3)
    harness.start_workers(2)

    orders = [shop.order(status="paid", items=(("MUG", n % 4 + 1),)) for n in range(30)]
    for order in orders[::3]:
        order.status = Order.Status.SHIPPED
        order.save()
    for order in orders[1::5]:
        OrderItem.objects.create(
            order=order, product=shop.products["CAKE"], quantity=2, unit_price="3.20"
        )

    harness.wait_synced(orders, timeout=60)
    assert_remote_is_local(emu, orders)
    statuses = Counter(status for _, _, status in emu.requests)
    assert sum(n for status, n in statuses.items() if status != 200) > 0, statuses
    assert SyncAttempt.objects.exclude(status_code=200).exists()


# 2. No phantom change -----------------------------------------------------------------------


def test_a_rolled_back_transaction_sends_nothing(harness, shop):
    harness.start_workers(1)

    with pytest.raises(RuntimeError), transaction.atomic():
        dropped = shop.order(status="paid", items=(("MUG", 5),))
        raise RuntimeError("payment declined")
    kept = shop.order(status="paid")  # the worker is alive: this one goes through

    harness.wait_synced([kept], timeout=30)
    assert [o["source_id"] for o in harness.emulator.orders()] == [str(kept.pk)]
    assert harness.emulator.count() == 1
    assert not OrderSync.objects.filter(pk=str(dropped.pk)).exists()


# 4. No wasted call --------------------------------------------------------------------------


def test_a_burst_of_50_saves_costs_at_most_3_calls(harness, shop):
    # The library's order of PUSH_DELAY, so that a burst slowed down by a busy machine
    # (it takes 0.3 s on an idle one) still fits in two delays.
    harness.configure(PUSH_DELAY=1.0)
    harness.start_workers(1)

    started = time.monotonic()
    order = shop.order(status="new")
    for n in range(50):  # 50 separate transactions
        order.note = f"edit {n}"
        order.status = Order.Status.PAID if n % 2 else Order.Status.NEW
        order.save()
    burst = time.monotonic() - started

    harness.wait_synced([order], timeout=30)
    assert_remote_is_local(harness.emulator, [order])
    calls = writes(harness.emulator)
    assert calls <= 3, f"{calls} calls for a burst of {burst:.2f} s: {harness.emulator.requests}"
