"""A backlog is pushed in batches: one lease and one read per batch, one call per order."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_voucherify_orders import paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.signals import before_push
from django_voucherify_orders.sync import publisher as enqueue
from django_voucherify_orders.sync import push_many
from django_voucherify_orders.tasks import push_orders

from .conftest import remote

SETTINGS = "django.conf.settings.VOUCHERIFY_ORDERS"


@pytest.fixture
def backlog(shop):
    """Ten committed orders whose pushes have not run (a worker's queue, say)."""
    with paused_sync():
        orders = [shop.order(status="paid", items=[("mug", n + 1)]) for n in range(10)]
    return orders


def keys(orders) -> list[str]:
    return [str(order.pk) for order in orders]


def leased() -> int:
    return OrderSync.objects.exclude(lease_token="").count()


def test_a_batch_pushes_every_order_as_it_is_now(backlog, emulator):
    results = push_many(keys(backlog))

    assert {result.outcome for result in results.values()} == {"pushed"}
    assert [remote(emulator, order)["items"][0]["quantity"] for order in backlog] == list(
        range(1, 11)
    )
    assert set(OrderSync.objects.values_list("state", flat=True)) == {SyncState.SYNCED}
    assert SyncAttempt.objects.count() == 10 and leased() == 0


def test_a_batch_costs_one_query_an_order_plus_a_few(backlog, emulator):
    with CaptureQueriesContext(connection) as ten:
        push_many(keys(backlog)[:10])
    emulator.reset()
    OrderSync.objects.update(payload_hash="", state=SyncState.PENDING, voucherify_id="")
    with CaptureQueriesContext(connection) as one:
        push_many(keys(backlog)[:1])

    per_order = (len(ten) - len(one)) / 9
    assert per_order <= 1, [query["sql"] for query in ten.captured_queries]


def test_an_order_another_worker_holds_is_left_to_it(backlog, emulator):
    busy = str(backlog[3].pk)
    OrderSync.objects.filter(pk=busy).update(
        lease_until="2999-01-01T00:00:00Z", lease_token="other-worker"
    )

    results = push_many([*keys(backlog), "no-such-order"])

    assert results[busy].outcome == "busy" and results["no-such-order"].outcome == "missing"
    assert remote(emulator, backlog[3]) is None
    assert sum(result.outcome == "pushed" for result in results.values()) == 9
    assert OrderSync.objects.get(pk=busy).lease_token == "other-worker"


def test_bad_data_fails_its_order_and_the_batch_goes_on(backlog, emulator):
    backlog[2].status = "lost-in-transit"  # a status the mapper does not know
    backlog[2].save()  # paused_sync is over: this is pushed, and fails, right away
    OrderSync.objects.filter(pk=str(backlog[2].pk)).update(state=SyncState.PENDING)

    results = push_many(keys(backlog))

    assert results[str(backlog[2].pk)].outcome == "failed"
    assert sum(result.outcome == "pushed" for result in results.values()) == 9


def test_a_long_rate_limit_wait_stops_the_batch_and_the_rest_wait_as_long(backlog, emulator):
    waits = iter([0.0, 0.0, 0.0, 12.5])  # the fourth order would wait 12.5 s for a slot
    with mock.patch(
        "django_voucherify_orders.sync.engine.SharedRateLimiter.acquire",
        side_effect=lambda max_wait: next(waits),
    ):
        results = push_many(keys(backlog))

    outcomes = [results[key].outcome for key in keys(backlog)]
    assert outcomes == ["pushed"] * 3 + ["throttled"] * 7
    assert {results[key].retry_in for key in keys(backlog)[3:]} == {12.5}
    assert leased() == 0  # the orders not pushed are free for the next try


# A push may take 2 x (connect + read) = 6 s: with a 6 s lease, every push could outlive
# the batch's leases, so they are renewed before each one.
TIGHT = {"LEASE_SECONDS": 6, "CONNECT_TIMEOUT": 1, "READ_TIMEOUT": 2}


def test_a_long_batch_renews_its_leases(backlog, emulator, settings):
    with (
        override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, **TIGHT}),
        CaptureQueriesContext(connection) as queries,
    ):
        results = push_many(keys(backlog))

    assert {results[key].outcome for key in keys(backlog)} == {"pushed"}
    renewals = [q["sql"] for q in queries.captured_queries if is_renewal(q["sql"])]
    assert len(renewals) == 10  # a renewal before each push
    assert leased() == 0
    assert all(OrderSync.objects.values_list("payload_hash", flat=True))  # settled as usual


def is_renewal(sql: str) -> bool:
    """An UPDATE that only moves lease_until on (not the first lease, which also sets the
    token, nor a settle or release, which set it to NULL)."""
    if not sql.startswith("UPDATE"):
        return False
    assignments = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return (
        assignments.startswith('"lease_until" = ')
        and "," not in assignments
        and "NULL" not in assignments
    )


def test_an_order_whose_lease_ran_out_and_was_taken_is_left_to_its_taker(
    backlog, emulator, settings
):
    fifth = str(backlog[4].pk)

    def another_worker_takes_the_fifth(sender, order, **kwargs):
        if order.pk == backlog[0].pk:  # while the batch pushes the first order
            OrderSync.objects.filter(pk=fifth).update(lease_token="other-worker")

    before_push.connect(another_worker_takes_the_fifth)
    try:
        with override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, **TIGHT}):
            results = push_many(keys(backlog))
    finally:
        before_push.disconnect(another_worker_takes_the_fifth)

    assert results[fifth].outcome == "busy"
    assert remote(emulator, backlog[4]) is None  # never pushed by two workers at once
    assert sum(result.outcome == "pushed" for result in results.values()) == 9
    assert OrderSync.objects.get(pk=fifth).lease_token == "other-worker"


def test_the_task_requeues_what_it_could_not_push_in_one_message(backlog, emulator):
    sent: list[tuple[list[str], float | None]] = []

    def capture(args, countdown=None, **options):
        sent.append((args[0], countdown))

    waits = iter([0.0, 12.5])
    with (
        mock.patch(
            "django_voucherify_orders.sync.engine.SharedRateLimiter.acquire",
            side_effect=lambda max_wait: next(waits),
        ),
        mock.patch.object(push_orders, "apply_async", side_effect=capture),
    ):
        outcomes = push_orders.run(keys(backlog))

    assert list(outcomes.values()).count("pushed") == 1
    assert sent == [(keys(backlog)[1:], 12.5)]


def test_the_publisher_sends_a_backlog_in_batches(shop, settings):
    sent: list[list[str]] = []
    with (
        mock.patch.object(enqueue, "_runs_inline", return_value=False),
        mock.patch.object(enqueue, "_send_task", side_effect=lambda t, k, *a: sent.append(k)),
    ):
        with paused_sync():
            orders = [shop.order() for _ in range(120)]
        enqueue._publisher.submit(keys(orders))
        enqueue.flush_publisher()

    assert sorted(key for batch in sent for key in batch) == sorted(keys(orders))
    assert max(len(batch) for batch in sent) == enqueue.PUSH_BATCH
    assert len(sent) < 120  # a batch per wake-up of the thread, not a message per order


def test_a_duplicate_push_of_a_settled_order_costs_two_queries_and_no_call(backlog, emulator):
    """The sweep may queue a push again while the first is still waiting in the queue."""
    push_many(keys(backlog))
    calls = emulator.count()

    with CaptureQueriesContext(connection) as queries:
        results = push_many(keys(backlog))

    assert {result.outcome for result in results.values()} == {"settled"}
    assert emulator.count() == calls
    assert len(queries) == 2  # the lease that takes nothing, and the rows' states
