"""What the bench scripts share: services, child processes, the emulator, statistics.

Every process a bench starts goes through :class:`Processes`, in its own process group,
so that ``stop_all()`` (called from a ``finally``, also on Ctrl-C and SIGTERM) ends it
and its children (a prefork worker's pool) by that group's id, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
EXAMPLE_DIR = ROOT / "example_project"
PYTHON = sys.executable
CELERY = str(Path(sys.executable).with_name("celery"))

DEFAULT_PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DEFAULT_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
APP_ID, SECRET_KEY = "emulator-app-id", "emulator-secret-key"


# --- signals and child processes ------------------------------------------------------------


def raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` cleans up. SIGINT is set too: a
    shell without job control starts background commands with it ignored."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_main(main: Callable[[], int | None]) -> None:
    """Exit with ``main()``'s status; 130 after Ctrl-C or SIGTERM (its cleanup has run)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; processes stopped and scratch data removed", file=sys.stderr)
        sys.exit(130)


class Processes:
    """Child processes started by this bench, each the leader of its own process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, cmd: Sequence[str], *, env: dict[str, str], cwd: Path = BENCH_DIR
    ) -> tuple[subprocess.Popen[bytes], Path]:
        """Start ``cmd`` with its output in ``<log_dir>/<name>.log``.

        The default working directory is bench/, not the repository: Celery's Django fixup
        puts the working directory first on sys.path, which would shadow a package given
        on PYTHONPATH (a patched copy of the app being compared)."""
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us; we stop it, in order
            )
        self.running.append((name, proc))
        return proc, log

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        """SIGTERM to the child's process group (a Celery warm shutdown), then SIGKILL."""
        self.running = [(n, p) for n, p in self.running if p is not proc]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # the pool may outlive its parent
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.running)):
            self.stop(proc)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


def wait_for_line(log: Path, proc: subprocess.Popen[bytes], marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                return line
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{log.name}: no {marker!r} line; log:\n{log.read_text(errors='replace')}")


# --- the emulator (a subprocess, through its CLI) ---------------------------------------------


class EmulatorProcess:
    """``python -m django_voucherify_orders.emulator`` on a free port, and its control door."""

    def __init__(
        self, procs: Processes, *, rate_limit: int = 0, extra_args: Sequence[str] = ()
    ) -> None:
        """``extra_args`` go to the CLI as they are (e.g. ``--fault-rate``, ``--latency-ms``)."""
        import requests

        cmd = [PYTHON, "-m", "django_voucherify_orders.emulator", "--port", "0"]
        cmd += ["--rate-limit", str(rate_limit), "--app-id", APP_ID, "--secret-key", SECRET_KEY]
        cmd += list(extra_args)
        self.proc, log = procs.start("emulator", cmd, env=dict(os.environ))
        line = wait_for_line(log, self.proc, "listening on ", timeout=20)
        self.url = line.rsplit(" ", 1)[-1].strip()
        self.control = requests.Session()

    def total(self) -> int:
        return int(self._get("/_emulator/requests")["total"])

    def detail(self) -> list[dict[str, Any]]:
        """Every API request with its arrival time (``GET /_emulator/requests?detail=1``)."""
        return self._get("/_emulator/requests?detail=1")

    def reset(self) -> None:
        self.control.post(f"{self.url}/_emulator/reset", timeout=30).raise_for_status()

    def _get(self, path: str) -> Any:
        response = self.control.get(f"{self.url}{path}", timeout=60)
        response.raise_for_status()
        return response.json()


# --- PostgreSQL and Redis ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path.lstrip("/"), "", ""))


def pg_create(server_url: str, name: str) -> str:
    """A fresh scratch database (dropped first if a killed run left it); returns its URL."""
    pg_drop(server_url, name)
    _pg_admin(server_url, f'CREATE DATABASE "{name}"')
    return with_path(server_url, name)


def pg_drop(server_url: str, name: str) -> None:
    _pg_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_admin(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(with_path(server_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def redis_flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def django_env(
    *,
    database_url: str,
    broker_url: str,
    cache_url: str,
    api_url: str,
    push_delay: float | None = None,
    rate_limit: str | None = None,
) -> dict[str, str]:
    """The environment of a bench process or worker: the example shop, configured."""
    env = dict(os.environ)
    path = [str(BENCH_DIR), str(EXAMPLE_DIR), env.get("PYTHONPATH", "")]
    env.update(
        DJANGO_SETTINGS_MODULE="bench_settings",
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        DJANGO_DEBUG="0",  # DEBUG=1 would log every query in memory
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        CACHE_URL=cache_url,
        VOUCHERIFY_API_URL=api_url,
        VOUCHERIFY_APP_ID=APP_ID,
        VOUCHERIFY_SECRET_KEY=SECRET_KEY,
        VOUCHERIFY_AUTO_SYNC="1",
        VOUCHERIFY_RATE_LIMIT=rate_limit or "",
    )
    env.pop("BENCH_PUSH_DELAY", None)
    if push_delay is not None:
        env["BENCH_PUSH_DELAY"] = repr(push_delay)
    return env


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process from ``env`` (see :func:`django_env`)."""
    os.environ.update(env)
    for path in (str(EXAMPLE_DIR), str(BENCH_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import django

    django.setup()


# --- statistics -----------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``median [p25-p75]`` of ``values``, multiplied by ``scale``."""
    med, p25, p75 = median(values), quantile(values, 0.25), quantile(values, 0.75)
    return f"{med * scale:.{digits}f} [{p25 * scale:.{digits}f}-{p75 * scale:.{digits}f}]"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
