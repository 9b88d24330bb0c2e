"""Real processes for the integration tests: the emulator's HTTP door, Celery workers over
Redis, PostgreSQL. Every wait polls a condition with a deadline and fails saying what it saw.

Isolation: one Redis key prefix per test run (broker and cache keys, deleted at the end),
one Celery queue per test (a message left over by one test is never consumed by the next),
fresh workers and a fresh emulator per test.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from django_voucherify_orders.emulator import Emulator

from .config import BROKER_DB, CACHE_DB, REDIS_URL, celery_config, settings_from_env

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "test-app-id"  # tests.settings' credentials
SECRET_KEY = "test-secret-key"
WORKER_START_TIMEOUT = 45.0
WORKER_STOP_TIMEOUT = 8.0


# --- waiting -------------------------------------------------------------------------------


class NotSynced(AssertionError):
    """Voucherify did not catch up in time; the message lists the rows, requests and logs."""


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    describe: Callable[[], str],
    interval: float = 0.1,
    error: type[BaseException] | None = None,
) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``describe()`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"not true after {timeout:.0f} s: {describe()}"
            if error is not None:
                raise error(message)
            pytest.fail(message, pytrace=False)
        time.sleep(interval)


# --- Redis ---------------------------------------------------------------------------------


class Run:
    """This test run: its Redis key prefix, and the workers still shutting down."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stopping: list[Worker] = []

    def reap(self) -> None:
        """Wait for every stopping worker (SIGKILL after WORKER_STOP_TIMEOUT)."""
        threads = [threading.Thread(target=w.stop) for w in self.stopping]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.stopping.clear()


