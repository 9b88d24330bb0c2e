"""The push engine: from a dirty OrderSync row to Voucherify, exactly once per change.

- No stale overwrite: one push per order at a time (a lease on its row), and the
  payload is built from the database *after* the lease is taken.
- No wasted call: a payload whose hash equals the last pushed one is not sent.
- Bounded failures: transient errors back off (full jitter, server waits honoured)
  for ``RETRY_FOR``; 4xx answers and bad local data fail the row at once; a 401/403
  pauses every push until the credentials work again (see ``outage``).
- One order at a time: an exception while pushing one order (a receiver's bug, a
  ``source_id()`` that raises, a duplicate ``source_id``) fails that order, with the
  error on its row; the rest of the batch is pushed.
- No hash without proof: a write that may land after another worker's (its lease was
  lost, or its outcome is unknown) leaves the order pending, its hash forgotten, and
  nobody may push it until that write can no longer land (see ``_await_late_write``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..client import (
    NotFound,
    RateLimitBusy,
    RateLimited,
    VoucherifyAPIError,
    VoucherifyClient,
    VoucherifyClientError,
    VoucherifyError,
    VoucherifyTransportError,
)
from ..client.errors import MAX_BODY_CHARS
from ..client.schemas import Order
from ..conf import VoucherifyOrdersSettings, get_client, get_settings
from ..mapping import MappingError, get_mapper
from ..models import NO_ERROR, OrderSync, SyncAttempt, SyncState
from ..signals import CancelPush, after_push, before_push, push_failed
from .attempts import attempt_log, remember_rate_limit, save_attempts
from .limiter import MAX_WORKER_WAIT, SharedRateLimiter, first_attempt_paid
from .outage import (
    hold_paused,
    pause_pushes,
    refused_credentials,
    retry_delay,
    wait_for_credentials,
    write_landed,
)
from .publisher import enqueue_push

__all__ = ["PushResult", "payload_hash", "push", "push_many"]

logger = logging.getLogger("django_voucherify_orders.sync")

MAX_THROTTLE_WAIT = MAX_WORKER_WAIT  # a longer wait for a slot reschedules the task instead
LATE_HOLD_SLACK = 0.1  # seconds after a late-write hold ends that a push found early returns


@dataclass(frozen=True)
class PushResult:
    #: pushed, unchanged, busy, settled (not pending), missing, deleted, skipped, not_ready
    #: (the mapper's ready() said False), throttled, retry, failed, paused (Voucherify
    #: refused the credentials; see outage)
    outcome: str
    retry_in: float | None = None
    method: str | None = None


def push(order_pk: str) -> PushResult:
    """Push one order as it is in the database now. Safe to call concurrently."""
    return push_many([order_pk])[order_pk]


def push_many(order_pks: Iterable[str]) -> dict[str, PushResult]:
    """Push several orders, each as it is in the database now; safe to call concurrently.

    One lease for the lot, one read of their orders and one INSERT of the HTTP attempts,
    then one call and one UPDATE per order: a backlog costs one query an order instead of
    nine. Before a push that could outlive the leases, the leases still held are renewed
    (an order whose lease ran out and was taken meanwhile is left to its new holder). When
    the rate limiter asks for a long wait, the batch stops and the rest are "throttled"
    as long.
    """
    config = get_settings()
    keys = list(dict.fromkeys(str(pk) for pk in order_pks))
    if (paused_for := wait_for_credentials(config)) is not None:  # leases nothing
        hold_paused(keys, paused_for, config)
        return {key: PushResult("paused", retry_in=paused_for) for key in keys}
    token = uuid.uuid4().hex
    renewed_at = time.monotonic()  # when the batch's leases were last taken or renewed
    rows = _take_leases(keys, token, config)
    results: dict[str, PushResult] = {}
    if len(rows) < len(keys):
        held = OrderSync.objects.filter(pk__in=keys).values_list(
            "pk", "state", "lease_token", "lease_until"
        )
        now = timezone.now()
        for key, state, lease_token, lease_until in held:
            if key in rows:
                continue
            if state == SyncState.PENDING and lease_token.startswith("late-") and lease_until:
                # Held until a late write can no longer land: nobody holds it to push it
                # after, so this push comes back then (its ETA may have been a bit early).
                retry_in = max((lease_until - now).total_seconds(), 0.0) + LATE_HOLD_SLACK
                results[key] = PushResult("retry", retry_in=retry_in)
            else:
                # The lease holder re-enqueues when the order changed during its push; an
                # order that is not pending was pushed since this push was queued.
                results[key] = PushResult("busy" if state == SyncState.PENDING else "settled")
        for key in keys:
            if key not in rows and key not in results:
                results[key] = PushResult("missing")
    # The batch's HTTP attempts, written in one INSERT at its end (a worker killed
    # mid-batch loses these log rows; the OrderSync rows keep every outcome).
    attempts: list[SyncAttempt] = []
    try:
        mapper = get_mapper()
        orders = {
            str(order.pk): order
            for order in mapper.get_queryset().filter(
                pk__in=[row.order_pk for row in rows.values()]
            )
        }
        # A push may make two calls (a PUT, then a POST when the order is gone remotely),
        # each after waiting for its rate-limit slot.
        worst_push = 2 * (config.connect_timeout + config.read_timeout + MAX_THROTTLE_WAIT)
        mine = set(rows)
        stopped: PushResult | None = None
        for position, (key, row) in enumerate(rows.items()):
            if time.monotonic() - renewed_at + worst_push > config.lease_seconds:
                # The next push could outlive the batch's leases: renew those still ours.
                # One that ran out and was taken by another worker is its to push now.
                mine = _renew_leases(list(rows)[position:], token, config)
                renewed_at = time.monotonic()
            if key not in mine:
                results[key] = PushResult("busy")
                continue
            try:
                results[key] = _push_leased(row, orders.get(key), token, config, attempts)
            except Exception as exc:  # a bug met while pushing this order fails it alone
                results[key] = _fail_unexpectedly(row, token, exc, config)
            if results[key].outcome in ("throttled", "paused"):
                stopped = results[key]
                break
    except BaseException:
        _release(keys, token)
        raise
    finally:
        if attempts:  # one INSERT and one cache write a batch, not one of each a call
            save_attempts(attempts)
            remember_rate_limit(get_client(retries=False).last_rate_limit)
    if stopped is not None:  # the orders not pushed wait as long as the one that stopped us
        _release(keys, token)
        for key in keys:
            results.setdefault(key, stopped)
    return {key: results[key] for key in keys}


def _take_leases(
    keys: list[str], token: str, config: VoucherifyOrdersSettings
) -> dict[str, OrderSync]:
    """Lease the pending ones among ``keys`` that nobody holds: their rows, read after the
    lease was taken. (A sweep that re-enqueued a row whose push was still queued makes
    duplicates: they find the row settled and cost no more than this.)"""
    now = timezone.now()
    taken = (
        OrderSync.objects.filter(pk__in=keys, state=SyncState.PENDING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(lease_until=now + timedelta(seconds=config.lease_seconds), lease_token=token)
    )
    if not taken:
        return {}
    rows = {row.pk: row for row in OrderSync.objects.filter(pk__in=keys, lease_token=token)}
    return {key: rows[key] for key in keys if key in rows}


def _release(keys: list[str], token: str) -> None:
    """Free the leases this push still holds among ``keys`` (settled rows hold none)."""
    OrderSync.objects.filter(pk__in=keys, lease_token=token).update(
        lease_until=None, lease_token=""
    )


def _renew_leases(keys: list[str], token: str, config: VoucherifyOrdersSettings) -> set[str]:
    """Extend this push's leases among ``keys``; the keys whose lease it still holds."""
    until = timezone.now() + timedelta(seconds=config.lease_seconds)
    mine = OrderSync.objects.filter(pk__in=keys, lease_token=token)
    if mine.update(lease_until=until) == len(keys):
        return set(keys)
    return set(mine.values_list("pk", flat=True))


