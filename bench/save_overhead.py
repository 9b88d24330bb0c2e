"""What the app adds to an order save on the request path (DESIGN.md invariant 7).

    .venv/bin/python bench/save_overhead.py [--quick] [--backend sqlite|postgres|both]

Per backend (SQLite file; PostgreSQL scratch database ``bench_vo_save``), with a Redis
broker (not eager: every enqueue goes to Redis; no worker runs) and a Redis cache, in one
process and one database, interleaved a, b, c, a, b, c, ...:

  a  ``order.status = ...; order.save()`` in its own ``transaction.atomic()``, the app's
     receivers disconnected
  b  the same save with the app: outbox row + ``push_orders`` enqueued after commit
  c  the same save without the app but pushing synchronously, as a user would write it:
     a post_save receiver that loads the order the mapper's way and calls
     ``VoucherifyClient.create_order`` (one keep-alive session) against the emulator's
     HTTP door (a subprocess)

Prints b/a, c/b, the extra SQL queries per save (b minus a, CaptureQueriesContext), the
HTTP calls the emulator saw during (b), and the queries of a 20-item checkout in one
transaction (in all, and on the outbox table). Timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _harness as h

PG_DB = "bench_vo_save"
BROKER_DB, CACHE_DB = 10, 11
STATUSES = ("new", "paid", "shipped", "cancelled")
VARIANTS = ("a", "b", "c")
TARGET_RATIO_B_A, TARGET_EXTRA_QUERIES, TARGET_RATIO_C_B = 2.0, 2, 2.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, help="a,b,c rounds (default 40, quick 10)")
    parser.add_argument("--block", type=int, help="timed saves per variant and round (20)")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="idle time between saves, untimed (lets work deferred to a thread finish)",
    )
    parser.add_argument("--pg", default=h.DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--redis", default=h.DEFAULT_REDIS, help="Redis server URL")
    # Internal: the per-backend child process.
    parser.add_argument("--child", choices=("sqlite", "postgres"), help=argparse.SUPPRESS)
    parser.add_argument("--emulator-url", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.rounds = args.rounds or (10 if args.quick else 40)
    args.block = args.block or (10 if args.quick else 20)
    return args


# --- parent: services, one child per backend, the report ---------------------------------------


def main() -> int:
    args = parse_args()
    if args.child:
        return child(args)
    h.raise_on_sigterm()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    broker = h.with_path(args.redis, str(BROKER_DB))
    cache = h.with_path(args.redis, str(CACHE_DB))
    results: dict[str, dict[str, Any]] = {}
    with h.scratch_dir("bench-save-") as tmp:
        procs = h.Processes(tmp)
        try:
            emulator = h.EmulatorProcess(procs, rate_limit=0)
            for backend in backends:
                print(f"[{backend}] running {args.rounds} rounds x {args.block} saves ...")
                if backend == "sqlite":
                    database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
                else:
                    database_url = h.pg_create(args.pg, PG_DB)
                h.redis_flush(broker)
                h.redis_flush(cache)
                emulator.reset()
                env = h.django_env(
                    database_url=database_url, broker_url=broker, cache_url=cache,
                    api_url=emulator.url,
                )  # fmt: skip
                result_file = tmp / f"{backend}.json"
                cmd = [h.PYTHON, __file__, "--child", backend, "--rounds", str(args.rounds)]
                cmd += ["--block", str(args.block), "--emulator-url", emulator.url]
                cmd += ["--gap-ms", str(args.gap_ms)]
                cmd += ["--result", str(result_file)]
                proc, log = procs.start(f"child-{backend}", cmd, env=env)
                if proc.wait() != 0 or not result_file.exists():
                    print(log.read_text(errors="replace"), file=sys.stderr)
                    raise RuntimeError(f"the {backend} run failed")
                procs.stop(proc)
                results[backend] = json.loads(result_file.read_text())
                if backend == "postgres":
                    h.pg_drop(args.pg, PG_DB)
        finally:
            procs.stop_all()
            if "postgres" in backends:
                h.pg_drop(args.pg, PG_DB)
            h.redis_flush(broker)
            h.redis_flush(cache)
    report(args, results)
    return 0


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    print()
    print(
        f"save_overhead: status change + order.save() in its own transaction; "
        f"{args.rounds} rounds x {args.block} saves per variant, interleaved a,b,c"
        + (f", {args.gap_ms:g} ms idle between saves." if args.gap_ms else ".")
    )
    print("Times in ms per save: median [p25-p75]. Ratios: of medians [min-max over rounds].")
    print(f"  load average now {os.getloadavg()[0]:.1f} (2 cores: above ~1, other work competes)")
    print("  a = app receivers disconnected, b = with the app (outbox + enqueue to Redis),")
    print("  c = no app, synchronous create_order to the emulator in a post_save receiver")
    for backend, r in results.items():
        t = {v: r[v] for v in VARIANTS}
        per_round = {v: [h.median(block) for block in r[f"{v}_rounds"]] for v in VARIANTS}
        b_a = h.median(t["b"]) / h.median(t["a"])
        c_b = h.median(t["c"]) / h.median(t["b"])
        rb_a = [b / a for a, b in zip(per_round["a"], per_round["b"], strict=True)]
        rc_b = [c / b for b, c in zip(per_round["b"], per_round["c"], strict=True)]
        extra = h.median(r["queries_b"]) - h.median(r["queries_a"])
        print(f"\n[{backend}]")
        for v in VARIANTS:
            print(f"  {v}: {h.spread(t[v], 1000, 3)} ms  (n={len(t[v])})")
        print(
            f"  b/a = {b_a:.2f} [{min(rb_a):.2f}-{max(rb_a):.2f}]   "
            f"target <= {TARGET_RATIO_B_A}: {h.verdict(b_a <= TARGET_RATIO_B_A)}"
        )
        print(
            f"  c/b = {c_b:.2f} [{min(rc_b):.2f}-{max(rc_b):.2f}]   "
            f"target >= {TARGET_RATIO_C_B}: {h.verdict(c_b >= TARGET_RATIO_C_B)}"
        )
        print(
            f"  extra queries per save (b - a) = {extra:g} "
            f"(a: {h.median(r['queries_a']):g}, b: {h.median(r['queries_b']):g})   "
            f"target <= {TARGET_EXTRA_QUERIES}: {h.verdict(extra <= TARGET_EXTRA_QUERIES)}"
        )
        for sql in r["extra_sql"]:
            print(f"      + {sql}")
        print(
            f"  HTTP calls during b = {r['http_b']} in {r['saves_b']} saves   "
            f"target 0: {h.verdict(r['http_b'] == 0)}   "
            f"(c made {r['http_c']} in {r['saves_c']} saves)"
        )
        print(f"  pushes enqueued to the Redis broker by b: {r['enqueued_b']} of {r['saves_b']}")
        a, b = r["checkout"]["a"], r["checkout"]["b"]
        print(
            f"  a 20-item checkout in one transaction: {b['queries']} queries with the app, "
            f"{a['queries']} without; {b['outbox']} on the outbox table   "
            f"target <= 2: {h.verdict(b['outbox'] <= 2)}"
        )


# --- child: one backend, Django configured from the environment ------------------------------


def child(args: argparse.Namespace) -> int:
    import io

    h.setup_django(dict(os.environ))
    import redis
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models.signals import post_save
    from django.test.utils import CaptureQueriesContext
    from shop.models import Order, OrderItem, Product

    from django_voucherify_orders.client import VoucherifyClient
    from django_voucherify_orders.mapping import get_mapper
    from django_voucherify_orders.sync import publisher as enqueue
    from django_voucherify_orders.sync import receivers

    assert not settings.CELERY_TASK_ALWAYS_EAGER, "the enqueue must go to the broker"
    pool_size = 4 * args.block
    call_command("migrate", verbosity=0)
    call_command("seed_shop", orders=pool_size, items=3, seed=7, stdout=io.StringIO())
    emulator = Emulator(args.emulator_url)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    mapper = get_mapper()
    client = VoucherifyClient(h.APP_ID, h.SECRET_KEY, args.emulator_url)

    def push_in_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
        """What a shop without the app would write: push inside the save, synchronously."""
        if raw:
            return
        order = mapper.get_queryset().get(pk=instance.pk)
        client.create_order(mapper.build(order).to_json())

    def use(variant: str) -> None:
        receivers.disconnect()
        post_save.disconnect(sender=Order, dispatch_uid="bench.push_in_save")
        if variant == "b":
            receivers.connect()
        elif variant == "c":
            post_save.connect(push_in_save, sender=Order, dispatch_uid="bench.push_in_save")

    orders = list(Order.objects.order_by("pk"))
    turn = 0

    def save(variant: str) -> float:
        """One timed save of the next order of the pool; returns seconds."""
        nonlocal turn
        order = orders[turn % len(orders)]
        turn += 1
        order.status = STATUSES[(STATUSES.index(order.status) + 1) % len(STATUSES)]
        if variant == "b":  # as if a worker had taken the previous push off the queue
            cache.delete(enqueue.QUEUED_KEY.format(order.pk))
        start = time.perf_counter()
        with transaction.atomic():
            order.save()
        elapsed = time.perf_counter() - start
        if args.gap_ms:
            time.sleep(args.gap_ms / 1000)
        return elapsed

    # Warm up: every order gets its outbox row (an order saved before), caches fill.
    for variant in VARIANTS:
        use(variant)
        for _ in orders:
            save(variant)
    cache.clear()
    broker.flushdb()

    times: dict[str, list[list[float]]] = {v: [] for v in VARIANTS}
    http_b = http_c = enqueued_b = 0
    for _round in range(args.rounds):
        for variant in VARIANTS:
            use(variant)
            save(variant)  # untimed: the signal's receiver cache is rebuilt on (dis)connect
            http_before, queued_before = emulator.total(), broker.llen("celery")
            times[variant].append([save(variant) for _ in range(args.block)])
            enqueue.flush_publisher()  # untimed: b's enqueues run on the publisher thread
            http = emulator.total() - http_before
            if variant == "b":
                http_b += http
                enqueued_b += broker.llen("celery") - queued_before
            elif variant == "c":
                http_c += http
        broker.delete("celery")  # keep the queue small; untimed

    # Queries per save, counted apart from the timed runs (the capture has a cost).
    queries: dict[str, list[int]] = {"a": [], "b": []}
    statements: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
    for _ in range(5):
        for variant in ("a", "b"):
            use(variant)
            with CaptureQueriesContext(connection) as captured:
                save(variant)
            queries[variant].append(len(captured.captured_queries))
            statements[variant] = Counter(_shape(q["sql"]) for q in captured.captured_queries)
    extra_sql = sorted((statements["b"] - statements["a"]).elements())

    # A checkout: a new order and 20 items in one transaction (the trigger saves must not
    # write the outbox once each). Queries in all, and those on the outbox table.
    checkout: dict[str, dict[str, int]] = {}
    customer, products = orders[0].customer, list(Product.objects.order_by("pk")[:20])
    for variant in ("a", "b"):
        use(variant)
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            order = Order.objects.create(
                customer=customer, number=f"BENCH-{variant}-{time.time_ns()}", status="new"
            )
            for number in range(20):
                product = products[number % len(products)]
                OrderItem.objects.create(
                    order=order, product=product, quantity=1, unit_price=product.price
                )
        sql = [q["sql"] for q in captured.captured_queries]
        checkout[variant] = {
            "queries": len(sql),
            "outbox": sum('"voucherify_orders_ordersync"' in q for q in sql),
        }

    result = {f"{v}_rounds": times[v] for v in VARIANTS}
    result.update({v: [t for block in times[v] for t in block] for v in VARIANTS})
    saves = args.rounds * args.block
    result.update(
        queries_a=queries["a"], queries_b=queries["b"], extra_sql=extra_sql,
        http_b=http_b, http_c=http_c, enqueued_b=enqueued_b, saves_b=saves, saves_c=saves,
        checkout=checkout,
    )  # fmt: skip
    args.result.write_text(json.dumps(result))
    use("b")
    client.close()
    return 0


class Emulator:
    """The emulator's control door, from the child."""

    def __init__(self, url: str) -> None:
        import requests

        self.url = url
        self.session = requests.Session()

    def total(self) -> int:
        response = self.session.get(f"{self.url}/_emulator/requests", timeout=30)
        response.raise_for_status()
        return int(response.json()["total"])


def _shape(sql: str) -> str:
    """A statement without its values: ``UPDATE "table" SET ...``."""
    words = sql.split()
    return " ".join(words[:3]) + (" ..." if len(words) > 3 else "")


if __name__ == "__main__":
    h.run_main(main)
