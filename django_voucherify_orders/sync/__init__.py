"""Live sync: receivers -> outbox marks -> after-commit publishing -> the push engine
-> the sweep, with a rate limiter shared by every worker.

- ``receivers``: post_save/post_delete of the order model and its TRIGGERS.
- ``marks``: the outbox row written in the shop's transaction (``mark_changed``,
  ``enqueue_sync``).
- ``publisher``: after commit, queue the pushes off the request path.
- ``engine``: lease, version, payload hash, send, settle, back off.
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
