"""DESIGN.md's invariants, each with a test that fails without its mechanism."""

from __future__ import annotations

import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.test import override_settings
from kombu.exceptions import OperationalError

from django_voucherify_orders import enqueue_sync, paused_sync
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.sync import due_for_push, push, sweep
from django_voucherify_orders.tasks import push_orders

from .conftest import remote

SETTINGS = "django.conf.settings.VOUCHERIFY_ORDERS"


def posts(emulator) -> int:
    return emulator.count(method="POST", path_prefix="/v1/orders")


def writes(emulator) -> int:
    return posts(emulator) + emulator.count(method="PUT", path_prefix="/v1/orders")


def after_sweep_grace():
    """The sweep's clock once a row has been left alone for SWEEP_AFTER (no waiting)."""
    from datetime import timedelta

    from django.utils import timezone

    from django_voucherify_orders.conf import get_settings

    return timezone.now() + timedelta(seconds=get_settings().sweep_after + 1)


# 1. No lost change -------------------------------------------------------------------------


def test_a_committed_order_reaches_voucherify(shop, emulator):
    order = shop.order(status="paid", items=[("mug", 2), ("tea", 1)])

    pushed = remote(emulator, order)
    assert pushed["status"] == "PAID"
    assert pushed["amount"] == 2 * 1250 + 800
    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.SYNCED
    assert row.voucherify_id == pushed["id"]
    assert row.remote_snapshot["id"] == pushed["id"]


def test_broker_down_at_commit_then_the_sweep_delivers(shop, emulator, caplog):
    with mock.patch.object(
        push_orders, "apply_async", side_effect=OperationalError("connection refused")
    ):
        order = shop.order(status="paid")  # the request succeeds all the same
    assert remote(emulator, order) is None
    assert "the sweep will retry" in caplog.text
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.PENDING

    assert sweep() == 0  # its push may still be queued: left alone for SWEEP_AFTER
    assert sweep(now=after_sweep_grace()) == 1

    assert remote(emulator, order)["status"] == "PAID"


def test_the_sweep_delivers_a_push_that_died_with_its_worker(shop, emulator):
    """The push was taken from the broker, its "queued" marker set, then the worker died."""
    from django.core.cache import cache

    from django_voucherify_orders.sync.publisher import QUEUED_KEY

    with paused_sync():
        order = shop.order(status="paid")
    cache.set(QUEUED_KEY.format(order.pk), 1, timeout=3600)

    assert sweep() == 0  # its push may still be queued: left alone for SWEEP_AFTER
    assert sweep(now=after_sweep_grace()) == 1

    assert remote(emulator, order)["status"] == "PAID"


def test_the_sweep_leaves_fresh_and_leased_rows_alone(shop, emulator):
    with paused_sync():
        order = shop.order()
    assert due_for_push().count() == 0  # younger than SWEEP_AFTER: its push may be queued
    assert due_for_push(grace=0).count() == 1

    now = after_sweep_grace()
    OrderSync.objects.filter(pk=str(order.pk)).update(
        lease_until=now + timedelta(minutes=5), lease_token="a-worker"
    )
    assert due_for_push(now).count() == 0  # a worker is pushing it


# 2. No phantom change ---------------------------------------------------------------------


def test_a_rolled_back_transaction_sends_nothing(shop, emulator):
    with pytest.raises(RuntimeError), transaction.atomic():
        shop.order(status="paid")
        raise RuntimeError("payment declined")

    assert emulator.count() == 0
    assert not OrderSync.objects.exists()


def test_a_rolled_back_savepoint_sends_nothing_of_its_own(shop, emulator):
    with transaction.atomic():
        kept = shop.order(status="paid")
        with pytest.raises(RuntimeError), transaction.atomic():
            dropped = shop.order(status="paid")
            kept.status = "cancelled"
            kept.save()
            raise RuntimeError
    kept.refresh_from_db()

    assert remote(emulator, dropped) is None
    assert remote(emulator, kept)["status"] == "PAID"
    assert posts(emulator) == 1


def test_a_change_after_a_rolled_back_savepoint_is_still_pushed(shop, emulator):
    order = shop.order(status="new")
    before = writes(emulator)
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            order.status = "paid"
            order.save()  # registers the push inside the savepoint...
            raise RuntimeError  # ...which Django then drops
        order.status = "shipped"
        order.save()  # must register it again

    assert remote(emulator, order)["status"] == "FULFILLED"
    assert writes(emulator) == before + 1


# 3. No stale overwrite ---------------------------------------------------------------------


def test_a_push_sends_the_order_as_it_is_at_push_time(shop, emulator):
    with paused_sync():
        order = shop.order(status="new")
        order.status = "shipped"
        order.save()

    push(str(order.pk))

    assert remote(emulator, order)["status"] == "FULFILLED"


