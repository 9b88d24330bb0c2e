"""What the model-based test checks once the system is quiet, and the emulator door it
drives faults through. Each problem is one line naming the invariant and the order."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import requests

from django_voucherify_orders.admin.diff import compare
from django_voucherify_orders.mapping import get_mapper
from django_voucherify_orders.models import OrderSync, SyncState
from django_voucherify_orders.sync import payload_hash

# Only rolled-back transactions and savepoints write these; nothing committed uses them.
ROLLBACK_NOTE = "ROLLED-BACK-"
ROLLBACK_QUANTITY = 97


def payload_differences(
    payload: dict[str, Any], remote: dict[str, Any], emulator: Any
) -> list[str]:
    """Every field the mapper sends that Voucherify does not hold as sent."""
    problems = []
    local = {key: value for key, value in payload.items() if key != "customer"}
    # compare() walks the local fields only: a remote item more than the local ones
    # (a line moved away, a deleted line) shows in the count.
    local_items, remote_items = payload.get("items") or [], remote.get("items") or []
    if len(local_items) != len(remote_items):
        problems.append(f"items: {len(local_items)} locally, {len(remote_items)} in Voucherify")
    problems += [
        f"{row.path}: local {row.local}, Voucherify {row.remote}"
        for row in compare(local, remote)
        if row.is_difference
    ]
    # Voucherify keeps the customer apart and answers with a reference: look it up.
    if "customer" in payload:
        customers = emulator._state.store.customers
        held = customers.get(remote.get("customer_id") or "", {})
        for key, value in payload["customer"].items():
            if held.get(key) != value:
                problems.append(f"customer.{key}: local {value!r}, Voucherify {held.get(key)!r}")
    return problems


def quiet_state_problems(
    emulator: Any,
    *,
    ever_committed: set[str],
    deleted: set[str],
    poisoned: set[str],
) -> list[str]:
    """The invariants once nothing is pending, one line per broken one.

    ``ever_committed``: keys of orders that were committed at some point (deleted or not);
    ``deleted``: keys whose order was deleted and not re-created; ``poisoned``: live
    orders a before_push receiver raises for (they must end failed, alone)."""
    mapper = get_mapper()
    problems: list[str] = []
    live = {str(order.pk): order for order in mapper.get_queryset()}
    rows = {row.pk: row for row in OrderSync.objects.all()}
    remote_orders = emulator.orders()
    remote_ids = Counter(order.get("source_id") for order in remote_orders)

    for key, order in sorted(live.items(), key=lambda item: int(item[0])):
        row = rows.get(key)
        if key in poisoned:
            if row is None or row.state != SyncState.FAILED:
                state = row.state if row else "no row"
                problems.append(
                    f"[raising receiver fails its order] order {key}: state {state}, not failed"
                )
            continue
        payload = mapper.build(order).to_json()
        source_id = payload["source_id"]
        remote = emulator.get_order(source_id)
        if remote is None:
            problems.append(f"[no lost change] order {key}: not in Voucherify")
        else:
            for difference in payload_differences(payload, remote, emulator):
                problems.append(f"[Voucherify holds the payload] order {key}: {difference}")
        if row is None:
            problems.append(f"[outbox row] order {key}: no OrderSync row")
            continue
        expected = {
            "state": SyncState.SYNCED,
            "pushed_version": row.version,
            "payload_hash": payload_hash(payload),
            "source_id": source_id,
            "lease_token": "",
            "voucherify_id": remote["id"] if remote else row.voucherify_id,
        }
        for field, want in expected.items():
            got = getattr(row, field)
            if got != want:
                shown = (got[:12], want[:12]) if field == "payload_hash" else (got, want)
                problems.append(
                    f"[outbox row consistent] order {key}: {field} {shown[0]!r}, "
                    f"expected {shown[1]!r} (version {row.version})"
                )

    for key in sorted(deleted - set(live), key=int):
        row = rows.get(key)
        if row is not None and row.state != SyncState.DELETED:
            problems.append(f"[deleted order's row] order {key}: state {row.state}, not deleted")
    for key in sorted(set(rows) - set(live) - deleted, key=int):
        problems.append(f"[outbox row consistent] row {key}: no such order and never deleted")

    for source_id, count in sorted(remote_ids.items(), key=lambda item: str(item[0])):
        if count > 1:
            problems.append(f"[no duplicates] source_id {source_id}: {count} orders in Voucherify")
        if source_id not in ever_committed:
            problems.append(f"[no phantom change] source_id {source_id}: never committed locally")
    for remote in remote_orders:
        note = str((remote.get("metadata") or {}).get("note", ""))
        quantities = [item.get("quantity") for item in remote.get("items") or []]
        if note.startswith(ROLLBACK_NOTE) or ROLLBACK_QUANTITY in quantities:
            problems.append(
                f"[no phantom change] order {remote.get('source_id')}: holds a rolled-back value "
                f"(note {note!r}, quantities {quantities})"
            )
    return problems


class FaultDoor:
    """Wraps ``emulator.handle`` (which the `responses` door calls) to add what the
    emulator's own faults lack: timeouts, an answer lost after the write landed, and a
    hook that runs while a write is in flight (late writes, leases expiring mid-push)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.inner = emulator.handle
        self.timeouts: list[str] = []  # "before" (nothing written) or "after" (answer lost)
        self.hooks: list[tuple[str, Callable[[str], None]]] = []  # (when, action(source_id))
        self.fired: Counter[str] = Counter()
        emulator.handle = self.handle

    def uninstall(self) -> None:
        self.emulator.handle = self.inner

    def clear(self) -> None:
        self.timeouts.clear()
        self.hooks.clear()

    def handle(self, method: str, url: str, headers: Any, body: Any = b"") -> Any:
        source_id = _written_order(method, url, body)
        if source_id is None:
            return self.inner(method, url, headers, body)
        timeout = self.timeouts.pop(0) if self.timeouts else None
        if timeout == "before":
            self.fired["timeout"] += 1
            raise requests.exceptions.ReadTimeout(f"{method} {url}: injected timeout")
        hook = self.hooks.pop(0) if self.hooks else None  # for a write that goes through
        if hook is not None and hook[0] == "before":
            self.fired["late write"] += 1
            hook[1](source_id)  # another worker pushes meanwhile; this write lands after it
        reply = self.inner(method, url, headers, body)
        if hook is not None and hook[0] == "after":
            self.fired["lease expired after write"] += 1
            hook[1](source_id)
        if timeout == "after":
            self.fired["answer lost"] += 1
            raise requests.exceptions.ReadTimeout(f"{method} {url}: written, answer lost")
        return reply


def _written_order(method: str, url: str, body: Any) -> str | None:
    """The source_id a POST /v1/orders or PUT /v1/orders/<id> writes, else None."""
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    if method.upper() == "PUT" and path.startswith("v1/orders/"):
        return path.removeprefix("v1/orders/")
    if method.upper() == "POST" and path.rstrip("/") == "v1/orders":
        try:
            return str(json.loads(body or b"{}").get("source_id"))
        except ValueError:
            return None
    return None


def describe(problems: Iterable[str], header: str) -> str:
    lines = list(problems)
    shown = "\n  ".join(lines[:25])
    more = f"\n  ... and {len(lines) - 25} more" if len(lines) > 25 else ""
    return f"{header} ({len(lines)} problems):\n  {shown}{more}"
