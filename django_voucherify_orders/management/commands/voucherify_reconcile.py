"""Compare local orders with the ones Voucherify holds (one export), and fix the drift."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import exporter, reconcile
from ...client.schemas import Export


def _plain(text: str) -> str:
    """Progress on stderr is not an error: no red."""
    return text


class Command(BaseCommand):
    help = (
        "Compare local orders with Voucherify's using one export: orders missing there, "
        "there only, or differing in status or amount. Exits non-zero on drift; --fix "
        "pushes the missing and differing orders again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Mark missing and differing orders changed and push them (enqueue_sync).",
        )
        parser.add_argument(
            "--limit", type=int, default=reconcile.DEFAULT_SAMPLE,
            help="Rows shown per category (the counts are always exact).",
        )  # fmt: skip
        parser.add_argument(
            "--batch-size", type=int, default=reconcile.DEFAULT_BATCH_SIZE,
            help="Local orders read per query.",
        )  # fmt: skip
        parser.add_argument(
            "--timeout", type=float, default=exporter.DEFAULT_TIMEOUT,
            help="Seconds to wait for Voucherify to finish the export.",
        )  # fmt: skip
        parser.add_argument(
            "--poll-interval", type=float, default=exporter.DEFAULT_POLL_INTERVAL,
            help="Seconds before the first status check of the export.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 0 or options["batch_size"] < 1:
            raise CommandError("--limit must be 0 or more and --batch-size 1 or more")

        def progress(export: Export) -> None:
            self.stderr.write(f"export {export.id} {export.status}", style_func=_plain)

        try:
            result = reconcile.reconcile(
                fix=options["fix"],
                batch_size=options["batch_size"],
                sample=options["limit"],
                timeout=options["timeout"],
                poll_interval=options["poll_interval"],
                on_poll=progress,
            )
        except exporter.ExportFailed as exc:
            raise CommandError(f"reconcile: export job #{exc.job.pk} failed: {exc}") from None

        job = result.export_job
        self.stdout.write(
            f"Compared {result.local_count} local orders with {result.remote_count} in "
            f"Voucherify (export {job.export_id if job else '?'}, job #{job.pk if job else '?'})."
        )
        for kind in reconcile.KINDS:
            self._table(result, kind)
        if result.clean:
            self.stdout.write(self.style.SUCCESS("No drift."))
            return
        message = f"drift found: {result.summary()}"
        if options["fix"]:
            message += f"; {result.fixed} orders marked changed and pushed, run again to confirm"
        elif result.counts[reconcile.MISSING] or result.counts[reconcile.DIFFERENT]:
            message += "; --fix pushes the missing and differing orders"
        raise CommandError(message)

    def _table(self, result: reconcile.Reconciliation, kind: str) -> None:
        count = result.counts[kind]
        if not count:
            return
        rows = result.findings[kind]
        shown = f", first {len(rows)} shown" if len(rows) < count else ""
        self.stdout.write("")
        self.stdout.write(self.style.WARNING(f"{reconcile.TITLES[kind]}: {count}{shown}"))
        table = [("source_id", "local pk", "Voucherify id", "sync state", "detail")]
        table += [
            (f.source_id or "-", f.order_pk or "-", f.voucherify_id or "-", f.sync_state or "-",
             f.detail)
            for f in rows
        ]  # fmt: skip
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  " + "  ".join([*cells, row[4]]).rstrip())
