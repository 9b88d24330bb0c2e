"""The local payload beside the order Voucherify holds, field by field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from ..echoes import ZERO_OMITTED_ITEM_FIELDS, ZERO_OMITTED_ORDER_FIELDS, same_value

__all__ = ["FieldDiff", "compare", "flatten"]

# Voucherify keeps customers and referrers as objects of their own: an order answers with a
# reference ({"id": ..., "object": "customer"}), never with the details that were sent.
NOT_ECHOED = frozenset({"customer", "referrer"})


_MISSING = object()
_ITEM_FIELD = re.compile(r"items\[\d+\]\.(\w+)")

STATUS_LABELS = {
    "same": _("same"),
    "differs": _("differs"),
    "missing": _("missing in Voucherify"),
    "not_echoed": _("kept by Voucherify as a separate customer"),
}


@dataclass(frozen=True)
class FieldDiff:
    path: str
    local: str
    remote: str
    status: str  # same, differs, missing, not_echoed

    @property
    def is_difference(self) -> bool:
        return self.status in ("differs", "missing")

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}, "items": [{"q": 2}]}`` -> ``[("a.b", 1), ("items[0].q", 2)]``."""
    if isinstance(value, dict) and value:
        pairs: list[tuple[str, Any]] = []
        for key, item in value.items():
            pairs.extend(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return pairs
    if isinstance(value, list) and value:
        pairs = []
        for index, item in enumerate(value):
            pairs.extend(flatten(item, f"{prefix}[{index}]"))
        return pairs
    return [(prefix, value)]


def _lookup(data: Any, path: str) -> Any:
    """The value at a path made by :func:`flatten`, or ``_MISSING``."""
    current = data
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(current, list) or index >= len(current):
                return _MISSING
            current = current[index]
        else:
            if not isinstance(current, dict) or part not in current:
                return _MISSING
            current = current[part]
    return current


def _omitted_zero(path: str, local: Any, remote: Any) -> bool:
    """A local 0 that Voucherify does not echo back (see ``ZERO_OMITTED_*``)."""
    if remote is not _MISSING and remote is not None:
        return False
    if type(local) is not int or local != 0:  # the JSON integer 0: not False, not 0.0
        return False
    item = _ITEM_FIELD.fullmatch(path)
    if item is not None:
        return item.group(1) in ZERO_OMITTED_ITEM_FIELDS
    return path in ZERO_OMITTED_ORDER_FIELDS


def _show(value: Any) -> str:
    if value is _MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def compare(local: dict[str, Any] | None, remote: dict[str, Any] | None) -> list[FieldDiff]:
    """Every field of the local payload with Voucherify's value for it.

    Fields only Voucherify has (its id, computed totals, timestamps) are not compared:
    they are not ours to send.
    """
    if local is None or remote is None:
        return []
    rows = []
    for path, value in flatten(local):
        theirs = _lookup(remote, path)
        top = path.split(".", 1)[0].split("[", 1)[0]
        if top in NOT_ECHOED and (theirs is _MISSING or top == path):
            status = "not_echoed"
        elif _omitted_zero(path, value, theirs):
            status = "same"
        elif theirs is _MISSING:
            status = "missing"
        else:
            status = "same" if same_value(value, theirs) else "differs"
        rows.append(FieldDiff(path, _show(value), _show(theirs), status))
    return rows
