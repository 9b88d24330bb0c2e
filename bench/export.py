"""Streamed export download: time, rows/s and peak memory at two export sizes.

    .venv/bin/python bench/export.py [--quick] [--sizes 10000,100000]

Starts the emulator's HTTP door in a subprocess (its CLI: rate limit 0, exports finished
at once), fills it through ``POST /v1/orders/import`` in 2000-order requests, and for
each size (cumulative: the small export first, then the orders up to the large one) runs
``exporter.run_export`` in this process, as ``manage.py voucherify_export --output`` does:
create, poll, stream the CSV to a temporary file next to the output while counting rows,
copy it to the export storage, ``os.replace``. SQLite and the export storage
(``STORAGES["voucherify_exports"]``) live in a scratch directory.

Reported per size: the whole export's wall time, the download's time and rows/s, and the
tracemalloc peak of this process during the export (Python allocations; the CSV never
sits in memory, so the peak must be flat between the sizes: within 1.5x + 256 KiB).
Each order's metadata note (exported as ``metadata.note``) holds a newline and quotes,
so the CSV has two lines per row and the row count checks that rows, not lines, count.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import _harness as h

BATCH = 2000  # "There is a 2000 limit of orders per one request."
FIELDS = ("id", "source_id", "created_at", "status", "amount", "metadata", "metadata.note")
STATUSES = ("CREATED", "PAID", "FULFILLED", "CANCELED")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 vs 20,000 rows (~10 s)")
    parser.add_argument("--sizes", help="comma-separated row counts, ascending")
    args = parser.parse_args()
    default = "2000,20000" if args.quick else "10000,100000"
    args.sizes = [int(s) for s in (args.sizes or default).split(",")]
    if args.sizes != sorted(args.sizes) or args.sizes[0] < 1:
        parser.error("--sizes must be ascending positive counts")
    return args


def fill(session: Any, url: str, start: int, stop: int) -> None:
    """Orders start..stop-1 through the import endpoint, BATCH per request."""
    for first in range(start, stop, BATCH):
        body = [
            {
                "source_id": f"bench-{i:07d}",
                "status": STATUSES[i % 4],
                "amount": 100 + i % 9000,
                "created_at": f"2024-01-01T00:00:{i % 60:02d}.000Z",
                "metadata": {"channel": "web" if i % 3 else "shop", "note": f'line 1\n"{i}"'},
            }
            for i in range(first, min(first + BATCH, stop))
        ]
        response = session.post(f"{url}/v1/orders/import", json=body, timeout=120)
        response.raise_for_status()
        action = response.json()["async_action_id"]
        status = session.get(f"{url}/v1/async-actions/{action}", timeout=60).json()
        if status["status"] != "DONE" or status["result"]["failed_count"]:
            raise RuntimeError(f"import {action} did not go through: {status}")


def measure(size: int, scratch: Path) -> dict[str, float]:
    from django_voucherify_orders import exporter
    from django_voucherify_orders.conf import get_client

    client = get_client()
    download_time = 0.0
    original = client.download_export

    def timed_download(*args: Any, **kwargs: Any) -> int:
        nonlocal download_time
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            download_time = time.perf_counter() - started

    client.download_export = timed_download  # type: ignore[method-assign]
    path = scratch / f"orders-{size}.csv"
    job = exporter.create_job(exporter.ExportRequest(fields=FIELDS, order="created_at"))

    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    started = time.perf_counter()
    job = exporter.run_export(job, output=exporter.FileOutput(path), client=client)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    with path.open(newline="", encoding="utf-8") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    lines = path.read_bytes().count(b"\n") - 1
    if not rows == job.row_count == size:
        raise RuntimeError(f"expected {size} rows: file {rows}, job {job.row_count}")
    stored = Path(os.environ["BENCH_EXPORTS_DIR"]) / job.file.name
    if stored.stat().st_size != path.stat().st_size:
        raise RuntimeError("the stored copy differs from the output")
    return {
        "rows": size,
        "lines": lines,
        "bytes": path.stat().st_size,
        "total": elapsed,
        "download": download_time,
        "peak": peak - before,
    }


def main() -> int:
    args = parse_args()
    h.raise_on_sigterm()
    overall = time.perf_counter()
    with h.scratch_dir("vo-bench-export-") as scratch:
        procs = h.Processes(scratch)
        try:
            cmd = [h.PYTHON, "-m", "django_voucherify_orders.emulator", "--port", "0"]
            cmd += ["--rate-limit", "0", "--async-steps", "0"]
            cmd += ["--app-id", h.APP_ID, "--secret-key", h.SECRET_KEY]
            proc, log = procs.start("emulator", cmd, env=dict(os.environ))
            url = h.wait_for_line(log, proc, "listening on ", timeout=20).rsplit(" ", 1)[-1]

            env = h.django_env(
                database_url=f"sqlite:///{scratch / 'bench.sqlite3'}",
                broker_url="",
                cache_url="",
                api_url=url,
            )
            env["BENCH_EXPORTS_DIR"] = str(scratch / "exports")
            h.setup_django(env)
            logging.getLogger("django_voucherify_orders").setLevel(logging.WARNING)
            from django.conf import settings
            from django.core.management import call_command

            settings.STORAGES = {
                **settings.STORAGES,
                "voucherify_exports": {
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": env["BENCH_EXPORTS_DIR"]},
                },
            }
            call_command("migrate", verbosity=0)

            import requests

            session = requests.Session()
            session.headers.update({"X-App-Id": h.APP_ID, "X-App-Token": h.SECRET_KEY})
            results = []
            filled = 0
            for size in args.sizes:
                started = time.perf_counter()
                fill(session, url, filled, size)
                print(f"imported orders {filled}..{size - 1} in "
                      f"{time.perf_counter() - started:.1f}s", flush=True)  # fmt: skip
                filled = size
                results.append(measure(size, scratch))
        finally:
            procs.stop_all()

    print()
    print(f"{'rows':>8} {'CSV lines':>10} {'MiB':>7} {'total s':>8} {'download s':>11} "
          f"{'rows/s':>9} {'peak KiB':>9}")  # fmt: skip
    for r in results:
        print(
            f"{r['rows']:>8} {r['lines']:>10} {r['bytes'] / 2**20:>7.1f} {r['total']:>8.2f} "
            f"{r['download']:>11.2f} {r['rows'] / r['download']:>9.0f} {r['peak'] / 1024:>9.0f}"
        )
    small, large = results[0]["peak"], results[-1]["peak"]
    flat = large <= small * 1.5 + 256 * 1024
    print(
        f"\npeak memory {large / 1024:.0f} KiB at {results[-1]['rows']} rows vs "
        f"{small / 1024:.0f} KiB at {results[0]['rows']} "
        f"({results[-1]['rows'] // results[0]['rows']}x the rows): flat {h.verdict(flat)}"
    )
    print(f"bench ran in {time.perf_counter() - overall:.0f}s")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