def test_one_push_at_a_time_per_order(shop, emulator):
    with paused_sync():
        order = shop.order(status="paid")
    key = str(order.pk)
    OrderSync.objects.filter(pk=key).update(
        lease_until="2999-01-01T00:00:00Z", lease_token="other-worker"
    )

    assert push(key).outcome == "busy"
    assert emulator.count() == 0


def test_a_crashed_workers_lease_expires(shop, emulator):
    with paused_sync():
        order = shop.order(status="paid")
    OrderSync.objects.filter(pk=str(order.pk)).update(
        lease_until="2000-01-01T00:00:00Z", lease_token="dead-worker"
    )

    assert push(str(order.pk)).outcome == "pushed"


def test_a_change_during_a_push_is_pushed_after_it(shop, emulator):
    order = shop.order(status="new")
    from django_voucherify_orders.signals import before_push

    def change_it_meanwhile(sender, sync, order, payload, **kwargs):
        before_push.disconnect(change_it_meanwhile)
        order.status = "paid"
        order.save()  # its own push finds the lease taken

    before_push.connect(change_it_meanwhile)
    order.status = "shipped"
    order.save()

    order.refresh_from_db()
    assert order.status == "paid"
    assert remote(emulator, order)["status"] == "PAID"
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED


# 4. No wasted call -------------------------------------------------------------------------


def test_several_saves_in_one_transaction_are_one_push(shop, emulator):
    with transaction.atomic():
        order = shop.order(status="new", items=[("mug", 1), ("tea", 2)])
        order.status = "paid"
        order.save()
        shop.item(order, "tea", 1)

    assert posts(emulator) == 1
    assert remote(emulator, order)["status"] == "PAID"
    assert len(remote(emulator, order)["items"]) == 3


def test_an_unchanged_resave_costs_no_call(shop, emulator):
    order = shop.order(status="paid")
    before = emulator.count()

    order.save()
    order.save()

    assert emulator.count() == before
    assert OrderSync.objects.get(pk=str(order.pk)).state == SyncState.SYNCED


def test_a_burst_of_50_saves_costs_at_most_3_calls(shop, emulator):
    """With a broker, pushes wait PUSH_DELAY; saves meanwhile find one already queued."""
    queue: list[list[str]] = []
    with mock.patch.object(
        push_orders, "apply_async", side_effect=lambda args, **kw: queue.append(args[0])
    ):
        order = shop.order(status="new")
        for n in range(50):
            order.note = f"edit {n}"
            order.status = "paid" if n % 2 else "new"
            order.save()
    assert len(queue) == 1  # one queued push for 51 saves

    for keys in queue:  # the worker runs it
        push_orders(keys)

    assert writes(emulator) <= 3
    assert remote(emulator, order)["status"] == "PAID"


def test_later_pushes_put_only_the_changed_fields(shop, emulator):
    from django_voucherify_orders.client import VoucherifyClient

    order = shop.order(status="new")
    before = len([r for r in emulator.requests if r.method == "PUT"])
    with mock.patch.object(
        VoucherifyClient, "update_order", autospec=True, side_effect=VoucherifyClient.update_order
    ) as update:
        order.status = "paid"
        order.save()

    (_, source_id, changes), _ = update.call_args
    assert (source_id, changes) == (str(order.pk), {"status": "PAID"})
    put = [r for r in emulator.requests if r.method == "PUT"]
    assert len(put) == before + 1 and put[-1].path == f"/v1/orders/{order.pk}"
    assert SyncAttempt.objects.filter(method="PUT").latest("started_at").status_code == 200
    assert remote(emulator, order)["status"] == "PAID"


def test_a_put_that_finds_no_order_falls_back_to_post(shop, emulator):
    order = shop.order(status="new")
    emulator.reset()  # Voucherify lost it

    order.status = "paid"
    order.save()

    assert remote(emulator, order)["status"] == "PAID"
    assert [r.status for r in emulator.requests] == [404, 200]


# 5. Failures are bounded and visible --------------------------------------------------------


def test_a_storm_of_5xx_and_429_ends_with_every_order_correct(shop, emulator, clock):
    emulator.faults.retry_after = 0
    emulator.faults.set_rates({500: 0.3, 503: 0.1, 429: 0.05, "drop": 0.1}, seed=7)
    # The default policy, no MAX_ATTEMPTS: transient failures are retried for RETRY_FOR.
    orders = [shop.order(status="paid", items=[("mug", n + 1)]) for n in range(20)]
    for order in orders[::2]:
        order.status = "shipped"
        order.save()
    for _ in range(100):  # what the retries and the sweep do over time
        # A dropped write might still land: its order waits a request's time.
        clock.advance(60)
        due = list(due_for_push(grace=0).values_list("pk", flat=True))
        if not due:
            break
        for key in due:
            push(key)

    for order in orders:
        order.refresh_from_db()
        pushed = remote(emulator, order)
        assert pushed["status"] == {"paid": "PAID", "shipped": "FULFILLED"}[order.status]
        assert pushed["amount"] == 1250 * pushed["items"][0]["quantity"]
    assert len(emulator.orders()) == 20
    assert not OrderSync.objects.exclude(state=SyncState.SYNCED).exists()
    assert SyncAttempt.objects.exclude(status_code=200).count() > 0


