"""Live sync: receivers -> outbox marks -> after-commit publishing -> the push engine
-> the sweep, with a rate limiter shared by every worker.

- ``receivers``: saves and deletes of the order model and its TRIGGERS (their proxies
  and children too): the orders a line leaves and joins, a mark before the UPDATE in
  autocommit.
- ``marks``: the outbox row written in the shop's transaction (``mark_changed``,
  ``enqueue_sync``).
- ``publisher``: after commit, queue the pushes off the request path.
- ``engine``: lease, version, payload hash, send, settle, back off; a write of unknown
  outcome holds its order until it can no longer land.
- ``outage``: the retry policy (``RETRY_FOR``) and the shared pause on refused credentials.
- ``attempts``: the HTTP attempt log and the last rate-limit headers.
- ``sweep``: re-enqueue what was never delivered; prune the attempt log.
- ``limiter``: the shared sliding-window rate limiter.
"""

from __future__ import annotations

from .attempts import LAST_RATE_LIMIT_KEY, remember_rate_limit
from .engine import PushResult, payload_hash, push, push_many
from .marks import enqueue_sync, mark_changed, mark_deleted
from .publisher import enqueue_push, enqueue_pushes, paused_sync
from .sweep import due_for_push, prune_attempts, sweep

__all__ = [
    "LAST_RATE_LIMIT_KEY",
    "PushResult",
    "due_for_push",
    "enqueue_push",
    "enqueue_pushes",
    "enqueue_sync",
    "mark_changed",
    "mark_deleted",
    "paused_sync",
    "payload_hash",
    "prune_attempts",
    "push",
    "push_many",
    "remember_rate_limit",
    "sweep",
]