@pytest.fixture(scope="session")
def integration_run() -> Iterator[Run]:
    """One prefix for the run's Redis keys. At the end: no worker left, no key left."""
    import redis

    url = os.environ.get("VO_IT_REDIS_URL", REDIS_URL).rstrip("/")
    clients = [redis.Redis.from_url(f"{url}/{db}") for db in (BROKER_DB, CACHE_DB)]
    try:
        clients[0].ping()
    except redis.RedisError as exc:
        pytest.fail(f"the integration tests need Redis at {url}: {exc}", pytrace=False)
    run = Run(f"vo-it-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield run
    finally:
        run.reap()
        for client in clients:
            keys = list(client.scan_iter(match=f"{run.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


# --- the emulator ----------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator behind a real HTTP server in this process (``emulator.url``)."""
    emu = Emulator(APP_ID, SECRET_KEY, rate_limit_per_minute=None)
    with emu.serve("127.0.0.1", 0):
        yield emu


def writes(emu: Emulator) -> int:
    return emu.count(method="POST", path_prefix="/v1/orders") + emu.count(
        method="PUT", path_prefix="/v1/orders"
    )


# --- workers -------------------------------------------------------------------------------


class Worker:
    """``celery worker`` in its own process group: killing the group kills its pool too."""

    def __init__(self, name: str, queue: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        command = [
            sys.executable, "-m", "celery", "-A", "tests.integration.celery_app", "worker",
            "-P", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-Q", queue, "-n", name, "--loglevel", "INFO",
        ]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def output(self, tail: int = 40) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-tail:])

    def is_ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(
                f"worker {self.name} exited ({self.process.returncode}):\n{self.output()}",
                pytrace=False,
            )
        return f"{self.name} ready." in self.output(tail=200)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a machine crash would."""
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)

    def terminate(self) -> None:
        """Ask for a warm shutdown: the worker consumes nothing more from now on."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL whatever of the group is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=WORKER_STOP_TIMEOUT)
        self._signal_group(signal.SIGKILL)  # the pool child, or everything if TERM hung
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the forked child before exec (so: no imports, no locks). On Linux the
    worker gets SIGKILL if pytest dies without its teardown; its pool child then sees
    its parent's pipes close and exits."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Harness:
    """One test's world: settings applied to this process and to its workers."""

    def __init__(self, run: Run, emu: Emulator, tmp_path: Path, database_url: str) -> None:
        from django.conf import settings

        prefix = run.prefix
        self.run = run
        self.emulator = emu
        self.tmp_path = tmp_path
        self.queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.workers: list[Worker] = []
        self._overrides: list[Any] = []
        self._base_orders = dict(settings.VOUCHERIFY_ORDERS)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.integration.settings",
            "DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "VO_IT_PREFIX": prefix,
            "VO_IT_QUEUE": self.queue,
            "VO_IT_API_URL": emu.url or "",
            "VO_IT_ORDERS": "{}",
        }
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self._previous_apps = _current_celery_apps()
        self.celery_app = self._apply()
        _make_current(self.celery_app)

    # -- settings ---------------------------------------------------------------------

    def _apply(self) -> Any:
        from celery import Celery
        from django.test import override_settings

        values = settings_from_env(self.env, self._base_orders)
        override = override_settings(**values)
        override.enable()
        self._overrides.append(override)
        self.settings = values
        app = Celery(f"saver-{self.queue}", set_as_current=False)
        app.conf.update(celery_config(values))
        return app

    def configure(self, **orders: Any) -> None:
        """Change VOUCHERIFY_ORDERS knobs, here and for workers started from now on."""
        self.env["VO_IT_ORDERS"] = json.dumps({**json.loads(self.env["VO_IT_ORDERS"]), **orders})
        old = self.celery_app
        self.celery_app = self._apply()
        _make_current(self.celery_app)
        old.close()

    @contextlib.contextmanager
    def broker_unreachable(self) -> Iterator[None]:
        """This process (the shop) sends its tasks to a closed port; workers are untouched."""
        from celery import Celery

        dead = Celery(f"dead-broker-{self.queue}", set_as_current=False)
        dead.conf.update(
            {**celery_config(self.settings), "broker_url": f"redis://127.0.0.1:{_free_port()}/0"}
        )
        _make_current(dead)
        try:
            yield
        finally:
            self.flush()  # what was committed meanwhile met the closed port
            _make_current(self.celery_app)
            dead.close()

    def flush(self) -> None:
        """Wait until this process's publisher thread has handed every committed change
        to the broker (it does so after commit, off the request path)."""
        from django_voucherify_orders.sync.publisher import flush_publisher

        flush_publisher(timeout=30)

    # -- workers ----------------------------------------------------------------------

    def start_workers(self, count: int = 1) -> list[Worker]:
        started = []
        for _ in range(count):
            index = len(self.workers) + 1
            name = f"w{index}-{self.queue}@it"
            worker = Worker(name, self.queue, self.env, self.tmp_path / f"worker{index}.log")
            self.workers.append(worker)
            started.append(worker)
        for worker in started:
            wait_until(
                worker.is_ready,
                WORKER_START_TIMEOUT,
                lambda worker=worker: f"worker {worker.name} not ready:\n{worker.output()}",
            )
        names = {worker.name for worker in started}

        def all_answer() -> bool:
            replies = self.celery_app.control.ping(destination=list(names), timeout=0.5)
            return names <= {name for reply in replies for name in reply}

        wait_until(all_answer, WORKER_START_TIMEOUT, lambda: f"no pong from all of {names}")
        return started

    def stop_workers(self) -> None:
        """SIGTERM now; the run waits for the exits (and SIGKILLs) at its end. A stopping
        worker takes no new message, and its queue is this test's alone."""
        for worker in self.workers:
            worker.terminate()
        self.run.stopping.extend(self.workers)

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.output(tail=25)}" for w in self.workers)

    # -- the sweep, as Celery beat would run it -----------------------------------------

    def sweep(self) -> None:
        self.celery_app.send_task("django_voucherify_orders.sweep", queue=self.queue)

    # -- waiting for Voucherify -------------------------------------------------------

    def wait_synced(
        self, orders: list[Any], timeout: float = 30.0, *, beat: float | None = None
    ) -> None:
        """Until no OrderSync row is pending or leased and each order's row is synced.
        ``beat``: also send the sweep task every ``beat`` seconds meanwhile."""
        from django_voucherify_orders.models import OrderSync, SyncState

        keys = {str(order.pk) for order in orders}
        last_beat = [time.monotonic()]

        def done() -> bool:
            if beat is not None and time.monotonic() - last_beat[0] >= beat:
                last_beat[0] = time.monotonic()
                self.sweep()
            rows = OrderSync.objects.all()
            if rows.filter(state=SyncState.PENDING).exists():
                return False
            if rows.exclude(lease_token="").exists():
                return False
            synced = set(
                rows.filter(pk__in=keys, state=SyncState.SYNCED).values_list("pk", flat=True)
            )
            return synced == keys

        wait_until(done, timeout, self.describe, interval=0.1, error=NotSynced)

    def describe(self) -> str:
        from django_voucherify_orders.models import OrderSync

        rows = [
            f"  {row.pk}: {row.state} v{row.version}/pushed v{row.pushed_version} "
            f"attempts={row.attempts} next={row.next_attempt_at} lease={row.lease_until} "
            f"error={row.last_error_status} {row.last_error_key} {row.last_error_message[:120]}"
            for row in OrderSync.objects.order_by("pk")
        ]
        statuses: dict[str, int] = {}
        for record in self.emulator.requests:
            statuses[f"{record.method} {record.status}"] = (
                statuses.get(f"{record.method} {record.status}", 0) + 1
            )
        return (
            "OrderSync rows:\n" + ("\n".join(rows) or "  (none)")
            + f"\nemulator requests: {statuses}\n{self.worker_logs()}"
        )  # fmt: skip

    def close(self) -> None:
        try:
            self.flush()  # nothing left to publish once this test's settings are gone
            self.stop_workers()
        finally:
            _make_current(*self._previous_apps)
            self.celery_app.close()
            for override in reversed(self._overrides):
                override.disable()