def _push_leased(
    row: OrderSync,
    order: Any,
    token: str,
    config: VoucherifyOrdersSettings,
    attempts: list[SyncAttempt],
) -> PushResult:
    """Push ``order`` (None: deleted), read after ``row``'s lease was taken."""
    version = row.version
    mapper = get_mapper()
    if order is None:
        _finish(row, version, token, state=SyncState.DELETED)
        return PushResult("deleted")
    if row.synced_at is None and not mapper.ready(order):
        # Held back until placed (Voucherify keeps the first data it gets for a source_id);
        # its next change pushes it. An order Voucherify holds is always kept current.
        _finish(row, version, token, state=SyncState.SKIPPED)
        return PushResult("not_ready")
    try:
        payload = mapper.build(order).to_json()
    except MappingError as exc:
        _fail(row, token, order, exc, key="invalid_local_data", message=str(exc))
        return PushResult("failed")
    source_id = payload["source_id"]
    if row.source_id != source_id and not _record_source_id(row, source_id):
        holder = OrderSync.objects.filter(source_id=source_id).values_list("pk", flat=True)
        problem = MappingError(
            order.pk, source_id, [("source_id", f"already used by order {holder.first()}")]
        )
        _fail(row, token, order, problem, key="duplicate_source_id", message=str(problem))
        return PushResult("failed")
    try:
        before_push.send(sender=OrderSync, sync=row, order=order, payload=payload)
    except CancelPush:
        _finish(row, version, token, state=SyncState.SKIPPED)
        return PushResult("skipped")

    digest = payload_hash(payload)
    if digest == row.payload_hash:  # set only after Voucherify accepted that payload
        _finish(row, version, token, state=SyncState.SYNCED)
        return PushResult("unchanged")

    limiter = SharedRateLimiter(config.rate_limit)
    waited_from = time.monotonic()
    wait = limiter.acquire(max_wait=MAX_THROTTLE_WAIT)
    if wait > 0:
        return PushResult("throttled", retry_in=wait)
    if time.monotonic() - waited_from > 1.0 and not _renew_leases([row.pk], token, config):
        # We slept for a slot; a shorter LEASE_SECONDS let another worker take the order.
        return PushResult("busy")

    client = get_client(retries=False)
    try:
        # The slot taken above is the first call's; a POST after a PUT's 404 takes its own.
        with attempt_log(client, row, attempts), first_attempt_paid(client):
            remote, method = _send(client, row, source_id, payload)
    except RateLimitBusy as exc:  # nothing sent: the batch stops and is rescheduled
        return PushResult("throttled", retry_in=exc.retry_in)
    except VoucherifyTransportError as exc:
        if not exc.sent:  # never reached Voucherify: an ordinary retry
            return _handle_failure(row, token, order, exc, config)
        # Timed out or dropped: the write may still land, later than anything sent
        # after it. Record the failure (retry or give up) as usual, then forget the
        # hash and keep everyone off the order until that write can no longer land
        # (the retry is due then; a push queued earlier finds the order busy).
        result = None
        try:
            result = _handle_failure(row, token, order, exc, config)
        finally:  # even when a push_failed receiver raised (then nobody re-enqueues it)
            window = _await_late_write(
                row, config,
                retry_in=result.retry_in if result else None,
                gave_up=result is not None and result.outcome == "failed",
                enqueue=result is None,
            )  # fmt: skip
        return PushResult("retry", retry_in=window) if result.outcome == "retry" else result
    except VoucherifyError as exc:
        return _handle_failure(row, token, order, exc, config)

    _finish(
        row, version, token, state=SyncState.SYNCED, landed=True,
        voucherify_id=remote.id, payload_hash=digest, last_payload=payload,
        remote_snapshot=remote.model_dump(mode="json"), synced_at=timezone.now(),
    )  # fmt: skip
    write_landed()
    try:
        after_push.send(sender=OrderSync, sync=row, order=order, remote_order=remote, method=method)
    except Exception:
        # Voucherify accepted the write and the row says so: a receiver's bug must not
        # turn a landed write into a failure (a retry would only send it again).
        logger.exception("an after_push receiver raised for order %s", source_id)
    return PushResult("pushed", method=method)


