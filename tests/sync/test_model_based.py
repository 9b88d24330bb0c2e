"""A model-based test of live sync: random shop changes, workers, sweeps and faults in any
interleaving; once the system is quiet, Voucherify holds every live order exactly as the
mapper builds it, and nothing else.

The shop's changes run with live sync paused (or, drawn at random, live: pushed right
after commit, as CELERY_TASK_ALWAYS_EAGER does), and rules that act as workers push
random batches and run the sweep on a model clock (Django's own, frozen and moved on by
the rules). Faults: the emulator's scripted 500/429/dropped connections, and
(``FaultDoor``) timeouts, answers lost after the write landed, and a hook that lets
another worker push while a write is in flight (a write that outlives its lease and
lands late).

``VOUCHERIFY_MODEL_EXAMPLES=2000`` (and ``VOUCHERIFY_MODEL_STEPS``) for a long run, which
also shrinks a failure to its shortest sequence (``VOUCHERIFY_MODEL_SHRINK=1`` for a short
one); ``VOUCHERIFY_MODEL_OFF=move_item,...`` leaves rules out, to find one bug's shortest
sequence while others are still open.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from shop.models import Customer, Order, OrderItem, Product

from django_voucherify_orders import enqueue_sync, paused_sync
from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from django_voucherify_orders.signals import before_push
from django_voucherify_orders.sync import push_many, sweep
from tests.testapp.models import OrderProxy

from .model_checks import (
    ROLLBACK_NOTE,
    ROLLBACK_QUANTITY,
    FaultDoor,
    describe,
    quiet_state_problems,
)

EXAMPLES = int(os.environ.get("VOUCHERIFY_MODEL_EXAMPLES", "100"))
STEPS = int(os.environ.get("VOUCHERIFY_MODEL_STEPS", "50"))
# Shrinking a failure to its shortest sequence takes minutes: on for long runs, or =1.
SHRINK = os.environ.get("VOUCHERIFY_MODEL_SHRINK", "1" if EXAMPLES > 100 else "0") == "1"
# Rules to leave out (comma-separated names), to find one bug class's minimal sequence
# while the others are still open, e.g. VOUCHERIFY_MODEL_OFF=move_item,recreate_order.
OFF = frozenset(filter(None, os.environ.get("VOUCHERIFY_MODEL_OFF", "").split(",")))


def unless_off(name: str) -> Any:
    return precondition(lambda machine: name not in OFF)


STATUSES = ("new", "paid", "shipped", "cancelled")
POISON = "RECEIVER-RAISES"  # a before_push receiver raises for orders with this note
QUIET_ROUNDS = 10

_numbers = itertools.count(1)
_markers = itertools.count(1)

picks = st.integers(min_value=0, max_value=30)
quantities = st.integers(min_value=1, max_value=5)
products = st.integers(min_value=0, max_value=2)
lines = st.lists(st.tuples(products, quantities), max_size=3)
statuses = st.sampled_from(STATUSES)
live = st.booleans()


class Rollback(Exception):
    pass


class ModelClock:
    """Django's clock during the run (``timezone.now`` is patched to it): frozen, moved on
    by the rules, so leases, late-write holds, retry times and the sweep's grace pass as
    the model says, never with the wall clock."""

    real_now = staticmethod(timezone.now)

    def __init__(self) -> None:
        self.now = self.real_now()

    def __call__(self) -> Any:
        return self.now


CLOCK = ModelClock()


class LiveSyncMachine(RuleBasedStateMachine):
    # Set by the test before the run: the emulator, its fault door, the catalogue.
    emulator: ClassVar[Any]
    door: ClassVar[FaultDoor]
    customers: ClassVar[list[Customer]]
    products: ClassVar[list[Product]]
    proxy: ClassVar[type[Order]]

    def __init__(self) -> None:
        super().__init__()
        with paused_sync():
            OrderItem.objects.all().delete()
            Order.objects.all().delete()
        SyncAttempt.objects.all().delete()
        OrderSync.objects.all().delete()
        self.emulator.reset()
        self.emulator.faults.retry_after = 0
        self.door.clear()
        cache.clear()
        CLOCK.now = CLOCK.real_now()
        self.live: list[int] = []  # pks of the orders that exist, in creation order
        self.ever_committed: set[str] = set()
        self.deleted: set[str] = set()  # deleted and not re-created
        self.worker_errors: list[str] = []
        self.broken = False

    # --- the shop ---------------------------------------------------------------------------

    @contextmanager
    def shop(self, live_sync: bool) -> Any:
        with nullcontext() if live_sync else paused_sync(), transaction.atomic():
            yield

    def pick(self, index: int) -> Order | None:
        if not self.live:
            return None
        return Order.objects.get(pk=self.live[index % len(self.live)])

    def add_lines(self, order: Order, lines: list[tuple[int, int]]) -> None:
        for product, quantity in lines:
            product = self.products[product]
            OrderItem.objects.create(
                order=order, product=product, quantity=quantity, unit_price=product.price
            )

    def committed(self, pk: int) -> None:
        key = str(pk)
        if pk not in self.live:
            self.live.append(pk)
        self.ever_committed.add(key)
        self.deleted.discard(key)

    @initialize(history=st.lists(st.tuples(lines, statuses), min_size=2, max_size=4))
    def a_shop_with_history(self, history):
        """Orders already in Voucherify before the run: what a change can leave stale
        (an order first pushed at the end would be right whatever the engine did)."""
        for order_lines, status in history:
            self.create_order(order_lines, status, customer=0, live_sync=True)

    @unless_off("create_order")
    @rule(lines=lines, status=statuses, customer=st.integers(0, 1), live_sync=live)
    def create_order(self, lines, status, customer, live_sync):
        with self.shop(live_sync):
            order = Order.objects.create(
                customer=self.customers[customer], number=f"MB-{next(_numbers):06}", status=status
            )
            self.add_lines(order, lines)
        self.committed(order.pk)

    @unless_off("change_status")
    @rule(pick=picks, status=statuses, live_sync=live)
    def change_status(self, pick, status, live_sync):
        if (order := self.pick(pick)) is None:
            return
        with self.shop(live_sync):
            order.status = status
            order.save()

    @unless_off("edit_order")
    @rule(
        pick=picks,
        note=st.sampled_from(["", "gift wrap"]),
        discount=st.sampled_from([Decimal(0), Decimal("1.50")]),
        customer=st.integers(0, 1),
        live_sync=live,
    )
    def edit_order(self, pick, note, discount, customer, live_sync):
        if (order := self.pick(pick)) is None:
            return
        with self.shop(live_sync):
            order.note, order.discount, order.customer = note, discount, self.customers[customer]
            order.save()

    @unless_off("edit_item")
    @rule(pick=picks, line=picks, quantity=quantities, live_sync=live)
    def edit_item(self, pick, line, quantity, live_sync):
        if (order := self.pick(pick)) is None or not (items := list(order.items.all())):
            return
        with self.shop(live_sync):
            item = items[line % len(items)]
            item.quantity = quantity
            item.save()

    @unless_off("add_items")
    @rule(pick=picks, lines=lines.filter(bool), live_sync=live)
    def add_items(self, pick, lines, live_sync):
        if (order := self.pick(pick)) is None:
            return
        with self.shop(live_sync):
            self.add_lines(order, lines)

    @unless_off("delete_item")
    @rule(pick=picks, line=picks, live_sync=live)
    def delete_item(self, pick, line, live_sync):
        if (order := self.pick(pick)) is None or not (items := list(order.items.all())):
            return
        with self.shop(live_sync):
            items[line % len(items)].delete()

    @unless_off("move_item")
    @rule(source=picks, line=picks, to=picks, live_sync=live)
    def move_item(self, source, line, to, live_sync):
        """A line moved to another order: both orders changed."""
        order, other = self.pick(source), self.pick(to)
        if order is None or other is None or order.pk == other.pk:
            return
        if not (items := list(order.items.all())):
            return
        with self.shop(live_sync):
            item = items[line % len(items)]
            item.order = other
            item.save()

    @unless_off("save_through_proxy")
    @rule(pick=picks, status=statuses, live_sync=live)
    def save_through_proxy(self, pick, status, live_sync):
        if (order := self.pick(pick)) is None:
            return
        with self.shop(live_sync):
            proxy = self.proxy.objects.get(pk=order.pk)
            proxy.status = status
            proxy.save()

    @unless_off("a_receiver_raises_for")
    @rule(pick=picks)
    def a_receiver_raises_for(self, pick):
        """A project's before_push receiver raises for this order (until its note changes)."""
        if (order := self.pick(pick)) is None:
            return
        with paused_sync():
            Order.objects.filter(pk=order.pk).update(note=POISON)
            enqueue_sync(Order.objects.filter(pk=order.pk))

    @unless_off("delete_order")
    @rule(pick=picks, live_sync=live)
    def delete_order(self, pick, live_sync):
        if (order := self.pick(pick)) is None:
            return
        pk = order.pk  # delete() sets it to None
        with self.shop(live_sync):
            order.delete()
        self.live.remove(pk)
        self.deleted.add(str(pk))

    @unless_off("recreate_order")
    @rule(pick=picks, lines=lines, status=statuses, live_sync=live)
    def recreate_order(self, pick, lines, status, live_sync):
        """An order deleted, then created again with the same key (its source_id)."""
        if not self.deleted:
            return
        key = sorted(self.deleted, key=int)[pick % len(self.deleted)]
        with self.shop(live_sync):
            order = Order.objects.create(
                pk=int(key), customer=self.customers[0], number=f"MB-{next(_numbers):06}",
                status=status,
            )  # fmt: skip
            self.add_lines(order, lines)
        self.committed(order.pk)

    @unless_off("rolled_back_change")
    @rule(pick=picks, live_sync=live)
    def rolled_back_change(self, pick, live_sync):
        if (order := self.pick(pick)) is None:
            return
        try:
            with self.shop(live_sync):
                self.taint(order)
                raise Rollback
        except Rollback:
            pass

    @unless_off("change_around_a_rolled_back_savepoint")
    @rule(pick=picks, status=statuses, live_sync=live)
    def change_around_a_rolled_back_savepoint(self, pick, status, live_sync):
        if (order := self.pick(pick)) is None:
            return
        with self.shop(live_sync):
            order.status = status
            order.save()
            try:
                with transaction.atomic():
                    self.taint(order)
                    raise Rollback
            except Rollback:
                order.refresh_from_db()

    @unless_off("rolled_back_creation")
    @rule(lines=lines, live_sync=live)
    def rolled_back_creation(self, lines, live_sync):
        try:
            with self.shop(live_sync):
                order = Order.objects.create(
                    customer=self.customers[0], number=f"MB-{next(_numbers):06}",
                    note=f"{ROLLBACK_NOTE}{next(_markers)}",
                )  # fmt: skip
                self.add_lines(order, [(product, ROLLBACK_QUANTITY) for product, _ in lines])
                raise Rollback
        except Rollback:
            pass

    def taint(self, order: Order) -> None:
        """Changes whose values nothing committed uses, so they show if they leak."""
        order.note = f"{ROLLBACK_NOTE}{next(_markers)}"
        order.status = "cancelled"
        order.save()
        OrderItem.objects.create(
            order=order, product=self.products[0], quantity=ROLLBACK_QUANTITY,
            unit_price=Decimal("1.000"),
        )  # fmt: skip

    # --- the workers ------------------------------------------------------------------------

    def known_keys(self) -> list[str]:
        return sorted(self.ever_committed | set(OrderSync.objects.values_list("pk", flat=True)))

    def work(self, keys: list[str]) -> None:
        """One worker's batch; a batch that raises is a worker crash (its leases freed)."""
        try:
            push_many(keys)
        except Exception as exc:
            self.worker_errors.append(f"push_many({keys}) raised {type(exc).__name__}: {exc}")

    @unless_off("worker_pushes_a_batch")
    @rule(data=st.data())
    def worker_pushes_a_batch(self, data):
        keys = self.known_keys()
        if keys:
            self.work(data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4)))

    @unless_off("sweep_runs")
    @rule(seconds=st.sampled_from([1, 61, 600]))
    def sweep_runs(self, seconds):
        """The beat: the model clock moves on, the sweep re-enqueues what is due."""
        CLOCK.now += timedelta(seconds=seconds)
        sweep()

    @unless_off("next_call_fails")
    @rule(fault=st.sampled_from([500, 429, "drop", "timeout", "answer lost"]))
    def next_call_fails(self, fault):
        if fault == "timeout":
            self.door.timeouts.append("before")
        elif fault == "answer lost":
            self.door.timeouts.append("after")
        else:
            self.emulator.faults.script([fault])

    @unless_off("another_worker_pushes_during_a_write")
    @rule(status=statuses, when=st.sampled_from(["before", "after"]))
    def another_worker_pushes_during_a_write(self, status, when):
        """During the next write, the order changes, its lease expires and another worker
        pushes it; with "before" the first write lands after the second (a late write)."""

        def meanwhile(source_id: str) -> None:
            if Order.objects.filter(pk=source_id).exists():
                with paused_sync(), transaction.atomic():
                    order = Order.objects.get(pk=source_id)
                    order.status = status
                    order.note = "changed mid-push"
                    order.save()
            past = timezone.now() - timedelta(seconds=1)
            OrderSync.objects.filter(pk=source_id).update(lease_until=past)
            self.work([source_id])

        self.door.hooks.append((when, meanwhile))

    # --- quiet ------------------------------------------------------------------------------

    @unless_off("the_system_goes_quiet")
    @rule()
    def the_system_goes_quiet(self):
        """A check mid-run too: a stale order is caught before a later change hides it."""
        self.settle_and_check()

    def teardown(self) -> None:
        if not self.broken:  # one report per example: the first check that failed
            self.settle_and_check()

    def settle_and_check(self) -> None:
        """Faults off, workers and sweeps until nothing is pending, then the invariants."""
        self.door.clear()
        self.emulator.faults.clear()
        problems: list[str] = []
        for _ in range(QUIET_ROUNDS):
            pending = list(
                OrderSync.objects.filter(state=SyncState.PENDING).values_list("pk", flat=True)
            )
            if not pending:
                break
            CLOCK.now += timedelta(seconds=get_settings().sweep_after + 1)
            sweep()
            self.work(sorted(pending))
        else:
            problems.append(
                f"[the system goes quiet] still pending after {QUIET_ROUNDS} rounds of "
                f"sweep + push: {sorted(pending, key=int)}"
            )
        problems += [
            f"[one order's failure stays its own] {error}"
            + (f" ({count} times)" if count > 1 else "")
            for error, count in Counter(self.worker_errors).items()
        ]
        poisoned = {
            str(pk) for pk in Order.objects.filter(note=POISON).values_list("pk", flat=True)
        }
        problems += quiet_state_problems(
            self.emulator, ever_committed=self.ever_committed, deleted=self.deleted,
            poisoned=poisoned,
        )  # fmt: skip
        self.broken = bool(problems)
        assert not problems, describe(problems, "live sync broke an invariant")


