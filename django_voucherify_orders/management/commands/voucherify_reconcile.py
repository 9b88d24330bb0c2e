"""Compare local orders with the ones Voucherify holds (one export), and fix the drift."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import exporter, reconcile
from ...client.schemas import Export
from ...mapping import get_mapper
from ..progress import Progress

#: Exit statuses, for cron jobs and monitoring.
IN_STEP = 0  # no drift, or only the expected kind (deleted here, kept by Voucherify)
DRIFT = 1  # drift found (with --fix: drift that --fix could not queue a push for)
UNFINISHED = 2  # nothing or not everything was compared: a failed export, an interruption


def _check_pk(text: str) -> None:
    model = get_mapper().model
    try:
        model._meta.pk.to_python(text)
    except (ValidationError, ValueError, TypeError):
        raise CommandError(
            f"--resume-after: {text!r} is not a primary key of {model._meta.label}",
            returncode=UNFINISHED,
        ) from None


def _plain(text: str) -> str:
    """Progress on stderr is not an error: no red."""
    return text


class Command(BaseCommand):
    help = (
        "Compare local orders with Voucherify's using one export: orders missing there, "
        "there only, or differing in status or amount (--deep: in every field the mapper "
        "sends, one GET per order). Exit status: 0 when both sides agree or differ only as "
        "expected (orders deleted here, which Voucherify keeps); 1 when drift was found; "
        "with --fix, 0 once a push is queued for every missing and differing order (1 if "
        "drift --fix cannot repair remains); 2 when the check could not finish (or an "
        "option is wrong)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="Mark missing and differing orders changed and push them (enqueue_sync).",
        )
        parser.add_argument(
            "--deep", action="store_true",
            help="Also GET each order Voucherify holds (rate-limited like every call) and "
            "compare items, customer, metadata and every other field the mapper sends.",
        )  # fmt: skip
        parser.add_argument(
            "--resume-after", metavar="PK",
            help="Check only the local orders after this primary key: what an interrupted "
            "--deep run prints to continue it.",
        )  # fmt: skip
        parser.add_argument(
            "--keep-export", action="store_true",
            help="Keep the export's CSV in the export storage (default: no copy is kept).",
        )  # fmt: skip
        parser.add_argument(
            "--no-progress", action="store_true", help="Plain progress lines, no progress bar."
        )
        parser.add_argument(
            "--limit", type=int, default=reconcile.DEFAULT_SAMPLE,
            help="Rows shown per category (the counts are always exact).",
        )  # fmt: skip
        parser.add_argument(
            "--batch-size", type=int, default=reconcile.DEFAULT_BATCH_SIZE,
            help="Local orders read per query (a --deep run resumes at a batch's end).",
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
        # Wrong options compare nothing (2), before the export is asked for; 1 means drift.
        if options["limit"] < 0 or options["batch_size"] < 1:
            raise CommandError(
                "--limit must be 0 or more and --batch-size 1 or more", returncode=UNFINISHED
            )
        if options["resume_after"] is not None:
            _check_pk(options["resume_after"])

        def progress(export: Export) -> None:
            self.stderr.write(f"export {export.id} {export.status}", style_func=_plain)

        bar = (
            Progress(self, "reconcile --deep", bar=not options["no_progress"])
            if options["deep"]
            else None
        )

        def checked(count: int) -> None:
            assert bar is not None
            bar.show(count, f"reconcile --deep: {count}/{bar.total} orders checked")

        try:
            result = reconcile.reconcile(
                fix=options["fix"],
                batch_size=options["batch_size"],
                sample=options["limit"],
                timeout=options["timeout"],
                poll_interval=options["poll_interval"],
                on_poll=progress,
                keep_export=options["keep_export"],
                deep=options["deep"],
                resume_after=options["resume_after"],
                on_start=bar.start if bar else None,
                on_progress=checked if bar else None,
            )
        except exporter.ExportFailed as exc:
            raise CommandError(
                f"reconcile: export job #{exc.job.pk} failed: {exc}", returncode=UNFINISHED
            ) from None
        except reconcile.ExportHeaderError as exc:
            raise CommandError(f"reconcile: {exc}", returncode=UNFINISHED) from None
        except reconcile.Interrupted as exc:
            self._report(exc.result, options)
            raise CommandError(self._resume_hint(exc, options), returncode=UNFINISHED) from None
        finally:
            if bar is not None:
                bar.close()
        self._report(result, options)
        if result.clean:
            self.stdout.write(self.style.SUCCESS("No drift."))
            return
        message = f"drift found: {result.summary()}"
        fixable = result.counts[reconcile.MISSING] + result.counts[reconcile.DIFFERENT]
        if options["fix"]:
            message += f"; {result.fixed} orders marked changed and pushed, run again to confirm"
            if result.fixed >= fixable and result.drift == fixable:
                self.stdout.write(self.style.SUCCESS(message[0].upper() + message[1:] + "."))
                return  # every fix queued: 0
        elif fixable:
            message += "; --fix pushes the missing and differing orders"
        raise CommandError(message, returncode=DRIFT)

    def _report(self, result: reconcile.Reconciliation, options: dict[str, Any]) -> None:
        job = result.export_job
        self.stdout.write(
            f"Compared {result.local_count} local orders with {result.remote_count} in "
            f"Voucherify (export {job.export_id if job else '?'}, job #{job.pk if job else '?'}"
            f"{', deep' if options['deep'] else ''})."
        )
        for kind in reconcile.KINDS:
            self._table(result, kind)

    def _resume_hint(self, exc: reconcile.Interrupted, options: dict[str, Any]) -> str:
        cause = exc.cause
        why = "interrupted" if isinstance(cause, KeyboardInterrupt) else f"stopped ({cause})"
        after = exc.result.checked_through or options["resume_after"]
        line = ["manage.py", "voucherify_reconcile", "--deep"]
        line += [flag for flag in ("--fix", "--keep-export") if options[flag[2:].replace("-", "_")]]
        if options["batch_size"] != reconcile.DEFAULT_BATCH_SIZE:
            line += ["--batch-size", str(options["batch_size"])]
        if after is None:
            return f"reconcile {why} before any order was checked.\nStart again with: " + " ".join(
                line
            )
        line += ["--resume-after", after]
        return (
            f"reconcile {why}: the orders up to and including {after} were checked (their "
            f"drift is listed above{', their fixes queued' if options['fix'] else ''}).\n"
            "Continue with: " + " ".join(line)
        )

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
