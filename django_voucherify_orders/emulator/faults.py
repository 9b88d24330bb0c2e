"""Injected failures: scripted and random error statuses, dropped connections, latency,
per-order import failures and failed exports."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Literal

# "drop": the connection is closed before the request is served; "drop-after": after it
# was served (it landed), so the client never learns that it did.
Fault = int | Literal["drop", "drop-after"]
DEFAULT_IMPORT_FAILURE = "Internal error"  # the reason in the documented ORDERS.IMPORT example


class DroppedConnection(Exception):
    """The emulator decided to drop the connection; doors close it without a response."""


def parse_fault(value: object) -> Fault:
    """Accept 500, "500", "drop" or "drop-after" (strings come from JSON keys and the
    command line)."""
    if value == "drop":
        return "drop"
    if value == "drop-after":
        return "drop-after"
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    raise ValueError(f"a fault is an HTTP status 400-599, 'drop' or 'drop-after', not {value!r}")


class Faults:
    """Thread-safe: the HTTP door's worker threads draw faults while a test changes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency: float = 0.0  # seconds added to every API request
        self.retry_after: int = 1  # Retry-After seconds on injected 429s
        self._script: deque[Fault | None] = deque()
        self._rates: list[tuple[Fault, float]] = []
        self._rng = random.Random()
        self._import_failures: dict[str, str] = {}
        self._unnamed_import_failures: set[str] = set()
        self._export_failures = 0

    def script(self, faults: Iterable[object]) -> None:
        """The next requests get these faults, in order; then requests are normal again.

        ``None`` (or "ok") lets one request through, to fail a later one: [None, 500].
        """
        parsed = [None if f in (None, "ok") else parse_fault(f) for f in faults]
        with self._lock:
            self._script.extend(parsed)

    def set_rates(self, rates: Mapping[Any, float], seed: int | None = None) -> None:
        """Random faults per request, e.g. {500: 0.1, "drop": 0.02}; seed makes them repeatable."""
        parsed = [(parse_fault(k), float(p)) for k, p in rates.items()]
        if any(not 0.0 <= p <= 1.0 for _, p in parsed) or sum(p for _, p in parsed) > 1.0:
            raise ValueError("fault rates must each be in [0, 1] and sum to at most 1")
        with self._lock:
            self._rates = parsed
            self._rng = random.Random(seed)

    def fail_import(
        self, source_ids: Iterable[str], reason: str = DEFAULT_IMPORT_FAILURE, *, named: bool = True
    ) -> None:
        """Orders with these source_ids fail in later imports (listed in result.failed).

        ``named=False``: counted in ``failed_count`` but not listed, so the result does not
        say which orders failed (the documents don't promise every failure is itemised).
        """
        with self._lock:
            self._import_failures.update(dict.fromkeys(source_ids, reason))
            if not named:
                self._unnamed_import_failures.update(source_ids)

    def fail_export_next(self, count: int = 1) -> None:
        """The next `count` exports end in status ERROR instead of DONE."""
        with self._lock:
            self._export_failures += count

    def clear(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.retry_after = 1
            self._script.clear()
            self._rates = []
            self._rng = random.Random()
            self._import_failures.clear()
            self._unnamed_import_failures.clear()
            self._export_failures = 0

    # -- used by the emulator -------------------------------------------------------------

    def draw(self) -> Fault | None:
        """The fault for one API request, if any: the script first, then the rates."""
        with self._lock:
            if self._script:
                return self._script.popleft()
            if not self._rates:
                return None
            # One draw per request, walked over cumulative rates: seeded runs repeat exactly.
            point = self._rng.random()
            for fault, rate in self._rates:
                if point < rate:
                    return fault
                point -= rate
            return None

    def import_failure(self, source_id: str | None) -> str | None:
        if source_id is None:
            return None
        with self._lock:
            return self._import_failures.get(source_id)

    def import_failure_unnamed(self, source_id: str | None) -> bool:
        with self._lock:
            return source_id in self._unnamed_import_failures

    def take_export_failure(self) -> bool:
        with self._lock:
            if self._export_failures:
                self._export_failures -= 1
                return True
            return False