def _record_source_id(row: OrderSync, source_id: str) -> bool:
    """Store the order's source_id on its row; False when another row holds it. A
    savepoint: the duplicate must not abort a surrounding transaction (PostgreSQL)."""
    try:
        with transaction.atomic():
            OrderSync.objects.filter(pk=row.pk).update(source_id=source_id)
    except IntegrityError:
        return False
    row.source_id = source_id
    return True


# Where the shop's own services' client libraries raise from when they are unreachable.
_SERVICE_MODULES = frozenset({"redis", "kombu", "amqp", "pymemcache", "pylibmc", "psycopg"})


def _service_outage(exc: Exception) -> bool:
    """The database, the cache or the broker failed (not Voucherify, not the order)."""
    return isinstance(exc, DatabaseError | OSError) or any(
        cls.__module__.partition(".")[0] in _SERVICE_MODULES for cls in type(exc).__mro__
    )


def _fail_unexpectedly(
    row: OrderSync, token: str, exc: Exception, config: VoucherifyOrdersSettings
) -> PushResult:
    """Settle one order whose push raised where nothing expected it; the rest of the
    batch goes on. A database, cache or broker outage is nobody's order's fault: the order
    is retried like after a 5xx. Anything else (a receiver's bug) fails it. Either way the
    row shows the error, and the hash is forgotten (whether a write landed is unknown).
    No signal: a receiver may be what raised."""
    logger.exception("push of order %s raised", row.source_id or row.pk)
    fields = _error_fields(exc)
    fields["last_error_message"] = f"order {row.pk}: {fields['last_error_message']}"
    if _service_outage(exc):
        return _schedule_retry(row, token, None, exc, config, payload_hash="", **fields)
    _settle(
        row, row.version, token, SyncState.FAILED,
        attempts=row.attempts + 1, payload_hash="", **fields,
    )  # fmt: skip
    return PushResult("failed")


