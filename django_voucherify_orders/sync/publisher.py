"""From a committed change to a queued push: cheap on the request path, never lost.

The request thread only remembers which orders its transaction changed. After commit,
their keys go to a per-process publisher thread that talks to the cache and the broker,
so a save costs no network round trip. A process that dies before publishing loses
nothing: the rows are pending, and the sweep enqueues them. With Celery in eager mode
(no broker: tests, the demo) the push runs right after commit, in the request thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from django.db import transaction

from ..conf import VoucherifyOrdersSettings, get_settings

__all__ = [
    "QUEUED_KEY",
    "enqueue_push",
    "enqueue_pushes",
    "live_sync_enabled",
    "marked_in_transaction",
    "paused_sync",
    "push_after_commit",
]

logger = logging.getLogger("django_voucherify_orders.sync")

QUEUED_KEY = "voucherify_orders:queued:{}"
QUEUED_TTL = 60  # seconds a "push is queued" marker outlives the push's countdown
# Orders per push task: a backlog is pushed under one lease and one read per batch,
# while a batch stays short enough (about a second) to keep latency and redelivery small.
PUSH_BATCH = 50


# --- pausing ----------------------------------------------------------------------------

_paused = threading.local()


@contextmanager
def paused_sync() -> Iterator[None]:
    """Within the block, changed orders are marked pending but not pushed (bulk loads,
    data migrations). ``manage.py voucherify_sync`` or the sweep catches up later."""
    _paused.depth = getattr(_paused, "depth", 0) + 1
    try:
        yield
    finally:
        _paused.depth -= 1


def live_sync_enabled(config: VoucherifyOrdersSettings | None = None) -> bool:
    config = config or get_settings()
    return config.auto_sync and not getattr(_paused, "depth", 0)


# --- after commit -----------------------------------------------------------------------


def push_after_commit(key: str, using: str) -> None:
    """Record that ``key`` was marked in the current transaction of ``using`` and push it
    once after commit, however often it changes (outside a transaction: push it now).

    The bookkeeping lives in the on_commit callbacks themselves, one per savepoint level,
    each carrying the orders marked at its level. Django drops the callbacks registered
    inside a savepoint that is rolled back, just as the database undoes the marks made
    there: so an order counts as marked while a live callback carries it, and
    :func:`marked_in_transaction` lets the marks skip a second write of the same row.
    """
    publish = live_sync_enabled()
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        if publish:
            _publish([key])
        return
    callbacks = _live_callbacks(connection)
    level = _savepoint_level(connection)
    current = next(
        (each for each in reversed(callbacks) if each.level == level and not each.spent), None
    )
    if current is None:
        current = _MarkedAtLevel(level)
        transaction.on_commit(current, using=using)
        callbacks.append(current)
    current.keys.add(key)
    if publish and not any(key in callback.to_push for callback in callbacks):
        current.to_push.add(key)


def marked_in_transaction(key: str, using: str) -> bool:
    """Whether ``key``'s outbox row was already written in the current transaction of
    ``using`` (and not undone by a savepoint rollback). Always False in autocommit."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return False
    return any(key in callback.keys for callback in _live_callbacks(connection))


class _MarkedAtLevel:
    """The on_commit callback of one savepoint level: the orders marked at that level,
    and those among them to push after commit (not those marked in ``paused_sync``)."""

    __slots__ = ("keys", "level", "spent", "to_push")

    def __init__(self, level: tuple[str, ...]) -> None:
        self.level = level
        self.keys: set[str] = set()
        self.to_push: set[str] = set()
        self.spent = False

    def __call__(self) -> None:
        to_push, self.keys, self.to_push = self.to_push, set(), set()
        # Run without a commit (TestCase's captureOnCommitCallbacks(execute=True) leaves
        # it in the list): later marks in this "transaction" are new ones.
        self.spent = True
        if to_push:
            _publish(sorted(to_push))


def _savepoint_level(connection: Any) -> tuple[str, ...]:
    # atomic(savepoint=False) blocks add None: they share their enclosing level.
    return tuple(sid for sid in connection.savepoint_ids if sid)


def _live_callbacks(connection: Any) -> list[_MarkedAtLevel]:
    """This transaction's live callbacks, oldest first.

    Django only appends to ``connection.run_on_commit`` in place; a savepoint rollback,
    a commit or a rollback replace the list. So the callbacks found in one list stay
    valid while the list is the same object: one scan per replacement, not per save.
    """
    run_on_commit = connection.run_on_commit
    cached = connection.__dict__.get("_voucherify_marks")
    if cached is None or cached[0] is not run_on_commit:
        live = [entry[1] for entry in run_on_commit if isinstance(entry[1], _MarkedAtLevel)]
        cached = (run_on_commit, live)
        connection.__dict__["_voucherify_marks"] = cached
    callbacks: list[_MarkedAtLevel] = cached[1]
    return callbacks


