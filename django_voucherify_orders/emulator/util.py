"""Identifiers, timestamps and JSON encoding shared by the emulator modules."""

from __future__ import annotations

import json
import random
import secrets
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], float]

_ALNUM = string.ascii_letters + string.digits
# SystemRandom: ids from two emulators (or two test runs) must never collide.
_rng = random.SystemRandom()


def random_alnum(length: int) -> str:
    return "".join(_rng.choices(_ALNUM, k=length))


# ID shapes as observed in the documented examples (API-NOTES section 1).
def new_order_id() -> str:
    return "ord_" + random_alnum(24)


def new_customer_id() -> str:
    return "cust_" + random_alnum(24)


def new_export_id() -> str:
    return "exp_" + random_alnum(24)


def new_async_action_id() -> str:
    return "aa_" + secrets.token_hex(9)


def new_request_id() -> str:
    return "v-" + secrets.token_hex(9)


def new_download_token() -> str:
    return secrets.token_urlsafe(24)


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a `Z`, the form every documented example uses.

    One fixed form also means string order equals time order, which the sorts rely on.
    """
    moment = moment.astimezone(UTC)
    # The year by hand: strftime's %Y doesn't pad years before 1000 ("974-04-13T..."), and
    # RFC 3339 wants four digits.
    return (
        f"{moment.year:04d}-"
        + moment.strftime("%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z"
    )


def now_iso(clock: Clock) -> str:
    return format_ts(datetime.fromtimestamp(clock(), UTC))


def parse_iso(value: Any) -> datetime | None:
    """Parse an ISO-8601 date or date-time; naive values are taken as UTC. None when invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # A moment that has no UTC form (0001-01-01T00:00:00+05:00) can't be stored.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def normalize_iso(value: str) -> str:
    """Re-render a validated ISO-8601 string in the API's own form (UTC, ms, `Z`)."""
    parsed = parse_iso(value)
    if parsed is None:
        raise ValueError(f"not an ISO-8601 date: {value!r}")
    return format_ts(parsed)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
