"""What `Emulator.handle()` returns, and what it records about each request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class EmulatorResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RequestRecord(NamedTuple):
    method: str
    path: str
    status: int  # 0 when the connection was dropped by a fault
