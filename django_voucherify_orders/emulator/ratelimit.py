"""A fixed one-minute window per emulator, reported in Voucherify's X-Rate-Limit-* headers."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .util import Clock

WINDOW_SECONDS = 60
UNLIMITED_SHOWN = 1_000_000  # what Limit shows when the emulator has no limit


@dataclass(frozen=True)
class Window:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix epoch seconds at which the current window ends
    retry_after: int  # whole seconds until then, at least 1

    def headers(self) -> dict[str, str]:
        # Names with a hyphen between Rate and Limit, as the Limits page spells them.
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Retry": str(self.reset_at),
        }


class RateLimiter:
    def __init__(self, limit: int | None, clock: Clock) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._window_start = -1
        self._used = 0

    def hit(self, *, consume: bool = True) -> Window:
        """Count one request (when consume) and report the window; a refused one is not counted."""
        now = self.clock()
        start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        with self._lock:
            if start != self._window_start:
                self._window_start, self._used = start, 0
            limit = self.limit if self.limit is not None else UNLIMITED_SHOWN
            allowed = self.limit is None or self._used < self.limit
            if allowed and consume:
                self._used += 1
            remaining = max(0, limit - self._used)
        reset_at = start + WINDOW_SECONDS
        return Window(allowed, limit, remaining, reset_at, max(1, math.ceil(reset_at - now)))

    def reset(self) -> None:
        with self._lock:
            self._window_start, self._used = -1, 0
