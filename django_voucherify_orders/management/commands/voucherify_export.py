"""Export the orders Voucherify holds to CSV: one export, polled, streamed to a file."""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import exporter
from ...client.schemas import EXPORT_FIELDS, Export
from ...export_storage import prune_exports

FILTER_HELP = (
    "A filter such as status=PAID, status=PAID,FULFILLED (any of), status!=CANCELED, "
    "created_at>2024-01-01 (or <; a date or ISO date-time), amount>=1000 (minor units; "
    "also > < <=), metadata.channel=web. Repeat it for more; conditions on one field must "
    "all hold, --junction combines the fields."
)


class _TextSink:
    """Lets the exporter write CSV text to a stream that is not a real file (tests)."""

    encoding = "utf-8"

    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")  # OutputWrapper would add a newline to each chunk

    def flush(self) -> None:
        self.wrapper.flush()


def _plain(text: str) -> str:
    """Progress on stderr is not an error: no red."""
    return text


class Command(BaseCommand):
    help = (
        "Export the orders Voucherify holds to CSV. The file is written atomically and a "
        "copy is kept in the private export storage (EXPORT_STORAGE; the admin offers it) "
        "for EXPORT_RETENTION_DAYS. --prune only deletes the copies past that."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fields",
            help="Comma-separated columns: "
            + ", ".join((*EXPORT_FIELDS, "metadata.<key>"))
            + f" (default Voucherify's: {','.join(exporter.DEFAULT_FIELDS)}).",
        )
        parser.add_argument(
            "--order",
            choices=exporter.EXPORT_ORDERINGS,
            help="Row order (Voucherify's default: -created_at); write --order=-status for a "
            "descending one.",
        )
        parser.add_argument(
            "--filter", action="append", default=[], dest="filters", metavar="EXPR",
            help=FILTER_HELP,
        )  # fmt: skip
        parser.add_argument(
            "--junction", choices=("and", "or"), help="How filters on different fields combine."
        )
        parser.add_argument(
            "--output", "-o", metavar="PATH",
            help="Write the CSV here ('-' for standard output). Without it the CSV is only "
            "kept in the export storage.",
        )  # fmt: skip
        parser.add_argument(
            "--async", action="store_true", dest="run_async",
            help="Create the job, run it in a Celery worker and print its id.",
        )  # fmt: skip
        parser.add_argument(
            "--timeout", type=float, default=None,
            help=f"Seconds to wait for Voucherify to finish the export "
            f"(default {exporter.DEFAULT_TIMEOUT:g}).",
        )  # fmt: skip
        parser.add_argument(
            "--poll-interval", type=float, default=exporter.DEFAULT_POLL_INTERVAL,
            help="Seconds before the first status check; the wait grows to 10 s.",
        )  # fmt: skip
        parser.add_argument(
            "--prune", action="store_true",
            help="Export nothing: delete the stored CSVs of jobs finished more than "
            "EXPORT_RETENTION_DAYS ago (each export does this too), and say how many.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prune"]:
            pruned = prune_exports()
            self.stdout.write(f"Pruned {pruned} export files past EXPORT_RETENTION_DAYS.")
            return
        try:
            request = exporter.ExportRequest(
                fields=tuple(exporter.parse_fields(options["fields"]))
                if options["fields"] is not None
                else None,
                order=options["order"],
                filters=exporter.build_filters(options["filters"], options["junction"]),
            )
        except exporter.ExportInputError as exc:
            raise CommandError(str(exc)) from None
        timeout = options["timeout"]
        if timeout is not None and timeout < 0:
            raise CommandError("--timeout must be 0 or more seconds")

        if options["run_async"]:
            if options["output"]:
                raise CommandError(
                    "--async keeps the CSV in the export storage only (the admin offers it); "
                    "drop --output"
                )
            job = exporter.start_export_job(request, timeout=timeout)
            self.stdout.write(str(job.pk))
            self.stderr.write(f"Export job #{job.pk} queued.", style_func=_plain)
            return

        to_stdout = options["output"] == "-"
        output: exporter.FileOutput | exporter.StreamOutput | None = None
        if to_stdout:
            stream: Any = getattr(self.stdout, "buffer", None)  # the real stdout's bytes
            if stream is not None:
                self.stdout.flush()
            output = exporter.StreamOutput(stream or _TextSink(self.stdout))
        elif options["output"]:
            try:  # before anything is created or sent
                output = exporter.FileOutput(options["output"])
            except OSError as exc:
                raise CommandError(str(exc.strerror or exc)) from None

        try:
            job = exporter.create_job(request, timeout=timeout)
        except BaseException:
            if output is not None:
                output.discard()
            raise

        def progress(export: Export) -> None:
            self.stderr.write(f"export {export.id} {export.status}", style_func=_plain)

        try:
            job = exporter.run_export(
                job,
                output=output,
                timeout=exporter.DEFAULT_TIMEOUT if timeout is None else timeout,
                poll_interval=options["poll_interval"],
                on_poll=progress,
            )
        except exporter.ExportFailed as exc:
            raise CommandError(f"export job #{job.pk} failed: {exc}") from None

        where = "standard output" if to_stdout else options["output"]
        summary = f"Exported {job.row_count} rows (export {job.export_id}, job #{job.pk})"
        summary += f" to {where}; " if where else "; "
        summary += f"stored as {job.file.name}"
        with contextlib.suppress(Exception):
            summary += f" ({job.file.size} bytes)"
        (self.stderr if to_stdout else self.stdout).write(summary + ".", style_func=_plain)