def _current_celery_apps() -> tuple[Any, Any]:
    from celery import _state

    return _state.default_app, getattr(_state._tls, "current_app", None)


def _make_current(app: Any, current: Any = None) -> None:
    """``app`` becomes the default and current Celery app (shared tasks resolve to it,
    in this thread and in threads started by a test)."""
    from celery import _state

    _state.default_app = app
    _state._tls.current_app = current if current is not None else app


@pytest.fixture
def harness(transactional_db, integration_run, emulator, tmp_path) -> Iterator[Harness]:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("integration tests need DATABASE_URL=postgres://... (workers share the db)")
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    h = Harness(integration_run, emulator, tmp_path, url)
    try:
        yield h
    finally:
        h.close()  # workers stop, settings and Celery app as they were


# --- the shop ------------------------------------------------------------------------------


class Shop:
    """Shop data, each change committed in its own transaction unless said otherwise."""

    def __init__(self) -> None:
        from shop.models import Customer, Product

        self.customer = Customer.objects.create(name="Ada", email="ada@example.com", city="Berlin")
        self.products = {
            sku: Product.objects.create(sku=sku, name=sku.title(), price=Decimal(price))
            for sku, price in (("MUG", "12.50"), ("TEA", "8.00"), ("CAKE", "3.20"))
        }
        self._numbers = iter(range(1, 1_000_000))

    def order(self, status: str = "new", items: tuple[tuple[str, int], ...] = (("MUG", 1),)):
        from django.db import transaction
        from shop.models import Order, OrderItem

        with transaction.atomic():
            order = Order.objects.create(
                customer=self.customer, number=f"SO-{next(self._numbers):06}", status=status
            )
            for sku, quantity in items:
                product = self.products[sku]
                OrderItem.objects.create(
                    order=order, product=product, quantity=quantity, unit_price=product.price
                )
        return order


@pytest.fixture
def shop(harness) -> Shop:
    return Shop()


def assert_remote_is_local(emu: Emulator, orders: list[Any]) -> None:
    """Voucherify holds each order exactly as the database has it now, once."""
    from django_voucherify_orders.mapping import get_mapper
    from django_voucherify_orders.models import OrderSync

    mapper = get_mapper()
    remote_orders = emu.orders()
    source_ids = [o["source_id"] for o in remote_orders]
    assert len(source_ids) == len(set(source_ids)), f"duplicated orders: {sorted(source_ids)}"
    assert sorted(source_ids) == sorted(str(o.pk) for o in orders)
    for order in mapper.get_queryset().filter(pk__in=[o.pk for o in orders]):
        expected = mapper.build(order).to_json()
        remote = emu.get_order(str(order.pk))
        assert remote is not None, f"order {order.pk} is not in Voucherify"
        got = {
            "status": remote["status"],
            "amount": remote.get("amount"),
            "items": [
                (i.get("source_id"), i.get("quantity"), i.get("price")) for i in remote["items"]
            ],
            "metadata": remote["metadata"],
        }
        want = {
            "status": expected["status"],
            "amount": expected["amount"],
            "items": [(i["source_id"], i["quantity"], i["price"]) for i in expected["items"]],
            "metadata": expected["metadata"],
        }
        assert got == want, f"order {order.pk}: Voucherify holds {got}, the database {want}"
        row = OrderSync.objects.get(pk=str(order.pk))
        assert row.voucherify_id == remote["id"]
        assert not row.is_dirty
