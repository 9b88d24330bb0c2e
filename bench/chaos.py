"""Proof under failure and at scale: orders change while workers die, Redis goes away and
Voucherify fails; in the end Voucherify holds every order exactly as the shop does.

    .venv/bin/python bench/chaos.py [--ci] [--orders N] [--threads N] [--duration S]
                                    [--outage S] [--clear-discounts] [--seed N]
                                    [--held-writes F]

What runs (all started here, all stopped at the end, also on Ctrl-C and SIGTERM):

- PostgreSQL: a scratch database ``bench_vo_chaos`` (``BENCH_CHAOS_DB``; dropped at the end);
- a redis-server of its own on a free port (``--save "" --appendonly no``: a restart
  loses everything), the Celery broker (db 0) and the Django cache (db 1);
- the emulator's HTTP door with faults: 10% 500, 5% 429 (Retry-After 1), 2% dropped
  connections, 50 ms added to every API call, no rate limit of its own;
- in front of it, where the workers send their calls, a holding door (an HTTP proxy in
  this process) that keeps 1% of the order writes for LEASE_SECONDS + 5 s before passing
  them on: the worker has timed out, its lease has run out, a newer push may have
  landed, and the older write lands after it;
- TWO Celery workers (prefork, concurrency 1, the example shop via bench_settings) with
  PUSH_DELAY 0.3 s, MAX_ATTEMPTS 30, RETRY_BACKOFF_BASE 0.2 s, RETRY_BACKOFF_MAX 2 s,
  LEASE_SECONDS 15, SWEEP_AFTER 5 s, READ_TIMEOUT 10 s;
- in this process: load threads saving orders the way views do (signals, the app's
  publisher thread after commit), and a "beat" thread running ``sync.sweep()`` every 5 s.

The load (seeded): ``--orders`` orders created (1-3 items each), then changed by
``--threads`` threads, paced over ``--duration`` seconds. Per order on average: 1.2
status changes, 0.8 item edits (quantity or price, add, remove), 0.15 lines moved to
another order, 0.1 customer changes, 0.3 note edits, 0.1 savepoint changes (a status
change that commits around a savepoint that rolls back), 0.12 whole transactions that
roll back (a fifth of them creating an order), 0.05 deletions and 0.04 re-creations of a
deleted order with the same key (so the same source_id). Every update locks its order
row first (``select_for_update``; a move both orders, in pk order). Whatever a
rolled-back transaction or savepoint writes is recognisable: the note
``ROLLED-BACK-<n>`` and an item of quantity 97, values nothing committed ever uses.
``--clear-discounts`` also sets and clears order discounts (a cleared discount is sent
as ``discount_amount`` 0, which Voucherify takes and then leaves out of the order it
returns).

The chaos, at fixed fractions of ``--duration`` while the load runs: SIGKILL of a
worker's process group (parent and pool child; OrderSync leases held at that moment
are printed), restarted 1 s later; Redis stopped (SIGTERM, nothing saved) for
``--outage`` seconds, then started again empty on the same port. Full run: kill w1 at
25%, Redis at 50% for 10 s, kill w2 at 75%. ``--ci``: 200 orders, kill w1 at 30%,
Redis at 60% for 3 s.

Then the system is let go quiet: ``sync.sweep()`` every 5 s until no OrderSync row is
pending or leased, no write is held, and the emulator's request count has not changed
for 3 s (bounded: 420 s, ``--ci`` 80 s). A worker process that exits on its own is
restarted (as a supervisor would) and reported. Also printed: the push_orders tasks the
workers ran (from ``inspect().stats()``, taken from each worker just before it is
killed; a worker that exits on its own takes its count with it), against the API calls
they made.

The check, every order: the emulator's order with the same source_id must hold every
field of the mapper's payload built now from the database (the admin's compare,
``admin/diff.py``, field by field, items included, plus the item count); Voucherify
answers with a customer reference only, so each local customer must be exactly one
Voucherify customer and two local customers two. Deleted orders stay in Voucherify (it
has no DELETE): not phantoms, and their OrderSync rows must say deleted. Printed: the load, the
chaos, the faults injected (by kind, from the emulator's request log), orders lost
(local, not in Voucherify), wrong, duplicated, phantom (in Voucherify, not local: e.g.
an order created by a rolled-back transaction), rolled-back values present, OrderSync
rows failed or still pending, and the API calls per committed change. Exit status 0
only if every one of those is zero and the system went quiet.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import _harness as h

PG_DB = os.environ.get("BENCH_CHAOS_DB", "bench_vo_chaos")  # one per concurrent run
QUEUE = "celery"  # VOUCHERIFY_ORDERS["CELERY_QUEUE"] is None in the example shop
FAULTS = "500=0.1,429=0.05,drop=0.02"
LATENCY_MS, RETRY_AFTER = 50, 1
PUSH_DELAY = 0.3
APP_SETTINGS = {
    "MAX_ATTEMPTS": 30,
    "RETRY_BACKOFF_BASE": 0.2,
    "RETRY_BACKOFF_MAX": 2.0,
    "LEASE_SECONDS": 15.0,
    "SWEEP_AFTER": 5.0,
    "READ_TIMEOUT": 10.0,
}
BEAT_INTERVAL = 5.0  # as a deployment would schedule it: every SWEEP_AFTER
ROLLBACK_NOTE = "ROLLED-BACK-"  # only rolled-back transactions and savepoints write it
ROLLBACK_QUANTITY = 97  # likewise: committed items have quantities 1-5
STATUSES = ("new", "paid", "shipped", "cancelled")
# Operations per order, on average (besides its creation).
MIX = {
    "status": 1.2, "items": 0.8, "note": 0.3, "savepoint": 0.1, "rollback": 0.12,
    "move": 0.15, "customer": 0.1, "delete": 0.05, "recreate": 0.04,
}  # fmt: skip
# Writes (POST/PUT /v1/orders) the holding door keeps longer than the lease before it
# passes them on: the worker times out (READ_TIMEOUT < LEASE_SECONDS), retries or another
# worker pushes, and the held write lands afterwards, stale.
HELD_WRITES = 0.01
HOLD_SECONDS = APP_SETTINGS["LEASE_SECONDS"] + 5


class Rollback(Exception):
    """Raised inside a transaction.atomic() block to roll it back on purpose."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="the small run (under 2 minutes)")
    parser.add_argument("--orders", type=int, help="orders created (default 2000, ci 200)")
    parser.add_argument("--threads", type=int, help="load threads (default 4, ci 3)")
    parser.add_argument("--duration", type=float, help="load pacing, s (default 150, ci 25)")
    parser.add_argument("--outage", type=float, help="Redis down for S s (default 10, ci 3)")
    parser.add_argument("--quiet-timeout", type=float, help="s (default 420, ci 80)")
    parser.add_argument(
        "--clear-discounts", action="store_true", help="also set and clear order discounts"
    )
    parser.add_argument("--seed", type=int, default=7, help="load and fault seed (default 7)")
    parser.add_argument(
        "--held-writes", type=float, default=HELD_WRITES,
        help=f"fraction of order writes held past the lease (default {HELD_WRITES})",
    )  # fmt: skip
    parser.add_argument("--pg", default=h.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--keep-logs", type=Path, help="copy the process logs here at the end")
    args = parser.parse_args()
    ci = args.ci
    args.orders = args.orders or (200 if ci else 2000)
    args.threads = args.threads or (3 if ci else 4)
    args.duration = args.duration or (25.0 if ci else 150.0)
    args.outage = args.outage if args.outage is not None else (3.0 if ci else 10.0)
    args.quiet_timeout = args.quiet_timeout or (80.0 if ci else 420.0)
    # (fraction of --duration, action, target)
    args.timeline = (
        [(0.3, "kill", "w1"), (0.6, "redis", "")]
        if ci
        else [(0.25, "kill", "w1"), (0.5, "redis", ""), (0.75, "kill", "w2")]
    )
    return args


def main() -> int:
    args = parse_args()
    h.raise_on_sigterm()
    with h.scratch_dir("bench-chaos-") as tmp:
        procs = h.Processes(tmp)
        created = False
        door: HoldingDoor | None = None
        try:
            redis = RedisServer(procs, tmp)
            extra = ["--fault-rate", FAULTS, "--latency-ms", str(LATENCY_MS)]
            extra += ["--retry-after", str(RETRY_AFTER), "--seed", str(args.seed)]
            emulator = h.EmulatorProcess(procs, rate_limit=0, extra_args=extra)
            door = HoldingDoor(emulator.url, args.held_writes, HOLD_SECONDS, args.seed)
            database_url = h.pg_create(args.pg, PG_DB)
            created = True
            env = h.django_env(
                database_url=database_url, broker_url=redis.url(0), cache_url=redis.url(1),
                api_url=door.url, push_delay=PUSH_DELAY,
            )  # fmt: skip
            env["BENCH_VOUCHERIFY_ORDERS"] = json.dumps(APP_SETTINGS)
            h.setup_django(env)
            ok = Chaos(args, procs, emulator, redis, env, tmp, door).run()
        finally:
            procs.stop_all()
            if door is not None:
                door.close()
            if created:
                from django.db import connections

                connections.close_all()
                h.pg_drop(args.pg, PG_DB)
            if args.keep_logs:
                import shutil

                shutil.copytree(tmp, args.keep_logs, dirs_exist_ok=True)
    return 0 if ok else 1


# --- the chaos Redis ------------------------------------------------------------------------


class RedisServer:
    """A redis-server of this run's own, on a free port, that can be stopped and restarted
    without touching the machine's shared Redis."""

    def __init__(self, procs: h.Processes, tmp: Path) -> None:
        self.procs, self.tmp, self.port = procs, tmp, h.free_port()
        self.starts = 0
        self.proc = self.start()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> Any:
        self.starts += 1
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.tmp)]
        proc, log = self.procs.start(f"redis-{self.starts}", cmd, env=dict(os.environ))
        h.wait_for_line(log, proc, "Ready to accept connections", timeout=20)
        self.proc = proc
        return proc

    def stop(self) -> None:
        self.procs.stop(self.proc)

    def backlog(self) -> int:
        """Messages in the broker queue and in its unacked (delivered, not acked) set."""
        import redis

        client = redis.Redis.from_url(self.url(0), socket_timeout=2)
        try:
            return int(client.llen(QUEUE)) + int(client.hlen("unacked"))
        finally:
            client.close()