def _publish(keys: list[str]) -> None:
    if _runs_inline():
        enqueue_pushes(keys)
    else:
        _publisher.submit(keys)


def _runs_inline() -> bool:
    from ..tasks import push_orders

    return bool(push_orders.app.conf.task_always_eager)


# --- enqueueing ---------------------------------------------------------------------------


def enqueue_push(
    order_pk: str, *, countdown: float | None = None, deduplicate: bool = True
) -> bool:
    """Queue a push of one order unless one is already queued (see ``enqueue_pushes``)."""
    return enqueue_pushes([order_pk], countdown=countdown, deduplicate=deduplicate) == 1


def enqueue_pushes(
    order_pks: list[str], *, countdown: float | None = None, deduplicate: bool = True
) -> int:
    """Queue pushes of the orders that have none queued, ``PUSH_BATCH`` orders a task;
    return how many were queued. Never raises: a broker that is down leaves the rows
    pending, and the sweep enqueues them later.

    ``deduplicate=False`` queues them even when a marker says a push is queued: the sweep
    and ``voucherify_sync`` use it, because the push a marker stands for may have died with
    its worker (a duplicate push is harmless: the lease and the payload hash see to it).
    """
    config = get_settings()
    delay = config.push_delay if countdown is None else countdown
    keys = [key for key in order_pks if _mark_queued(key, delay) or not deduplicate]
    from ..tasks import push_orders

    queued = 0
    for start in range(0, len(keys), PUSH_BATCH):
        batch = keys[start : start + PUSH_BATCH]
        try:
            _send_task(push_orders, batch, delay, config.celery_queue)
        except Exception as exc:  # the commit already happened; the sweep will deliver it
            logger.warning(
                "could not enqueue push of %d order(s) %s (%s); the sweep will retry",
                len(batch), ", ".join(batch[:5]), exc,
            )  # fmt: skip
            with contextlib.suppress(Exception):  # the markers expire on their own
                cache.delete_many([QUEUED_KEY.format(key) for key in batch])
            continue
        queued += len(batch)
    return queued


def _mark_queued(order_pk: str, delay: float) -> bool:
    """Set the "push queued" marker; False if it was set already (a push is queued)."""
    try:
        return bool(cache.add(QUEUED_KEY.format(order_pk), 1, timeout=int(delay) + QUEUED_TTL))
    except Exception:  # a cache outage must not stop the enqueue
        logger.warning(
            "cache unavailable; enqueueing push of order %s without de-duplication", order_pk
        )
        return True


def _send_task(task: Any, order_pks: list[str], delay: float, queue: str | None) -> None:
    options: dict[str, Any] = {"countdown": delay or None, "queue": queue, "retry": False}
    if task.app.conf.task_always_eager:  # runs here and now; no broker to talk to
        task.apply_async(args=(order_pks,), **options)
        return
    with task.app.pool.acquire(block=True, timeout=10) as connection:
        # Fail fast when the broker is down (kombu would otherwise retry for seconds per
        # order): the row stays pending and the sweep delivers it later.
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0.1, interval_max=0.1
        )
        task.apply_async(args=(order_pks,), connection=connection, **options)


class _Publisher:
    """One daemon thread per process that enqueues pushes off the request path."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, keys: list[str]) -> None:
        self._ensure_running()
        for key in keys:
            self._queue.put(key)

    def _ensure_running(self) -> None:
        # After a fork (gunicorn, Celery prefork) the parent's thread is not ours.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="voucherify-publisher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        from django.db import close_old_connections

        running = True
        while running:
            # Wait for one order, then take whatever else is waiting: under load, the
            # orders of many commits share a task.
            keys = [self._queue.get()]
            while len(keys) < PUSH_BATCH:
                try:
                    keys.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in keys:
                running = False
            batch = list(dict.fromkeys(key for key in keys if key is not None))
            try:
                enqueue_pushes(batch)
            except Exception:  # e.g. settings broken meanwhile: the sweep still has the rows
                logger.exception("could not enqueue push of orders %s", ", ".join(batch[:5]))
        close_old_connections()

    def flush(self, timeout: float = 5.0) -> None:
        """Publish what is queued before the process exits (best effort; bounded)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._queue.put(None)
        thread.join(timeout)


_publisher = _Publisher()
atexit.register(_publisher.flush)


def flush_publisher(timeout: float = 5.0) -> None:
    """Wait until every push handed to the publisher is queued (tests, benchmarks)."""
    _publisher.flush(timeout)
