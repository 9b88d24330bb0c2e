"""Catch up live sync by hand: push pending orders, retry failed ones, or resync all."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from ...models import OrderSync, SyncState
from ...sync import due_for_push, enqueue_pushes, enqueue_sync, push_many
from ...sync.outage import current_pause
from ...sync.publisher import PUSH_BATCH


class Command(BaseCommand):
    help = (
        "Push orders that live sync has not delivered: pending ones whose push is due "
        "(the default), failed ones (--failed), or every order (--all)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--failed", action="store_true", help="Also retry orders whose sync failed."
        )
        which.add_argument(
            "--all", action="store_true", help="Mark every order changed and push it."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be pushed; change nothing."
        )
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Push in this process instead of enqueueing Celery tasks.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from ...mapping import get_mapper

        if options["all"]:
            queryset = get_mapper().get_queryset()
            if options["dry_run"]:
                self.stdout.write(f"Would mark {queryset.count()} orders changed and push them.")
                return
            with transaction.atomic():
                count = enqueue_sync(queryset)
            self.stdout.write(f"Marked {count} orders changed.")
        failed = OrderSync.objects.filter(state=SyncState.FAILED)
        if options["failed"]:
            if options["dry_run"]:
                self.stdout.write(f"Would retry {failed.count()} failed orders.")
            else:
                retried = failed.update(
                    state=SyncState.PENDING, attempts=0, next_attempt_at=timezone.now()
                )
                self.stdout.write(f"Retrying {retried} failed orders.")
        due = list(due_for_push(grace=0).values_list("pk", flat=True))
        if options["dry_run"]:
            self.stdout.write(f"Would push {len(due)} pending orders.")
            return
        if options["inline"]:
            outcomes = Counter(
                result.outcome
                for start in range(0, len(due), PUSH_BATCH)
                for result in push_many(due[start : start + PUSH_BATCH]).values()
            )
            summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
            self.stdout.write(f"Pushed {len(due)} order(s): {summary or 'nothing to do'}.")
            if pause := current_pause():
                raise CommandError(
                    f"Voucherify refused the credentials (HTTP {pause.status}) since "
                    f"{pause.since:%Y-%m-%d %H:%M:%S %Z}: pushes are paused until they work "
                    "again; fix APP_ID/SECRET_KEY or the key in Voucherify's dashboard"
                )
            if outcomes.get("failed") or outcomes.get("retry"):
                raise CommandError("some orders could not be pushed; see the admin for errors")
            return
        queued = enqueue_pushes(due, countdown=0, deduplicate=False)
        self.stdout.write(f"Enqueued {queued} of {len(due)} pending orders.")
        left = failed.count()
        if left and not options["failed"]:
            self.stdout.write(f"{left} orders have failed; --failed retries them.")
