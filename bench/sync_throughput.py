"""How fast committed order changes reach Voucherify through real Celery workers.

    .venv/bin/python bench/sync_throughput.py [--quick] [--rate 20/s]
                                              [--compare-package DIR]

PostgreSQL (scratch database ``bench_vo_sync``), Redis broker and cache (databases 12
and 13), the emulator's HTTP door as a subprocess (``--rate-limit 0``: unlimited),
``PUSH_DELAY = 0`` (so latency is not the coalescing delay).

1. Throughput, interleaved w, r, [p,] i, c, w, r, ...; each drains N fresh orders:
   w  ONE worker process (prefork, concurrency 1), the example shop's settings; the
      backlog is enqueued while its consumer is cancelled, then switched back on
   r  the same with CELERY_DB_REUSE_MAX=1000 (Celery's Django fixup otherwise closes
      the database connection before and after every task)
   p  (``--compare-package DIR``) as r, but importing django_voucherify_orders from DIR
   i  no Celery: ``sync.push_many()`` in batches of ``PUSH_BATCH`` in this process (the
      push engine alone)
   c  the ceiling: this process POSTs the same orders' payloads (mapper output, built
      beforehand) in a loop, ``VoucherifyClient.create_order`` over one keep-alive session
   Every rate comes from the emulator's receive timestamps, first call to last call.
2. Latency, commit to arrival at the emulator, one save at a time (~20 per second, the
   worker idle in between), blocks of 10 saves per worker variant: commit times are
   stamped by an on_commit hook registered first in the transaction, arrival times by
   the emulator (``GET /_emulator/requests?detail=1``).
3. ``VOUCHERIFY_RATE_LIMIT`` set (``--rate``), TWO workers: latency again with saves at
   half the limit, then a backlog pushed as fast as the limit allows. Every window of
   the limit's period, over the emulator's receive timestamps, must hold at most the
   limit; the largest count seen is printed, and the same over the workers' send times
   (SyncAttempt.started_at) to tell a limiter fault from network jitter.

Timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h

PG_DB = "bench_vo_sync"
BROKER_DB, CACHE_DB = 12, 13
QUEUE = "celery"  # VOUCHERIFY_ORDERS["CELERY_QUEUE"] is None in the example shop
STATUSES = ("new", "paid", "shipped", "cancelled")
TARGET_SHARE, TARGET_P50_MS, TARGET_P95_MS = 0.35, 30.0, 100.0
IN_LABEL = "no Celery: sync.push_many() in batches, this process"


@dataclass(frozen=True)
class Worker:
    """A phase 1 worker variant: its node name, label and extra environment."""

    name: str
    label: str
    env: dict[str, str]


def phase1_workers(args: argparse.Namespace) -> dict[str, Worker]:
    """ "w" runs the example shop's settings as they are: Celery's Django fixup then closes
    the database connection before and after every task. "r" keeps it for 1000 tasks.
    "p" (``--compare-package DIR``) is "r" importing django_voucherify_orders from DIR."""
    workers = {
        "w": Worker("w1", "ONE worker, example settings", {"BENCH_DB_REUSE_MAX": ""}),
        "r": Worker("w1r", "ONE worker, CELERY_DB_REUSE_MAX=1000", {"BENCH_DB_REUSE_MAX": "1000"}),
    }
    if args.compare_package:
        label = f"as r, app from {args.compare_package}"
        env = {"BENCH_DB_REUSE_MAX": "1000", "PYTHONPATH_FIRST": str(args.compare_package)}
        workers["p"] = Worker("w1p", label, env)
    return workers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (under a minute)")
    parser.add_argument("--rounds", type=int, help="w,c throughput rounds (default 4, quick 2)")
    parser.add_argument("--orders", type=int, help="orders per round (default 200, quick 50)")
    parser.add_argument("--saves", type=int, help="latency samples (default 200, quick 30)")
    parser.add_argument("--rate", default="20/s", help='RATE_LIMIT of phase 3 (e.g. "300/m")')
    parser.add_argument("--pg", default=h.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--redis", default=h.DEFAULT_REDIS, help="Redis server URL")
    parser.add_argument(
        "--compare-package",
        type=Path,
        help="also run a worker importing django_voucherify_orders from this directory "
        "(a patched copy), interleaved with the others",
    )
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 4)
    args.orders = args.orders or (50 if args.quick else 200)
    args.saves = args.saves or (30 if args.quick else 200)
    return args


def main() -> int:
    args = parse_args()
    h.raise_on_sigterm()
    broker = h.with_path(args.redis, str(BROKER_DB))
    cache = h.with_path(args.redis, str(CACHE_DB))
    with h.scratch_dir("bench-sync-") as tmp:
        procs = h.Processes(tmp)
        created = False
        try:
            emulator = h.EmulatorProcess(procs, rate_limit=0)
            database_url = h.pg_create(args.pg, PG_DB)
            created = True
            h.redis_flush(broker)
            h.redis_flush(cache)
            env = h.django_env(
                database_url=database_url, broker_url=broker, cache_url=cache,
                api_url=emulator.url, push_delay=0.0,
            )  # fmt: skip
            h.setup_django(env)
            Bench(args, procs, emulator, env).run()
        finally:
            procs.stop_all()
            if created:
                from django.db import connections

                connections.close_all()
                h.pg_drop(args.pg, PG_DB)
            h.redis_flush(broker)
            h.redis_flush(cache)
    return 0


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        procs: h.Processes,
        emulator: h.EmulatorProcess,
        env: dict[str, str],
    ) -> None:
        import io

        from django.conf import settings
        from django.core.management import call_command
        from example_project.celery import app

        assert not settings.CELERY_TASK_ALWAYS_EAGER
        self.args, self.procs, self.emulator, self.env = args, procs, emulator, env
        self.celery = app
        self.workers: dict[str, Any] = {}
        count, period = _parse_rate(args.rate)
        # Enough for several windows of the limit: 6 periods of a per-second limit, 1.5 of
        # a per-minute one (90 s for "300/m").
        self.rate_orders = 50 if args.quick else int(count * (6 if period < 10 else 1.5))
        self.phase1 = phase1_workers(args)
        total = 20 + args.rounds * args.orders * (len(self.phase1) + 1) + self.rate_orders
        print(f"Seeding {total} orders (3 items each) in PostgreSQL ...", flush=True)
        call_command("migrate", verbosity=0)
        call_command("seed_shop", orders=total, items=3, seed=11, stdout=io.StringIO())
        from shop.models import Order

        self.fresh = list(Order.objects.order_by("pk").values_list("pk", flat=True))

    def take(self, count: int) -> list[int]:
        taken, self.fresh = self.fresh[:count], self.fresh[count:]
        return taken

    # --- workers ------------------------------------------------------------------------

    def start_workers(self, specs: dict[str, dict[str, str]]) -> None:
        """Start workers ``{name: extra environment}``; they come back not consuming."""
        for name, extra in specs.items():
            cmd = [h.CELERY, "-A", "example_project", "worker", "-P", "prefork", "-c", "1"]
            cmd += ["-n", f"{name}@%h", "-Q", QUEUE, "-l", "WARNING"]
            cmd += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            env = dict(self.env, **extra)
            if first := env.pop("PYTHONPATH_FIRST", None):
                env["PYTHONPATH"] = os.pathsep.join([first, env["PYTHONPATH"]])
            self.workers[name] = self.procs.start(name, cmd, env=env, cwd=h.EXAMPLE_DIR)
        nodes = [self.node(name) for name in specs]
        deadline = time.monotonic() + 60
        while len(self.celery.control.ping(destination=nodes, timeout=0.5)) < len(nodes):
            for name in specs:
                proc, log = self.workers[name]
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start:\n{log.read_text()}")
        self.consume(list(specs), on=False)
        for name in specs:  # warm up: imports, connections, the mapper, a first push
            self.push_backlog(self.take(4), [name])

    def stop_workers(self) -> None:
        for proc, _log in self.workers.values():
            self.procs.stop(proc)
        self.workers.clear()

    def node(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def consume(self, names: Sequence[str], on: bool) -> None:
        """Switch the workers' consumer of the queue on or off (Celery remote control)."""
        nodes = [self.node(name) for name in names]
        control = self.celery.control
        call = control.add_consumer if on else control.cancel_consumer
        replies = call(QUEUE, destination=nodes, reply=True, timeout=5)
        if len(replies) != len(nodes):
            raise RuntimeError(f"{'add' if on else 'cancel'}_consumer: replies {replies}")

    # --- marking orders, waiting for them ------------------------------------------------

    def mark(self, pks: Sequence[int], *, enqueue: bool = True) -> float:
        """Mark fresh orders changed in one transaction; returns the commit time."""
        from contextlib import nullcontext

        from django.db import transaction
        from shop.models import Order

        from django_voucherify_orders import enqueue_sync, paused_sync

        stamp: list[float] = []
        with transaction.atomic(), nullcontext() if enqueue else paused_sync():
            transaction.on_commit(lambda: stamp.append(time.time()))
            enqueue_sync(Order.objects.filter(pk__in=list(pks)))
        return stamp[0]

    def wait_synced(self, pks: Sequence[int], timeout: float) -> None:
        from django_voucherify_orders.models import OrderSync, SyncState

        keys = [str(pk) for pk in pks]
        deadline = time.monotonic() + timeout
        while True:
            rows = OrderSync.objects.filter(pk__in=keys)
            done = rows.filter(state__in=[SyncState.SYNCED, SyncState.FAILED]).count()
            if done == len(keys):
                failed = rows.exclude(state=SyncState.SYNCED).count()
                if failed:
                    print(f"  warning: {failed} of {len(keys)} pushes did not end synced")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {len(keys)} orders pushed in {timeout:.0f}s")
            time.sleep(0.05)

    def push_backlog(self, pks: Sequence[int], names: Sequence[str]) -> tuple[float, float]:
        """Queue pushes of ``pks`` while no worker consumes, then let ``names`` drain them."""
        start = self.mark(pks)
        self.consume(names, on=True)
        try:
            self.wait_synced(pks, timeout=120 + len(pks))
        finally:
            self.consume(names, on=False)
        return start, time.time()

    # --- the phases -----------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        print("Starting the emulator (no rate limit) and the phase 1 workers ...", flush=True)
        self.start_workers({worker.name: worker.env for worker in self.phase1.values()})

        order = ",".join((*self.phase1, "i", "c"))
        print(f"Throughput: {args.rounds} rounds of {args.orders} orders, {order} interleaved")
        rates: dict[str, list[float]] = {variant: [] for variant in (*self.phase1, "i", "c")}
        pushed: list[int] = []
        for _round in range(args.rounds):
            for variant, worker in self.phase1.items():
                pks = self.take(args.orders)
                start, end = self.push_backlog(pks, [worker.name])
                rates[variant].append(self.rate_between(start, end, "POST", "/v1/orders"))
                pushed += pks
            start, end = self.in_process(self.take(args.orders))
            rates["i"].append(self.rate_between(start, end, "POST", "/v1/orders"))
            start, end = self.ceiling(pks, suffix=f"-c{_round}")
            rates["c"].append(self.rate_between(start, end, "POST", "/v1/orders"))

        print(f"Latency: {args.saves} saves, one at a time, PUSH_DELAY=0, no RATE_LIMIT ...")
        groups = [[worker.name] for worker in self.phase1.values()]
        latency = self.latency(pushed, args.saves, interval=0.05, groups=groups)
        self.stop_workers()

        limit = _parse_rate(args.rate)
        print(f"RATE_LIMIT={args.rate}: TWO workers; latency at half the limit, then a backlog")
        self.start_workers({name: {"VOUCHERIFY_RATE_LIMIT": args.rate} for name in ("w2", "w3")})
        limited_start = time.time()
        interval = limit[1] / limit[0] * 2
        saves = 20 if args.quick else 60
        limited = self.latency(pushed, saves, interval, groups=[["w2", "w3"]])
        burst_start, burst_end = self.push_backlog(self.take(len(self.fresh)), ["w2", "w3"])
        stats = self.celery.control.inspect(destination=[self.node("w2"), self.node("w3")])
        per_worker = {
            node.split("@")[0]: sum((info.get("total") or {}).values())
            for node, info in (stats.stats() or {}).items()
        }
        self.stop_workers()
        windows = self.windows(limited_start, time.time(), limit)
        burst_rate = self.rate_between(burst_start, burst_end, None, "/v1/orders")
        self.report(rates, latency, limited["w2"], windows, burst_rate, per_worker, limit)

    def in_process(self, pks: Sequence[int]) -> tuple[float, float]:
        """The push engine without Celery: ``sync.push_many`` in this process."""
        from django_voucherify_orders import sync
        from django_voucherify_orders.sync.publisher import PUSH_BATCH

        self.mark(pks, enqueue=False)
        keys = [str(pk) for pk in pks]
        start = time.time()
        for first in range(0, len(keys), PUSH_BATCH):
            sync.push_many(keys[first : first + PUSH_BATCH])
        return start, time.time()

    def ceiling(self, pks: Sequence[int], suffix: str) -> tuple[float, float]:
        """POST the mapper's payloads for ``pks`` in a loop over one keep-alive session."""
        from django_voucherify_orders.client import VoucherifyClient
        from django_voucherify_orders.mapping import get_mapper

        mapper = get_mapper()
        payloads = []
        for order in mapper.get_queryset().filter(pk__in=list(pks)).order_by("pk"):
            payload = mapper.build(order).to_json()
            payload["source_id"] += suffix  # a new order, as the worker's pushes are
            payloads.append(payload)
        with VoucherifyClient(h.APP_ID, h.SECRET_KEY, self.emulator.url) as client:
            client.create_order(payloads[0] | {"source_id": f"warm{suffix}"})
            start = time.time()
            for payload in payloads:
                client.create_order(payload)
            return start, time.time()

    def latency(
        self, pool: Sequence[int], saves: int, interval: float, groups: list[list[str]]
    ) -> dict[str, list[float]]:
        """Status changes of already pushed orders, one transaction each, ``interval`` apart,
        in blocks of 10 consumed by each group of workers in turn. Seconds, by group."""
        from django.db import transaction
        from shop.models import Order

        orders = list(Order.objects.filter(pk__in=list(pool)).order_by("pk"))
        random.Random(5).shuffle(orders)
        jitter = random.Random(6)
        commits: dict[str, list[tuple[str, float]]] = {group[0]: [] for group in groups}
        for block in range(0, saves, 10):
            group = groups[(block // 10) % len(groups)]
            self.consume(group, on=True)
            done = []
            for index in range(block, min(block + 10, saves)):
                order = orders[index % len(orders)]
                order.status = STATUSES[(STATUSES.index(order.status) + 1) % len(STATUSES)]
                stamp: list[float] = []
                with transaction.atomic():
                    transaction.on_commit(lambda stamp=stamp: stamp.append(time.time()))
                    order.save()
                commits[group[0]].append((str(order.pk), stamp[0]))
                done.append(order.pk)
                time.sleep(interval * jitter.uniform(0.5, 1.5))
            self.wait_synced(done, timeout=60)
            self.consume(group, on=False)
        arrivals: dict[str, list[float]] = {}
        for record in self.emulator.detail():
            if record["method"] == "PUT":
                arrivals.setdefault(record["path"].rsplit("/", 1)[-1], []).append(record["time"])
        latencies: dict[str, list[float]] = {}
        for name, group_commits in commits.items():
            latencies[name] = [
                min(later) - committed
                for key, committed in group_commits
                if (later := [t for t in arrivals.get(key, ()) if t >= committed])
            ]
            if missing := len(group_commits) - len(latencies[name]):
                print(f"  warning: {missing} saves never reached the emulator")
        return latencies

    def rate_between(self, start: float, end: float, method: str | None, path_prefix: str) -> float:
        times = sorted(
            r["time"]
            for r in self.emulator.detail()
            if start <= r["time"] <= end
            and (method is None or r["method"] == method)
            and r["path"].startswith(path_prefix)
        )
        if len(times) < 2:
            return float("nan")
        return (len(times) - 1) / (times[-1] - times[0])

    def windows(self, start: float, end: float, limit: tuple[int, float]) -> dict[str, Any]:
        """The most API calls in any window of the limit's period: as the emulator received
        them, and as the workers sent them (SyncAttempt.started_at, for the diagnosis)."""
        from datetime import UTC, datetime

        from django_voucherify_orders.models import SyncAttempt

        received = [r["time"] for r in self.emulator.detail() if start <= r["time"] <= end]
        sent = [
            started.timestamp()
            for started in SyncAttempt.objects.filter(
                started_at__gte=datetime.fromtimestamp(start, UTC),
                started_at__lte=datetime.fromtimestamp(end, UTC),
            ).values_list("started_at", flat=True)
        ]
        most, at = most_in_window(received, limit[1])
        return {
            "calls": len(received), "max": most, "at": at - start,
            "sent": len(sent), "sent_max": most_in_window(sent, limit[1])[0],
        }  # fmt: skip

    # --- the report ---------------------------------------------------------------------

    def report(
        self,
        rates: dict[str, list[float]],
        latency: dict[str, list[float]],
        limited_latency: list[float],
        windows: dict[str, Any],
        burst_rate: float,
        per_worker: dict[str, int],
        limit: tuple[int, float],
    ) -> None:
        args = self.args
        c = h.median(rates["c"])
        print()
        print(
            f"sync_throughput: PostgreSQL + Redis, emulator over HTTP, PUSH_DELAY=0; "
            f"{args.rounds} rounds x {args.orders} orders, interleaved {','.join(rates)}; "
            f"load average now {os.getloadavg()[0]:.1f}"
        )
        print("Rates from the emulator's receive times; median [rounds].")
        print(
            f"  c  ceiling, 1 process, 1 keep-alive session: {c:.0f} orders/s {_list(rates['c'])}"
        )
        for variant, label in [*((v, w.label) for v, w in self.phase1.items()), ("i", IN_LABEL)]:
            w = h.median(rates[variant])
            shares = [a / b for a, b in zip(rates[variant], rates["c"], strict=True)]
            print(
                f"  {variant}  {label}: {w:.0f} orders/s {_list(rates[variant])}  = {w / c:.0%} "
                f"of c [{min(shares):.0%}-{max(shares):.0%}]   target >= {TARGET_SHARE:.0%}: "
                f"{h.verdict(w / c >= TARGET_SHARE)}"
            )
        print("Latency, commit to arrival at the emulator, one save at a time:")
        for variant, worker in self.phase1.items():
            _latency_line(f"{variant}  {worker.label}, no RATE_LIMIT", latency[worker.name])
        _latency_line(
            f"   TWO workers, RATE_LIMIT={args.rate}, saves at half of it", limited_latency
        )
        ok = windows["max"] <= limit[0]
        print(
            f"RATE_LIMIT={args.rate}, TWO workers: {windows['calls']} calls; the most in any "
            f"{limit[1]:g} s window = {windows['max']} (at +{windows['at']:.1f} s)   "
            f"limit {limit[0]}: {h.verdict(ok)}"
        )
        print(
            f"  as sent by the workers (SyncAttempt.started_at): {windows['sent']} calls, "
            f"the most in any window = {windows['sent_max']}"
        )
        print(
            f"  the backlog drained at {burst_rate:.1f} calls/s, first to last call "
            f"(limit {limit[0] / limit[1]:.1f}/s, an empty window first); "
            f"tasks per worker {per_worker}"
        )


def most_in_window(times: Sequence[float], period: float) -> tuple[int, float]:
    """The most of ``times`` in any half-open window [t, t + period), and where it starts;
    windows starting at one of the times are enough to find the maximum."""
    ordered = sorted(times)
    most, at, j = 0, ordered[0] if ordered else 0.0, 0
    for i, t in enumerate(ordered):
        while j < len(ordered) and ordered[j] < t + period:
            j += 1
        if j - i > most:
            most, at = j - i, t
    return most, at


def _latency_line(label: str, values: list[float]) -> None:
    if not values:
        print(f"  {label}: no samples")
        return
    p50, p95 = h.quantile(values, 0.5) * 1000, h.quantile(values, 0.95) * 1000
    ok = p50 < TARGET_P50_MS and p95 < TARGET_P95_MS
    print(
        f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(values) * 1000:.1f} ms "
        f"(n={len(values)})   target p50 < {TARGET_P50_MS:g}, p95 < {TARGET_P95_MS:g}: "
        f"{h.verdict(ok)}"
    )


def _list(values: Sequence[float], fmt: Callable[[float], str] = "{:.0f}".format) -> str:
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def _parse_rate(text: str) -> tuple[int, float]:
    count, _, unit = text.partition("/")
    return int(count), {"s": 1.0, "m": 60.0, "h": 3600.0}[unit]


if __name__ == "__main__":
    h.run_main(main)