# --- the door that holds writes past their lease ---------------------------------------------


class HoldingDoor:
    """An HTTP proxy in front of the emulator, where the workers send their calls. It holds
    a seeded fraction of the order writes for ``hold`` seconds before passing them on,
    whether or not the worker that sent one is still waiting: a write that outlives its
    lease and lands late, after a newer push of the same order."""

    def __init__(self, upstream: str, fraction: float, hold: float, seed: int) -> None:
        import http.server

        import requests

        self.upstream, self.fraction, self.hold = upstream.rstrip("/"), fraction, hold
        self.rng = random.Random(seed * 7919)
        self.lock = threading.Lock()
        self.holding = 0  # writes held right now
        self.held = 0  # writes held in all
        self.landed_late = 0  # held writes passed on after their worker had given up
        door = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                held = door.should_hold(self.command, self.path)
                if held:
                    time.sleep(door.hold)
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                try:
                    reply = requests.request(
                        self.command, door.upstream + self.path, data=body, headers=headers,
                        timeout=60,
                    )  # fmt: skip
                except requests.RequestException:  # the emulator dropped it: drop it too
                    self.close_connection = True
                    return
                finally:
                    if held:
                        with door.lock:
                            door.holding -= 1
                try:
                    self.send_response(reply.status_code)
                    for key, value in reply.headers.items():
                        if key.lower() not in ("content-length", "transfer-encoding",
                                               "connection", "content-encoding"):  # fmt: skip
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply.content)))
                    self.end_headers()
                    self.wfile.write(reply.content)
                except OSError:  # the worker timed out and closed the connection
                    if held:
                        with door.lock:
                            door.landed_late += 1

            do_GET = do_POST = do_PUT = do_DELETE = relay

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a worker SIGKILLed mid-call resets its connection: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def should_hold(self, method: str, path: str) -> bool:
        if not (method in ("POST", "PUT") and path.startswith("/v1/orders")):
            return False
        if path.startswith(("/v1/orders/import", "/v1/orders/export")):
            return False
        with self.lock:
            if self.rng.random() >= self.fraction:
                return False
            self.holding += 1
            self.held += 1
            return True

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the run --------------------------------------------------------------------------------


