"""Historical import: local orders -> Voucherify's bulk import, in batches of up to 2000.

- ``params``: what a job selects (its parameters, stored on the job) and the queryset.
- ``claim``: one runner per job (a claim on the job row, kept alive by heartbeats).
- ``job``: reading, sending, polling and recording batches; resuming.
- ``rows``: the failure rows and the OrderSync rows an import writes (never over live
  sync's).
- ``via_create``: the other path, through live sync's create (events and earning rules
  fire), for recent orders.

Voucherify's import triggers no webhooks, distributions or earning rules: it is meant for
history. Orders imported here are marked synced, so live sync does not push them again.
"""

from __future__ import annotations

from .claim import ClaimLost, JobBusy, JobFinished, check_claimable, silence_limit
from .job import create_job, run_import, run_import_job
from .params import ImportParameters, select_orders

__all__ = [
    "ClaimLost",
    "ImportParameters",
    "JobBusy",
    "JobFinished",
    "check_claimable",
    "create_job",
    "run_import",
    "run_import_job",
    "select_orders",
    "silence_limit",
]