def payload_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _send(
    client: VoucherifyClient, row: OrderSync, source_id: str, payload: dict[str, Any]
) -> tuple[Order, str]:
    """PUT only what changed since the last push; POST (upsert) the first time, or when
    Voucherify no longer has the order. A forgotten hash means Voucherify may hold
    something else than the last payload (a late write landed): send all of it."""
    if row.voucherify_id and row.last_payload and row.payload_hash:
        dropped = set(row.last_payload) - set(payload)
        cleared: dict[str, Any] = {}
        if dropped & {"referrer_id", "referrer"} and not {"referrer_id", "referrer"} & set(payload):
            # The order has no referrer any more: null clears it, as the documents allow.
            cleared["referrer_id"] = None
            dropped -= {"referrer_id", "referrer"}
        if dropped:
            # Voucherify keeps a field that is not sent: the mapper must send an empty value
            # (0, {}, []) to clear it. Say so rather than report a false "synced".
            logger.warning(
                "order %s: the mapper no longer sends %s; Voucherify keeps the old value",
                source_id, ", ".join(sorted(dropped)),
            )  # fmt: skip
        changes = cleared | {
            key: value
            for key, value in payload.items()
            if key not in ("id", "source_id") and row.last_payload.get(key) != value
        }
        if changes:
            try:
                return client.update_order(source_id, changes), "PUT"
            except NotFound:
                logger.info("order %s is gone from Voucherify; creating it again", source_id)
    return client.create_order(payload), "POST"


def _handle_failure(
    row: OrderSync,
    token: str,
    order: Any,
    exc: VoucherifyError,
    config: VoucherifyOrdersSettings,
) -> PushResult:
    now = timezone.now()
    if refused_credentials(exc):
        # Nobody's order's fault: every push waits for the credentials, this one too,
        # without a try counted against it. Voucherify answered: a run of transient
        # failures is over, and the pause (however long) does not count towards RETRY_FOR.
        wait = pause_pushes(exc, config, now)
        OrderSync.objects.filter(pk=row.pk, lease_token=token).update(
            attempts=0,
            next_attempt_at=now + timedelta(seconds=wait + config.sweep_after),
            updated_at=now, lease_until=None, lease_token="", **_error_fields(exc),
        )  # fmt: skip
        return PushResult("paused", retry_in=wait)
    if isinstance(exc, VoucherifyClientError):
        _fail(row, token, order, exc)
        return PushResult("failed")
    return _schedule_retry(row, token, order, exc, config, **_error_fields(exc))


def _schedule_retry(
    row: OrderSync,
    token: str,
    order: Any,
    exc: Exception,
    config: VoucherifyOrdersSettings,
    **fields: Any,
) -> PushResult:
    """A transient failure: the order stays pending, due after the backoff, until its run
    of failures has lasted RETRY_FOR. ``order`` None: no push_failed signal is sent."""
    now = timezone.now()
    attempts = row.attempts + 1
    # A run of failures begins with the first failed try since the last success or change.
    first_failed_at = row.first_failed_at if row.attempts and row.first_failed_at else now
    server_wait = exc.retry_after if isinstance(exc, RateLimited) else None
    delay = retry_delay(config, attempts, first_failed_at, now, server_wait)
    if delay is None:
        _fail(row, token, order, exc, attempts=attempts, first_failed_at=first_failed_at)
        return PushResult("failed")
    OrderSync.objects.filter(pk=row.pk, lease_token=token).update(
        attempts=attempts,
        first_failed_at=first_failed_at,
        next_attempt_at=now + timedelta(seconds=delay),
        updated_at=now,
        lease_until=None,
        lease_token="",
        **fields,
    )
    if order is not None:
        push_failed.send(sender=OrderSync, sync=row, order=order, error=exc, final=False)
    logger.warning(
        "push of order %s failed (try %d, failing since %s), retry in %.1fs: %s",
        row.source_id, attempts, first_failed_at.isoformat(timespec="seconds"), delay, exc,
    )  # fmt: skip
    return PushResult("retry", retry_in=delay)