@dataclass
class Load:
    """What the load threads did; counters under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    orders: list[int] = field(default_factory=list)  # committed order pks, in creation order
    committed: Counter[str] = field(default_factory=Counter)
    rolled_back: Counter[str] = field(default_factory=Counter)
    rolled_back_creates: list[int] = field(default_factory=list)  # pks never committed
    deleted: list[int] = field(default_factory=list)  # deleted, not (yet) re-created
    ever: set[int] = field(default_factory=set)  # every pk committed at some point
    skipped: Counter[str] = field(default_factory=Counter)  # the order was deleted meanwhile
    errors: Counter[str] = field(default_factory=Counter)  # unintended (DB errors)
    markers: int = 0

    def marker(self) -> str:
        with self.lock:
            self.markers += 1
            return f"{ROLLBACK_NOTE}{self.markers}"


class CountingHandler(logging.Handler):
    """Counts the app's log records in this process by level (it would print them)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1


class Chaos:
    def __init__(
        self,
        args: argparse.Namespace,
        procs: h.Processes,
        emulator: h.EmulatorProcess,
        redis: RedisServer,
        env: dict[str, str],
        tmp: Path,
        door: HoldingDoor,
    ) -> None:
        from django.conf import settings
        from django.core.management import call_command
        from example_project.celery import app

        assert not settings.CELERY_TASK_ALWAYS_EAGER
        self.args, self.procs, self.emulator, self.redis = args, procs, emulator, redis
        self.env, self.tmp, self.celery = env, tmp, app
        self.door = door
        self.workers: dict[str, Any] = {}
        self.restarts: Counter[str] = Counter()
        self.events: list[str] = []
        self.exits: list[str] = []  # workers that exited without being killed
        self.tasks_run = 0  # push_orders tasks run by workers that are gone
        self.load = Load()
        self.stop = threading.Event()
        self.sweeps = {"runs": 0, "enqueued": 0, "errors": 0, "quiet_runs": 0, "quiet_enqueued": 0}
        # The app logs every failed enqueue while Redis is down: count, keep in a file.
        app_logger = logging.getLogger("django_voucherify_orders")
        app_logger.handlers = [logging.FileHandler(tmp / "bench-process.log")]
        self.log_counts = CountingHandler()
        app_logger.addHandler(self.log_counts)
        call_command("migrate", verbosity=0)
        self.customers, self.products = _catalogue(args.seed)

    # --- workers --------------------------------------------------------------------------

    def start_worker(self, name: str) -> None:
        cmd = [h.CELERY, "-A", "example_project", "worker", "-P", "prefork", "-c", "1"]
        cmd += ["-n", f"{name}@%h", "-Q", QUEUE, "-l", "WARNING"]
        cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        label = f"{name}-{self.restarts[name]}"
        self.restarts[name] += 1
        self.workers[name] = self.procs.start(label, cmd, env=self.env, cwd=h.EXAMPLE_DIR)

    def wait_workers(self, names: list[str], timeout: float = 60) -> None:
        nodes = [f"{name}@{socket.gethostname()}" for name in names]
        deadline = time.monotonic() + timeout
        while len(self.celery.control.ping(destination=nodes, timeout=0.5)) < len(nodes):
            for name in names:
                proc, log = self.workers[name]
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{log.read_text()}")

    def supervise(self, start: float) -> None:
        """What systemd or Kubernetes would do: restart a worker that exited on its own
        (Celery 5.7 + kombu's Redis transport can die with "Unrecoverable error" when the
        connection drops while a task is acknowledged). Each one is reported."""
        for name, (proc, log) in list(self.workers.items()):
            if proc.poll() is None:
                continue
            lines = log.read_text(errors="replace").strip().splitlines()
            last = lines[-1].strip()[:120] if lines else ""
            self.procs.stop(proc)
            self.start_worker(name)
            self.exits.append(name)
            self.events.append(
                f"+{time.monotonic() - start:.1f} s worker {name} had EXITED on its own "
                f"(status {proc.returncode}; last log line: {last!r}); restarted"
            )

    def wait(self, deadline: float, start: float) -> None:
        """Sleep until ``deadline`` (monotonic), supervising the workers meanwhile."""
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
            self.supervise(start)

    def task_count(self, names: list[str]) -> int:
        nodes = [f"{name}@{socket.gethostname()}" for name in names]
        for attempt in range(3):
            try:
                stats = self.celery.control.inspect(destination=nodes, timeout=3).stats() or {}
                break
            except Exception:  # a control connection from before the Redis restart
                if attempt == 2:
                    raise
                self.celery.pool.force_close_all()
        return sum(
            (info.get("total") or {}).get("django_voucherify_orders.push_orders", 0)
            for info in stats.values()
        )

    def kill_worker(self, name: str, at: float) -> None:
        from django.utils import timezone

        from django_voucherify_orders.models import OrderSync

        proc, _log = self.workers[name]
        self.tasks_run += self.task_count([name])
        leased = OrderSync.objects.filter(lease_until__gt=timezone.now()).count()
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its pool child
        proc.wait(10)
        self.procs.stop(proc)  # forget it (nothing left to signal)
        time.sleep(1.0)
        self.start_worker(name)
        self.events.append(
            f"+{at:.1f} s SIGKILL worker {name} (process group; {leased} OrderSync leases "
            f"held at that moment), restarted 1 s later"
        )

    def redis_outage(self, at: float) -> None:
        try:
            backlog = self.redis.backlog()
        except Exception as exc:  # only for the report
            backlog = f"? ({exc})"  # type: ignore[assignment]
        self.redis.stop()
        stopped = time.monotonic()
        time.sleep(self.args.outage)
        self.redis.start()
        down = time.monotonic() - stopped
        self.events.append(
            f"+{at:.1f} s Redis (broker and cache) stopped with {backlog} messages queued "
            f"or unacked (all lost), down {down:.1f} s, restarted empty"
        )

    # --- the run --------------------------------------------------------------------------

    def run(self) -> bool:
        args = self.args
        print(
            f"chaos{' --ci' if args.ci else ''}: {args.orders} orders, {args.threads} threads, "
            f"~{args.duration:.0f} s of load; Redis :{self.redis.port}; emulator {FAULTS}, "
            f"+{LATENCY_MS} ms, Retry-After {RETRY_AFTER}",
            flush=True,
        )
        for name in ("w1", "w2"):
            self.start_worker(name)
        self.wait_workers(["w1", "w2"])
        plan = _plan(args)
        beat = threading.Thread(target=self.beat, name="beat", daemon=True)
        beat.start()
        start = time.monotonic()
        threads = [
            threading.Thread(
                target=self.load_thread, args=(plan, start), name=f"load-{index}", daemon=True
            )
            for index in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for fraction, action, target in args.timeline:
            self.wait(start + fraction * args.duration, start)
            at = time.monotonic() - start
            print(f"  +{at:.0f} s {action} {target}".rstrip(), flush=True)
            if action == "kill":
                self.kill_worker(target, at)
            else:
                self.redis_outage(at)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
                self.supervise(start)
        load_time = time.monotonic() - start
        from django_voucherify_orders.sync.publisher import flush_publisher

        flush_publisher(timeout=30)
        self.stop.set()
        beat.join(30)
        print(f"  load done in {load_time:.0f} s; letting the system go quiet ...", flush=True)
        quiet_start = time.monotonic()
        quiet = self.wait_quiet(self.args.quiet_timeout, start)
        quiet_time = time.monotonic() - quiet_start
        return self.report(load_time, quiet, quiet_time, time.monotonic() - start)

    def beat(self) -> None:
        """Celery beat's part: ``sync.sweep()`` every BEAT_INTERVAL seconds."""
        from django.db import connection

        from django_voucherify_orders import sync

        try:
            while not self.stop.wait(BEAT_INTERVAL):
                try:
                    self.sweeps["enqueued"] += sync.sweep()
                    self.sweeps["runs"] += 1
                except Exception:  # a beat keeps beating
                    self.sweeps["errors"] += 1
        finally:
            connection.close()

    def wait_quiet(self, timeout: float, start: float) -> bool:
        """Sweep every BEAT_INTERVAL until no row is pending or leased and the emulator's
        request count stood still for 3 s (checked every second); False if that did not
        happen within ``timeout``."""
        from django.utils import timezone

        from django_voucherify_orders import sync
        from django_voucherify_orders.models import OrderSync, SyncState

        deadline = time.monotonic() + timeout
        last_total, still_since, last_print, last_sweep = -1, time.monotonic(), 0.0, 0.0
        while True:
            now = time.monotonic()
            if now - last_sweep >= BEAT_INTERVAL:
                self.sweeps["quiet_enqueued"] += sync.sweep()
                self.sweeps["quiet_runs"] += 1
                last_sweep = now
            pending = OrderSync.objects.filter(state=SyncState.PENDING).count()
            leased = OrderSync.objects.filter(lease_until__gt=timezone.now()).count()
            total = self.emulator.total()
            if total != last_total:
                last_total, still_since = total, now
            if now - last_print >= 10:
                print(
                    f"    pending {pending}, leased {leased}, held writes "
                    f"{self.door.holding}, API calls {total}",
                    flush=True,
                )
                last_print = now
            if pending == 0 and leased == 0 and self.door.holding == 0 and now - still_since >= 3:
                return True
            if now > deadline:
                print(f"    NOT quiet after {timeout:.0f} s: pending {pending}, leased {leased}")
                return False
            self.wait(time.monotonic() + 1.0, start)

    # --- the load ---------------------------------------------------------------------------

    def load_thread(self, plan: list[str], start: float) -> None:
        from django.db import DatabaseError, connection

        index = int(threading.current_thread().name.rsplit("-", 1)[1])
        rng = random.Random(self.args.seed * 1000 + index)
        rate = len(plan) / self.args.duration
        try:
            while not self.stop.is_set():
                with self.load.lock:
                    if not plan:
                        return
                    kind = plan.pop()
                    step = len(plan)
                _sleep_until(start + (self.args.duration - step / rate))
                try:
                    self.do(kind, rng)
                except DatabaseError as exc:
                    with self.load.lock:
                        self.load.errors[f"{kind}: {type(exc).__name__}"] += 1
        finally:
            connection.close()

    def do(self, kind: str, rng: random.Random) -> None:
        from django.db import transaction
        from shop.models import Order, OrderItem

        load = self.load
        if kind == "create":
            self.create(rng)
            return
        deadline = time.monotonic() + 10  # the first creations are on their way
        while not load.orders and time.monotonic() < deadline:
            time.sleep(0.01)
        if not load.orders:
            raise RuntimeError("no order was created in 10 s")
        if kind == "rollback" and rng.random() < 0.2:
            try:
                self.create(rng, marker=load.marker())
            except Rollback:
                with load.lock:
                    load.rolled_back["create"] += 1
            return
        if kind == "recreate":
            self.recreate(rng)
            return
        with load.lock:  # mostly the recent orders, as a shop's traffic goes
            recent = rng.random() < 0.8
            pool = load.orders[-100:] if recent else load.orders
            pk = rng.choice(pool)
            other = rng.choice(pool)
            if kind == "delete":
                if len(load.orders) < 10:
                    return
                load.orders.remove(pk)  # no thread picks it from now on
        try:
            with transaction.atomic():
                if kind == "move":
                    # Lock both orders in pk order, as two moves the other way would deadlock.
                    locked = {
                        o.pk: o
                        for o in Order.objects.select_for_update()
                        .filter(pk__in={pk, other})
                        .order_by("pk")
                    }
                    if pk == other or len(locked) < 2:
                        raise Order.DoesNotExist
                    self.move_item(locked[pk], locked[other], rng)
                    order = locked[pk]
                else:
                    order = Order.objects.select_for_update().get(pk=pk)
                if kind == "move":
                    pass
                elif kind == "delete":
                    order.delete()
                elif kind == "customer":
                    order.customer_id = rng.choice(
                        [c for c in self.customers if c != order.customer_id]
                    )
                    order.save()
                elif kind == "status":
                    order.status = rng.choice([s for s in STATUSES if s != order.status])
                    order.save()
                elif kind == "note":
                    order.note = rng.choice(["", f"note {rng.randrange(10**6)}"])
                    order.save()
                elif kind == "discount":
                    order.discount = rng.choice([Decimal(0), Decimal(rng.randrange(1, 500)) / 100])
                    order.save()
                elif kind == "items":
                    self.edit_items(order, rng)
                elif kind == "savepoint":
                    order.status = rng.choice([s for s in STATUSES if s != order.status])
                    order.save()
                    try:
                        with transaction.atomic():
                            order.note = load.marker()
                            order.status = "cancelled"
                            order.save()
                            OrderItem.objects.create(
                                order=order, product=self.products[0][0],
                                quantity=ROLLBACK_QUANTITY, unit_price=Decimal("1.000"),
                            )  # fmt: skip
                            raise Rollback
                    except Rollback:
                        with load.lock:
                            load.rolled_back["savepoint"] += 1
                elif kind == "rollback":
                    order.note = load.marker()
                    order.status = rng.choice([s for s in STATUSES if s != order.status])
                    order.save()
                    product, price = rng.choice(self.products)
                    OrderItem.objects.create(
                        order=order, product=product, quantity=ROLLBACK_QUANTITY, unit_price=price
                    )
                    raise Rollback
                else:
                    raise ValueError(kind)
        except Rollback:
            with load.lock:
                load.rolled_back["transaction"] += 1
            return
        except Order.DoesNotExist:  # deleted by another thread meanwhile
            with load.lock:
                load.skipped[kind] += 1
            return
        with load.lock:
            load.committed[kind] += 1
            if kind == "delete":
                load.deleted.append(pk)

    def create(self, rng: random.Random, marker: str | None = None) -> None:
        from django.db import transaction
        from shop.models import Order, OrderItem

        with transaction.atomic():
            order = Order.objects.create(
                customer_id=rng.choice(self.customers),
                number=f"CH-{rng.randrange(10**12):012d}",
                note=marker or "",
            )
            for product, price in rng.sample(self.products, rng.randint(1, 3)):
                quantity = ROLLBACK_QUANTITY if marker else rng.randint(1, 5)
                OrderItem.objects.create(
                    order=order, product=product, quantity=quantity, unit_price=price
                )
            if marker:
                with self.load.lock:
                    self.load.rolled_back_creates.append(order.pk)
                raise Rollback
        with self.load.lock:
            self.load.orders.append(order.pk)
            self.load.ever.add(order.pk)
            self.load.committed["create"] += 1

    def recreate(self, rng: random.Random) -> None:
        """An order deleted, then created again with the same key (so the same source_id)."""
        from django.db import transaction
        from shop.models import Order, OrderItem

        with self.load.lock:
            if not self.load.deleted:
                self.load.skipped["recreate"] += 1
                return
            pk = self.load.deleted.pop(rng.randrange(len(self.load.deleted)))
        with transaction.atomic():
            order = Order.objects.create(
                pk=pk, customer_id=rng.choice(self.customers),
                number=f"CH-{rng.randrange(10**12):012d}", status=rng.choice(STATUSES),
            )  # fmt: skip
            for product, price in rng.sample(self.products, rng.randint(1, 3)):
                OrderItem.objects.create(
                    order=order, product=product, quantity=rng.randint(1, 5), unit_price=price
                )
        with self.load.lock:
            self.load.orders.append(pk)
            self.load.committed["recreate"] += 1

    def move_item(self, order: Any, other: Any, rng: random.Random) -> None:
        """A line moved to another order (both orders change)."""
        items = list(order.items.order_by("pk"))
        if not items:
            raise type(order).DoesNotExist
        item = rng.choice(items)
        item.order = other
        item.save()

    def edit_items(self, order: Any, rng: random.Random) -> None:
        from shop.models import OrderItem

        items = list(order.items.order_by("pk"))
        choice = rng.random()
        if items and (choice < 0.5 or (choice < 0.75 and len(items) >= 4)):
            item = rng.choice(items)
            if rng.random() < 0.7:
                item.quantity = rng.choice([q for q in range(1, 6) if q != item.quantity])
            else:  # a price corrected on the line
                item.unit_price = Decimal(rng.randrange(100, 9000)) / 100
            item.save()
        elif choice < 0.75 or len(items) <= 1:
            product, price = rng.choice(self.products)
            OrderItem.objects.create(
                order=order, product=product, quantity=rng.randint(1, 5), unit_price=price
            )
        else:
            rng.choice(items).delete()

    # --- the check and the report ---------------------------------------------------------

    def check(self) -> dict[str, Any]:
        from shop.models import Order

        from django_voucherify_orders.mapping import get_mapper
        from django_voucherify_orders.models import OrderSync, SyncState

        mapper = get_mapper()
        local: dict[str, dict[str, Any]] = {}
        for order in mapper.get_queryset().order_by("pk").iterator(chunk_size=500):
            payload = mapper.build(order).to_json()
            local[payload["source_id"]] = payload
        remote_list = self.emulator._get("/_emulator/orders")
        remote_ids = Counter(o.get("source_id") for o in remote_list)
        remote = {o.get("source_id"): o for o in remote_list}
        wrong: Counter[str] = Counter()
        wrong_orders: list[str] = []
        examples: list[str] = []
        # Voucherify answers with a customer reference: one local customer must be one
        # remote customer, and two local ones two.
        remote_customers: dict[str, set[str | None]] = {}
        for source_id, want in local.items():
            got = remote.get(source_id)
            if got is None:
                continue
            customer = (want.get("customer") or {}).get("source_id")
            remote_customers.setdefault(customer, set()).add(got.get("customer_id"))
            bad = _compare(want, got)
            wrong.update(field for field, _ in bad)
            if bad:
                wrong_orders.append(source_id)
                if len(examples) < 5:
                    examples.append(f"{source_id}: " + "; ".join(d for _, d in bad[:4]))
        owners: Counter[str | None] = Counter()
        for customer, ids in remote_customers.items():
            owners.update(ids)
            if len(ids) != 1 or None in ids:
                wrong["customer"] += 1
                examples.append(
                    f"customer {customer}: Voucherify customers {sorted(map(str, ids))}"
                )
        for customer_id, count in owners.items():
            if count > 1:
                wrong["customer"] += 1
                examples.append(f"Voucherify customer {customer_id}: {count} local customers")
        rolled_back_seen = [
            o.get("source_id")
            for o in remote_list
            if str((o.get("metadata") or {}).get("note", "")).startswith(ROLLBACK_NOTE)
            or any(item.get("quantity") == ROLLBACK_QUANTITY for item in o.get("items") or [])
        ]
        rolled_back_created = {str(pk) for pk in self.load.rolled_back_creates}
        states = Counter(OrderSync.objects.values_list("state", flat=True))
        return {
            "local": len(local),
            "local_db": Order.objects.count(),
            "remote": len(remote_list),
            "lost": sorted(set(local) - set(remote), key=int),
            "wrong": wrong,
            "wrong_orders": wrong_orders,
            "examples": examples,
            "duplicated": sorted(k for k, n in remote_ids.items() if n > 1),
            # Voucherify has no DELETE for orders: a deleted order's stays (not a phantom).
            "phantom": sorted(set(remote) - set(local) - {str(pk) for pk in self.load.ever}),
            "deleted_rows_not_deleted": OrderSync.objects.filter(
                pk__in=[str(pk) for pk in self.load.deleted]
            )
            .exclude(state=SyncState.DELETED)
            .count(),
            "phantom_rolled_back": sorted(rolled_back_created & set(remote)),
            "rolled_back_seen": rolled_back_seen,
            "failed": states.get(SyncState.FAILED, 0),
            "failed_rows": [
                f"{pk}: {key} {message[:200]}"
                for pk, key, message in OrderSync.objects.filter(
                    state=SyncState.FAILED
                ).values_list("pk", "last_error_key", "last_error_message")[:10]
            ],
            "pending": states.get(SyncState.PENDING, 0),
            "no_row": len(set(local) - set(OrderSync.objects.values_list("pk", flat=True))),
            "states": dict(states),
        }

    def report(self, load_time: float, quiet: bool, quiet_time: float, total: float) -> bool:
        args, load = self.args, self.load
        result = self.check()
        counts = self.emulator._get("/_emulator/requests")
        by_status = Counter({int(k): v for k, v in counts["by_status"].items()})
        calls = sum(by_status.values())
        ok_calls = sum(v for k, v in by_status.items() if 200 <= k < 300)
        faults = {
            "500": by_status.get(500, 0),
            "429": by_status.get(429, 0),
            "dropped": by_status.get(0, 0),
        }
        other = {k: v for k, v in by_status.items() if k not in (0, 429, 500) and k >= 300}
        committed = sum(load.committed.values())
        rolled_back = sum(load.rolled_back.values())
        endpoints = Counter(
            {k: v for k, v in counts["by_endpoint"].items() if not k.startswith("GET")}
        )
        methods: Counter[str] = Counter()
        for key, value in endpoints.items():
            methods[key.split(" ", 1)[0]] += value
        tasks = self.tasks_run + self.task_count(list(self.workers))
        sweeps = self.sweeps

        print()
        print(
            f"chaos{' --ci' if args.ci else ''}: PostgreSQL + own Redis (broker, cache), TWO "
            f"workers (prefork -c 1), emulator over HTTP ({FAULTS}, +{LATENCY_MS} ms, "
            f"Retry-After {RETRY_AFTER}); load average now {os.getloadavg()[0]:.1f}"
        )
        print(
            f"Load: {load.committed['create']} orders created, {committed} committed changes "
            f"({_fmt(load.committed)}), {rolled_back} rolled-back changes "
            f"({_fmt(load.rolled_back)}), {sum(load.errors.values())} DB errors"
            f"{_paren(load.errors)}; {args.threads} threads, {load_time:.1f} s"
        )
        print("Chaos:")
        for event in self.events:
            print(f"  {event}")
        print(
            f"  this process's app log: {self.log_counts.counts.get('WARNING', 0)} warnings "
            f"(failed enqueues while Redis was down), "
            f"{self.log_counts.counts.get('ERROR', 0)} errors; during the load "
            f"{sweeps['runs']} sweeps re-enqueued {sweeps['enqueued']} pushes "
            f"({sweeps['errors']} sweep errors), afterwards {sweeps['quiet_runs']} sweeps "
            f"{sweeps['quiet_enqueued']}"
        )
        print(
            f"Faults injected (emulator's request log): {_fmt(faults)}; other error statuses "
            f"{other or 'none'}; {ok_calls} calls answered 2xx of {calls}"
        )
        print(
            f"Quiet: {'yes' if quiet else 'NO'} after {quiet_time:.0f} s; total {total:.0f} s; "
            f"workers that exited on their own (restarted): {self.exits or 'none'}"
        )
        print(
            f"API calls: {calls} ({_fmt(methods)}) = {calls / max(committed, 1):.2f} per "
            f"committed change, {ok_calls / max(committed, 1):.2f} successful per change, "
            f"{ok_calls / max(result['local'], 1):.2f} successful per order; push_orders tasks "
            f"run {tasks}{'+' if self.exits else ''} = {tasks / max(calls, 1):.1f} per API call"
        )
        wrong = len(result["wrong_orders"])
        print(
            f"Check: {result['local']} local orders, {result['remote']} in Voucherify; "
            f"lost {len(result['lost'])}, wrong {wrong}{_paren(result['wrong'])}, "
            f"duplicated {len(result['duplicated'])}, phantom {len(result['phantom'])} "
            f"(of them created by rolled-back transactions {len(result['phantom_rolled_back'])}"
            f"), rolled-back values present {len(result['rolled_back_seen'])}"
        )
        print(
            f"OrderSync: {result['states']}; failed {result['failed']}, pending "
            f"{result['pending']}, orders without a row {result['no_row']}, rows of deleted "
            f"orders not marked deleted {result['deleted_rows_not_deleted']}"
        )
        door = self.door
        print(
            f"Late writes: {door.held} writes held {HOLD_SECONDS:.0f} s (longer than the "
            f"{APP_SETTINGS['LEASE_SECONDS']:.0f} s lease), {door.landed_late} of them landed "
            f"after their worker had given up; changes skipped because another thread had "
            f"deleted the order: {sum(load.skipped.values())}{_paren(load.skipped)}"
        )
        for label, values in (
            ("lost", result["lost"]), ("wrong", result["examples"]),
            ("duplicated", result["duplicated"]), ("phantom", result["phantom"]),
            ("rolled back", result["rolled_back_seen"]), ("failed", result["failed_rows"]),
        ):  # fmt: skip
            if values:
                print(f"  {label}: {', '.join(map(str, values[:10]))}")
        bad = (
            len(result["lost"]) + wrong + len(result["duplicated"]) + len(result["phantom"])
            + len(result["rolled_back_seen"]) + result["failed"] + result["pending"]
            + result["no_row"] + result["deleted_rows_not_deleted"] + result["wrong"]["customer"]
        )  # fmt: skip
        expected_local = (
            load.committed["create"] - load.committed["delete"] + load.committed["recreate"]
        )
        ok = quiet and bad == 0 and result["local"] == expected_local
        print(f"Result: {'PASS' if ok else 'FAIL'} (lost {len(result['lost'])}, wrong {wrong})")
        return ok


# --- helpers --------------------------------------------------------------------------------


def _catalogue(seed: int) -> tuple[list[int], list[tuple[Any, Decimal]]]:
    """Customers and products (bulk: no signals, not orders)."""
    from shop.models import Customer, Product

    rng = random.Random(seed)
    Customer.objects.bulk_create(
        Customer(name=f"Chaos Customer {i}", email=f"c{i}@chaos.example", city="Berlin")
        for i in range(50)
    )
    Product.objects.bulk_create(
        Product(
            sku=f"CH-{i:03d}",
            name=f"Chaos product {i}",
            price=Decimal(rng.randrange(100, 9000)) / 100,
        )
        for i in range(40)
    )
    customers = list(Customer.objects.values_list("pk", flat=True))
    products = [(p, p.price) for p in Product.objects.all()]
    return customers, products


def _plan(args: argparse.Namespace) -> list[str]:
    """The operations, shuffled, popped from the end; creations come early enough that
    changes have orders to change."""
    rng = random.Random(args.seed)
    mix = dict(MIX, discount=0.3) if args.clear_discounts else MIX
    ops = ["create"] * args.orders
    for kind, per_order in mix.items():
        ops += [kind] * round(per_order * args.orders)
    rng.shuffle(ops)
    # Keep the creations from bunching at the end: the i-th creation no later than
    # position i * len / orders * 0.9 from the start of the run.
    ordered = [op for op in ops if op != "create"]
    out: list[str] = []
    spacing = len(ops) / args.orders * 0.9
    created = 0
    for op in ordered:
        while created < args.orders and len(out) >= created * spacing:
            out.append("create")
            created += 1
        out.append(op)
    out += ["create"] * (args.orders - created)
    out.reverse()  # popped from the end
    return out


def _compare(want: dict[str, Any], got: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, what differs) for every field the mapper sends that Voucherify does not
    hold as sent: the admin's compare (zero discounts Voucherify leaves out, timestamps to
    the millisecond, the customer kept apart), and the item count, which a compare of the
    local fields alone would miss (a line moved away leaves one item too many)."""
    from django_voucherify_orders.admin.diff import compare

    bad = []
    ours, theirs = want.get("items") or [], got.get("items") or []
    if len(ours) != len(theirs):
        bad.append(("item count", f"items {len(ours)} here, {len(theirs)} in Voucherify"))
    for row in compare(want, got):
        if row.is_difference:
            top = row.path.split(".", 1)[0].split("[", 1)[0]
            leaf = row.path.rsplit(".", 1)[-1]
            name = f"items.{leaf}" if top == "items" and row.path != "items" else top
            bad.append((name, f"{row.path} {row.local} / {row.remote}"))
    return bad


def _fmt(counts: dict[str, int] | Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v)


def _paren(counts: dict[str, int] | Counter[str]) -> str:
    return f" ({_fmt(counts)})" if any(counts.values()) else ""


def _sleep_until(deadline: float, sleep: Callable[[float], None] = time.sleep) -> None:
    if (wait := deadline - time.monotonic()) > 0:
        sleep(wait)


if __name__ == "__main__":
    h.run_main(main)
