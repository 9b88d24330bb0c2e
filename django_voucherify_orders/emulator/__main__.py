"""Run the emulator as an HTTP server: python -m django_voucherify_orders.emulator --help"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .app import Emulator

DEFAULT_APP_ID = "emulator-app-id"
# A local test emulator's fixed default, printed at start-up: not a secret.
DEFAULT_SECRET_KEY = "emulator-secret-key"  # noqa: S105


def _parse_rates(text: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        fault, _, rate = part.partition("=")
        rates[fault.strip()] = float(rate)
    return rates


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_voucherify_orders.emulator",
        description="A faithful in-memory Voucherify (Orders, Exports, Async Actions) over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--app-id", help=f"X-App-Id to accept (default {DEFAULT_APP_ID})")
    parser.add_argument(
        "--secret-key", help=f"X-App-Token to accept (default {DEFAULT_SECRET_KEY})"
    )
    parser.add_argument("--rate-limit", type=int, default=2000, help="per minute; 0 = unlimited")
    parser.add_argument("--async-steps", type=int, default=2, help="polls until DONE")
    parser.add_argument("--import-existing", choices=("fail", "upsert"), default="fail")
    parser.add_argument("--fault-rate", default="", help="e.g. 500=0.1,429=0.05,drop=0.02")
    parser.add_argument("--fault-script", default="", help="e.g. 500,503,429,drop")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After on injected 429s")
    parser.add_argument("--seed", type=int, help="seed for --fault-rate")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.app_id is None or args.secret_key is None:
        args.app_id = args.app_id or DEFAULT_APP_ID
        args.secret_key = args.secret_key or DEFAULT_SECRET_KEY
        print(f"Using default credentials: X-App-Id={args.app_id} X-App-Token={args.secret_key}")
    emu = Emulator(
        args.app_id,
        args.secret_key,
        rate_limit_per_minute=args.rate_limit or None,
        async_steps=args.async_steps,
        import_existing=args.import_existing,
    )
    try:
        if args.fault_rate:
            emu.faults.set_rates(_parse_rates(args.fault_rate), seed=args.seed)
        if args.fault_script:
            emu.faults.script(p.strip() for p in args.fault_script.split(",") if p.strip())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    emu.faults.latency = args.latency_ms / 1000
    emu.faults.retry_after = args.retry_after

    stop = threading.Event()
    # The server runs in its own thread; the main thread only waits for a signal, so a
    # handler never has to call shutdown() from inside serve_forever (which would hang).
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = emu.serve(args.host, args.port, verbose=args.verbose)
    print(f"Voucherify emulator listening on {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
    print("Voucherify emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
