"""Historical import throughput, memory and queries: 10,000 and 100,000 orders.

    .venv/bin/python bench/import.py            # 10,000 and 100,000 orders (3 items each)
    .venv/bin/python bench/import.py --quick    # 2,000 and 20,000

For each size, one child process seeds a fresh SQLite file with the example shop
(`seed_shop`, not timed), and another runs `voucherify_import`'s engine against the
emulator's HTTP door (a third process). The import child reports its wall time, its
peak RSS, the SQL queries it ran per batch, and the emulator counts the HTTP requests.
Targets (issue 4): >= 10,000 orders/s end to end on SQLite; peak memory at the large
size within 10% of the small one; the same queries per batch at both sizes; HTTP
requests = ceil(N / 2000) imports plus the async-action polls.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h


def child_seed(database: str, orders: int) -> None:
    h.setup_django(_env(database, "http://127.0.0.1:9"))
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_shop", orders=orders, items=3, seed=1, verbosity=0)


def child_import(database: str, api_url: str) -> None:
    import resource
    import time

    h.setup_django(_env(database, api_url))
    from django.db import connection

    from django_voucherify_orders.importer import ImportParameters, create_job, run_import

    queries = [0]
    per_batch: list[int] = []  # queries between two progress reports: one batch each

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries[0] += 1
        return execute(sql, params, many, context)

    def batch_done(job) -> None:  # type: ignore[no-untyped-def]
        per_batch.append(queries[0])

    job = create_job(ImportParameters())
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        job = run_import(job, progress=batch_done)
        elapsed = time.perf_counter() - started
    # The first batch also pays for the job's setup (the count, the first save).
    batch_queries = sorted({b - a for a, b in itertools.pairwise(per_batch)})
    print(json.dumps({
        "status": job.status, "imported": job.imported, "failed": job.failed,
        "batches": len(job.batches), "seconds": elapsed, "queries": queries[0],
        "batch_queries": batch_queries,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))  # fmt: skip


def _env(database: str, api_url: str) -> dict[str, str]:
    return h.django_env(
        database_url=f"sqlite:///{database}",
        broker_url="",
        cache_url="",
        api_url=api_url,
    )


def run_size(emulator: h.EmulatorProcess, scratch: Path, orders: int) -> dict[str, float]:
    database = str(scratch / f"shop-{orders}.sqlite3")
    script = str(Path(__file__).resolve())
    subprocess.run([h.PYTHON, script, "--child-seed", database, str(orders)], check=True)
    emulator.reset()
    result = subprocess.run(
        [h.PYTHON, script, "--child-import", database, emulator.url],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    counts = emulator._get("/_emulator/requests")
    report["http"] = counts["total"]
    report["polls"] = sum(
        n for key, n in counts["by_endpoint"].items() if "/v1/async-actions/" in key
    )
    if report["imported"] != orders:
        raise SystemExit(f"imported {report['imported']} of {orders}: {report}")
    return report


def _listed(values: list[int]) -> str:
    return ",".join(str(v) for v in values) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child-seed", nargs=2, metavar=("DB", "N"))
    parser.add_argument("--child-import", nargs=2, metavar=("DB", "URL"))
    args = parser.parse_args()
    if args.child_seed:
        return child_seed(args.child_seed[0], int(args.child_seed[1]))
    if args.child_import:
        return child_import(*args.child_import)

    h.raise_on_sigterm()
    sizes = (2_000, 20_000) if args.quick else (10_000, 100_000)
    with h.scratch_dir("bench-import-") as scratch:
        procs = h.Processes(scratch)
        try:
            emulator = h.EmulatorProcess(procs, rate_limit=0)
            reports = {n: run_size(emulator, scratch, n) for n in sizes}
        finally:
            procs.stop_all()

    print("\nvoucherify_import into the HTTP emulator, SQLite, 3 items per order")
    print(f"{'orders':>8} {'orders/s':>9} {'seconds':>8} {'peak RSS':>9} "
          f"{'queries/batch':>13} {'HTTP':>5} {'imports':>7} {'polls':>5}")  # fmt: skip
    for n, r in reports.items():
        print(f"{n:>8} {n / r['seconds']:>9,.0f} {r['seconds']:>8.2f} "
              f"{r['peak_rss_kb'] / 1024:>7.1f}MB {_listed(r['batch_queries']):>13} "
              f"{r['http']:>5} {r['batches']:>7} {r['polls']:>5}")  # fmt: skip
    small, large = (reports[n] for n in sizes)
    rate = min(n / r["seconds"] for n, r in reports.items())
    memory = large["peak_rss_kb"] / small["peak_rss_kb"]
    same_queries = len(set(small["batch_queries"]) | set(large["batch_queries"])) == 1
    http_ok = all(r["http"] == math.ceil(n / 2000) + r["polls"] for n, r in reports.items())
    print(f"\nslowest rate {rate:,.0f} orders/s (target >= 10,000): {h.verdict(rate >= 10_000)}")
    print(f"peak memory {sizes[1]:,} / {sizes[0]:,} = {memory:.3f} (target <= 1.10): "
          f"{h.verdict(memory <= 1.10)}")  # fmt: skip
    print(f"queries per batch equal at both sizes: {h.verdict(same_queries)}")
    print(f"HTTP requests = ceil(N/2000) + polls: {h.verdict(http_ok)}")


if __name__ == "__main__":
    main()
