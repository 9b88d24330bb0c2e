"""Thin Celery tasks over sync/ and the bulk jobs. Arguments are primary keys only.

Schedule ``sweep`` and ``prune_attempts`` with Celery beat (see docs/operations.md).
"""

from __future__ import annotations

import time
from collections import defaultdict

from celery import shared_task
from django.core.cache import cache

from . import sync
from .sync.publisher import QUEUED_KEY

EAGER_MAX_WAIT = 5.0  # seconds an eager push (no broker) waits in-process for its retry


# A push re-run after its worker died is harmless (the lease and the payload hash make
# it idempotent), so acknowledge late: a SIGKILLed worker's push is delivered again.
@shared_task(
    name="django_voucherify_orders.push_orders",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def push_orders(order_pks: list[str]) -> dict[str, str]:
    # From now on, a new change to one of these orders queues a push again.
    cache.delete_many([QUEUED_KEY.format(key) for key in order_pks])
    results = sync.push_many(order_pks)
    eager = push_orders.app.conf.task_always_eager
    later: dict[float, list[str]] = defaultdict(list)
    for key, result in results.items():
        if result.retry_in is None:
            continue
        if eager and result.outcome != "throttled" and result.retry_in > EAGER_MAX_WAIT:
            # No broker (demo, development): the request that saved the order would
            # retry for as long as an outage or a credentials pause lasts. The sweep will.
            continue
        later[result.retry_in].append(key)
    if later and eager:
        # Countdowns are ignored without a broker, so wait here, bounded.
        time.sleep(min(max(later), EAGER_MAX_WAIT))
    for retry_in, keys in later.items():
        sync.enqueue_pushes(keys, countdown=retry_in)
    return {key: result.outcome for key, result in results.items()}


@shared_task(name="django_voucherify_orders.sweep", ignore_result=True)
def sweep() -> int:
    return sync.sweep()


@shared_task(name="django_voucherify_orders.prune_attempts", ignore_result=True)
def prune_attempts() -> int:
    return sync.prune_attempts()


@shared_task(name="django_voucherify_orders.run_import", ignore_result=True)
def run_import(job_pk: int) -> str:
    from . import importer

    return importer.run_import_job(job_pk).status


@shared_task(name="django_voucherify_orders.run_export", ignore_result=True)
def run_export(job_pk: int) -> str:
    from . import exporter

    return exporter.run_export_job(job_pk).status