def test_a_400_fails_the_order_with_voucherifys_message_and_is_not_retried(shop, emulator):
    emulator.faults.script([400])

    order = shop.order(status="paid")

    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.FAILED
    assert row.last_error_status == 400
    assert row.last_error_key and row.last_error_message
    assert emulator.count() == 1
    assert due_for_push(grace=0).count() == 0


def test_max_attempts_when_set_caps_the_tries_of_a_run_and_stays_visible(shop, emulator):
    """MAX_ATTEMPTS counts tries (the first included), not retries."""
    emulator.faults.script([503] * 10)
    with override_settings(VOUCHERIFY_ORDERS={**_settings(), "MAX_ATTEMPTS": 3}):
        order = shop.order(status="paid")

    row = OrderSync.objects.get(pk=str(order.pk))
    assert row.state == SyncState.FAILED
    assert row.attempts == 3
    assert row.last_error_key == "service_unavailable"
    assert emulator.count() == 3


def test_bad_local_data_fails_that_order_only(shop, emulator):
    good = shop.order(status="paid")
    bad = shop.order(status="paid")
    type(bad).objects.filter(pk=bad.pk).update(status="lost-in-the-post")
    enqueue_sync(type(bad).objects.filter(pk__in=[good.pk, bad.pk]))

    row = OrderSync.objects.get(pk=str(bad.pk))
    assert row.state == SyncState.FAILED
    assert row.last_error_key == "invalid_local_data"
    assert f"order {bad.pk}" in row.last_error_message
    assert "lost-in-the-post" in row.last_error_message
    assert OrderSync.objects.get(pk=str(good.pk)).state == SyncState.SYNCED


# 6. Secrets stay secret --------------------------------------------------------------------


def test_the_secret_key_is_in_no_log_attempt_row_or_error(shop, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    from django.core.cache import cache

    from django_voucherify_orders.sync.outage import PAUSE_KEY

    emulator.faults.script([500, "drop", 401])  # a retry, a failure, then a pause
    with override_settings(VOUCHERIFY_ORDERS={**_settings(), "MAX_ATTEMPTS": 2}):
        for _ in range(3):
            shop.order(status="paid")

    secret = _settings()["SECRET_KEY"]
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in str(record.args) and secret not in record.getMessage()
    for attempt in SyncAttempt.objects.all():
        assert secret not in " ".join(str(v) for v in vars(attempt).values())
    for row in OrderSync.objects.all():
        assert secret not in " ".join(str(v) for v in vars(row).values())
    assert cache.get(PAUSE_KEY) and secret not in str(cache.get(PAUSE_KEY))
    assert SyncAttempt.objects.count() >= 3


# 7. The request path stays fast --------------------------------------------------------------


def test_saving_an_order_costs_at_most_two_extra_queries_and_no_http(shop, emulator, monkeypatch):
    """Live sync on, as in production (a broker, not eager): the save hands the order to
    the publisher thread and returns; the push happens in a worker."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_voucherify_orders.sync import publisher, receivers

    sent: list[list[str]] = []
    monkeypatch.setattr(publisher, "_send_task", lambda task, batch, *args: sent.append(batch))
    conf = push_orders.app.conf
    eager, conf.task_always_eager = conf.task_always_eager, False
    try:
        order = shop.order(status="new")  # a checkout: one transaction
        publisher.flush_publisher()
        assert emulator.count() == 0
        assert sent == [[str(order.pk)]]  # the change was handed on all the same

        def queries_for_a_save() -> int:
            order.note += "."
            with CaptureQueriesContext(connection) as captured:
                order.save()  # autocommit
            return len(captured)

        with_app = queries_for_a_save()
        publisher.flush_publisher()
        assert emulator.count() == 0
        assert sent[-1] == [str(order.pk)]
        receivers.disconnect()
        try:
            without_app = queries_for_a_save()
        finally:
            receivers.connect()
    finally:
        conf.task_always_eager = eager
    assert with_app - without_app <= 2

    push_orders.run(sent[-1])  # what the worker does with it: the one call
    assert remote(emulator, order)["status"] == "CREATED"


def _settings() -> dict:
    from django.conf import settings

    return settings.VOUCHERIFY_ORDERS