def _fail(
    row: OrderSync,
    token: str,
    order: Any,
    exc: Exception,
    *,
    key: str | None = None,
    message: str | None = None,
    attempts: int | None = None,
    first_failed_at: Any = None,
) -> None:
    fields = _error_fields(exc)
    if first_failed_at is not None:
        fields["first_failed_at"] = first_failed_at
    if key is not None:
        fields.update(last_error_key=key, last_error_message=message or str(exc))
    _settle(
        row, row.version, token, SyncState.FAILED,
        attempts=attempts if attempts is not None else row.attempts + 1, **fields,
    )  # fmt: skip
    logger.error("push of order %s failed for good: %s", row.source_id or row.pk, exc)
    push_failed.send(sender=OrderSync, sync=row, order=order, error=exc, final=True)


def _error_fields(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, VoucherifyAPIError):
        return {
            "last_error_status": exc.status_code,
            "last_error_key": exc.key or "",
            "last_error_message": exc.message or "",
            "last_error_details": exc.details or "",
            "last_error_request_id": exc.request_id or "",
        }
    return {
        "last_error_status": None,
        "last_error_key": type(exc).__name__,
        "last_error_message": str(exc)[:MAX_BODY_CHARS],
        "last_error_details": "",
        "last_error_request_id": "",
    }


def _finish(
    row: OrderSync, version: int, token: str, *, state: str, landed: bool = False, **fields: Any
) -> None:
    clear_error = {"attempts": 0, **NO_ERROR} if state == SyncState.SYNCED else {}
    _settle(row, version, token, state, landed=landed, **clear_error, **fields)


def _settle(
    row: OrderSync, version: int, token: str, state: str, *, landed: bool = False, **fields: Any
) -> None:
    """Record the outcome for the version read, and release the lease, in one UPDATE
    when the order did not change meanwhile.

    A save (or a delete: ``mark_deleted`` bumps the version too) that committed before
    this update made the version newer: the row stays pending and is pushed again from
    here (that save's own push found the lease taken). A save committing after it finds
    the lease free.

    A push that lost its lease records nothing: another worker holds the order. When
    this push's write ``landed`` at Voucherify, it may have landed after that worker's
    (or will, if that one is still in flight), so the order is pushed again.
    """
    done = dict(
        pushed_version=version, next_attempt_at=None, updated_at=timezone.now(),
        lease_until=None, lease_token="", **fields,
    )  # fmt: skip
    mine = OrderSync.objects.filter(pk=row.pk, lease_token=token)
    if mine.filter(version=version).update(state=state, **done):
        return
    if mine.update(state=SyncState.PENDING, **done):
        enqueue_push(row.pk, countdown=0)
    elif landed:
        _await_late_write(row, get_settings())


def _await_late_write(
    row: OrderSync,
    config: VoucherifyOrdersSettings,
    *,
    retry_in: float | None = None,
    gave_up: bool = False,
    enqueue: bool = True,
) -> float:
    """A write of this order may land (or has landed) after a newer one: make the order
    pending again, due once that write can no longer land (and not before ``retry_in``),
    with its hash forgotten, so that the next push re-sends the order as it is then,
    even an identical payload.

    Matched by pk, not by lease: the newer lease's holder may have settled ``synced``
    already (its hash no longer says what Voucherify holds), or still be in flight.
    The lease is taken from it, under a token of nobody's, until then: a holder still
    in flight finds its lease lost when it settles, and does the same; a save meanwhile
    finds the order busy, and the push queued here (or the sweep) sends it. A push that
    merely renewed its lease still holds its token, and settles as usual.

    ``gave_up``: this push failed the order for good (its last attempt); the order
    stays failed, its hash forgotten, unless the row was not this push's to fail.

    Returns the seconds until the order is due; ``enqueue`` queues its push for then
    (a caller that returns a retry to its task leaves that to the task).
    """
    # A request may run for connect + read timeouts before the client gives up; the
    # write it carried is taken to land within that time, or never.
    window = max(config.connect_timeout + config.read_timeout, retry_in or 0.0)
    now = timezone.now()
    until = now + timedelta(seconds=window)
    rows = OrderSync.objects.filter(pk=row.pk)
    hold = {"lease_until": until, "lease_token": f"late-{uuid.uuid4().hex[:27]}"}
    # Failed for good, it is held all the same: a change or a retry meanwhile (which
    # makes it pending) is pushed only once the old write can no longer land.
    if gave_up and rows.filter(state=SyncState.FAILED, lease_token="").update(
        payload_hash="", updated_at=now, **hold
    ):
        return window
    rows.update(
        state=SyncState.PENDING, payload_hash="", next_attempt_at=until, updated_at=now, **hold
    )
    if enqueue:
        enqueue_push(row.pk, countdown=window, deduplicate=False)
    return window