def _raise_for_poisoned(sender: Any, order: Any = None, **kwargs: Any) -> None:
    if order is not None and order.note == POISON:
        raise RuntimeError(f"a before_push receiver failed on order {order.pk}")


@pytest.fixture
def machine_world(transactional_db, voucherify_emulator, settings, monkeypatch):
    monkeypatch.setattr(timezone, "now", CLOCK)
    settings.VOUCHERIFY_ORDERS = {
        **settings.VOUCHERIFY_ORDERS,
        # The model's faults are finite; no order may give up on transient ones.
        "MAX_ATTEMPTS": 1000,
    }
    emulator = voucherify_emulator
    # 429s carry X-Rate-Limit-Retry (an epoch second): one already past on the wall clock
    # (the limiter's pause is wall-clock time, not the model's), so no worker really
    # sleeps for a quota (the engine's wait on it is tested in test_rate_limits).
    emulator.clock = lambda: time.time() - 5
    door = FaultDoor(emulator)
    LiveSyncMachine.emulator = emulator
    LiveSyncMachine.door = door
    LiveSyncMachine.customers = [
        Customer.objects.create(name="Ada", email="ada@example.com", city="Berlin"),
        Customer.objects.create(name="Bo", email="bo@example.com", phone="+49 30 1"),
    ]
    LiveSyncMachine.products = [
        Product.objects.create(sku="MUG", name="Mug", price=Decimal("12.50")),
        Product.objects.create(sku="TEA", name="Tea", price=Decimal("8.00")),
        Product.objects.create(sku="PEN", name="Pen", price=Decimal("0.99")),
    ]
    before_push.connect(_raise_for_poisoned, dispatch_uid="model-based-poison")
    try:
        LiveSyncMachine.proxy = OrderProxy
        yield
    finally:
        before_push.disconnect(dispatch_uid="model-based-poison")
        door.uninstall()


# A hang still fails; a long run (and its shrinking) gets the time it needs.
@pytest.mark.timeout(60 + 2 * EXAMPLES + (1800 if SHRINK else 0))
def test_live_sync_keeps_voucherify_equal_to_the_shop(machine_world):
    run_state_machine_as_test(
        LiveSyncMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            print_blob=True,
            database=None,
            # No explain phase: its tracing makes each example several times slower.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
            + ([Phase.shrink] if SHRINK else []),
        ),
    )
