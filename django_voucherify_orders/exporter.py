"""CSV exports of the orders Voucherify holds: create, poll, streamed download.

One export is one :class:`~.models.ExportJob` row: the parameters sent, Voucherify's
export id and status, the row count, the error if any, and a copy of the CSV in the
private export storage (``ExportJob.file``, see :mod:`.export_storage`) that the admin
offers for download. Copies older than ``EXPORT_RETENTION_DAYS`` are pruned after each
export.

The CSV never sits in memory. It is streamed into a spool file (a temporary file in the
output's own directory when the output is a path), its rows are counted on the way
through, it is copied into storage from that file, and only then is the output put in
place with ``os.replace``: a failure at any point leaves no output file and no stored
copy behind, and the job row says what went wrong.

Command-line text becomes export parameters through :func:`parse_fields` and
:func:`parse_filter` / :func:`build_filters`, which name the expression and the problem
instead of letting Voucherify answer with a generic 400.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from .client import (
    AuthenticationError,
    PayloadError,
    VoucherifyClient,
    VoucherifyError,
    VoucherifyTransportError,
)
from .client.schemas import (
    Export,
)
from .conf import get_client, get_settings
from .export_params import (
    DEFAULT_FIELDS,
    EXPORT_ORDERINGS,
    ExportInputError,
    ExportRequest,
    build_filters,
    parse_fields,
    parse_filter,
)
from .export_storage import prune_exports
from .models import ExportJob, JobStatus

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_TIMEOUT",
    "EXPORT_ORDERINGS",
    "ExportFailed",
    "ExportInputError",
    "ExportRequest",
    "FileOutput",
    "StreamOutput",
    "build_filters",
    "create_job",
    "parse_fields",
    "parse_filter",
    "run_export",
    "run_export_job",
    "start_export_job",
]

logger = logging.getLogger("django_voucherify_orders.exporter")

DEFAULT_TIMEOUT = 600.0  # seconds to wait for Voucherify to finish an export
DEFAULT_POLL_INTERVAL = 0.5  # first wait between polls; it grows to 10 s
CHUNK = 64 * 1024

OnPoll = Callable[[Export], None]


class ExportFailed(Exception):
    """The export did not complete; ``job`` (status failed) holds the reason."""

    def __init__(self, job: ExportJob, message: str) -> None:
        self.job = job
        super().__init__(message)


# --- outputs ------------------------------------------------------------------------------


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()  # what open() would give a new file


class _Output:
    """Where the CSV goes besides storage. ``spool`` receives the download."""

    spool: IO[bytes]

    def commit(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.spool.close()


class _StorageOnly(_Output):
    def __init__(self) -> None:
        self.spool = tempfile.TemporaryFile(prefix="voucherify-export-")  # noqa: SIM115

    def commit(self) -> None:
        self.spool.close()


class FileOutput(_Output):
    """A path written atomically: a temporary file in the same directory, then os.replace.

    Opening the temporary file at once proves the path writable before anything is sent
    to Voucherify; :class:`OSError` names the path and the reason.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"cannot write the CSV to {self.path}: it is a directory")
        directory = self.path.parent
        if not directory.is_dir():
            raise FileNotFoundError(
                f"cannot write the CSV to {self.path}: directory {directory} does not exist"
            )
        try:
            fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".part")
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot write the CSV to {self.path}: {exc.strerror}"
            ) from None
        self.temp_path = Path(temp)
        self.spool = os.fdopen(fd, "w+b")

    def commit(self) -> None:
        self.spool.close()
        os.chmod(self.temp_path, _FILE_MODE)  # mkstemp makes it 0600
        os.replace(self.temp_path, self.path)

    def discard(self) -> None:
        super().discard()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()


class BinaryStream(Protocol):
    """What :class:`StreamOutput` needs of a binary stream (``sys.stdout.buffer``)."""

    def write(self, data: bytes, /) -> object: ...
    def flush(self) -> object: ...


class TextStream(Protocol):
    """What :class:`StreamOutput` needs of a text stream: told apart by its ``encoding``."""

    @property
    def encoding(self) -> str: ...
    def write(self, text: str, /) -> object: ...
    def flush(self) -> object: ...


def _is_text(stream: BinaryStream | TextStream) -> TypeIs[TextStream]:
    return hasattr(stream, "encoding")


class StreamOutput(_Output):
    """An open stream (standard output): written only once the whole CSV has arrived.

    A binary stream gets the bytes as they are; a text stream gets them decoded as UTF-8.
    """

    def __init__(self, stream: BinaryStream | TextStream) -> None:
        self.stream = stream
        self.spool = tempfile.TemporaryFile(prefix="voucherify-export-")  # noqa: SIM115

    def commit(self) -> None:
        self.spool.seek(0)
        stream = self.stream
        if _is_text(stream):
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while chunk := self.spool.read(CHUNK):
                stream.write(decoder.decode(chunk))
            stream.write(decoder.decode(b"", final=True))
        else:
            while chunk := self.spool.read(CHUNK):
                stream.write(chunk)
        stream.flush()
        self.spool.close()


_QUOTED = re.compile(rb'"[^"]*"')


class _RowCounter:
    """Counts CSV records in bytes as they stream past: newlines outside quoted fields.

    A quoted field may hold newlines (metadata notes); ``""`` inside it reads as two
    adjacent quoted sections, which is the same for counting. ``"`` and ``\\n`` never
    occur inside a UTF-8 multi-byte sequence. The work is done by ``bytes`` and ``re``
    methods, in C, a chunk at a time.
    """

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.records = 0
        self.quoted = False  # inside a quoted field at the end of the last chunk
        self.last = b""

    def write(self, chunk: bytes) -> int:
        if chunk:
            self._count(chunk)
            self.last = chunk[-1:]
        return self.sink.write(chunk)

    def _count(self, chunk: bytes) -> None:
        start = 0
        if self.quoted:  # skip to the end of the field left open by the last chunk
            start = chunk.find(b'"') + 1
            if not start:
                return
            self.quoted = False
        rest = chunk[start:] if start else chunk
        if rest.count(b'"') % 2:  # a quoted field opens here and runs past this chunk
            opened = rest.rfind(b'"')
            rest = rest[:opened]
            self.quoted = True
        if b'"' in rest:
            rest = _QUOTED.sub(b"", rest)
        self.records += rest.count(b"\n")

    @property
    def rows(self) -> int:
        """Data rows: records less the header row."""
        total = self.records + (1 if self.last and self.last != b"\n" else 0)
        return max(total - 1, 0)


# --- running ------------------------------------------------------------------------------


def create_job(request: ExportRequest, *, timeout: float | None = None) -> ExportJob:
    """A queued job. ``parameters`` holds what is sent to Voucherify (and ``timeout``)."""
    parameters = request.to_json()
    if timeout is not None:
        parameters["timeout"] = timeout
    return ExportJob.objects.create(parameters=parameters, status=JobStatus.QUEUED)


def start_export_job(request: ExportRequest, *, timeout: float | None = None) -> ExportJob:
    """Create a job and run it in a Celery worker after commit (the admin, ``--async``)."""
    from .tasks import run_export as task

    job = create_job(request, timeout=timeout)
    queue = get_settings().celery_queue
    transaction.on_commit(
        # celery-types wants a tuple and no None queue (None means the default queue at run
        # time); the list is kept as tests/admin/test_jobs.py asserts this exact call.
        lambda: task.apply_async(args=[job.pk], queue=queue)  # type: ignore[arg-type]
    )
    return job


def run_export_job(job_pk: int) -> ExportJob:
    """Run a queued job, keeping the CSV in storage only (the Celery task). Never raises
    for an export that failed: the job row says why. A job already run is left alone,
    so a task delivered twice does not export twice."""
    claimed = ExportJob.objects.filter(pk=job_pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING
    )
    job = ExportJob.objects.get(pk=job_pk)
    if not claimed:
        logger.info("export job %s is %s, not queued; not run again", job_pk, job.status)
        return job
    timeout = job.parameters.get("timeout")
    try:
        return run_export(job, timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout))
    except ExportFailed as exc:
        return exc.job


def run_export(
    job: ExportJob,
    *,
    output: FileOutput | StreamOutput | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    on_poll: OnPoll | None = None,
    client: VoucherifyClient | None = None,
    store: bool = True,
) -> ExportJob:
    """Create the export, wait for it, stream it to ``output`` and into storage.

    ``store=False`` keeps no copy in storage (reconcile, unless asked): ``output`` is then
    the only place the CSV goes.

    ``output`` (a :class:`FileOutput` or :class:`StreamOutput`, opened beforehand so a
    bad path fails before anything is sent) gets the CSV only once all of it has arrived
    and been stored. Raises :class:`ExportFailed` with the job marked failed; the output
    is then discarded and nothing is stored.
    """
    runner = _Runner(job, output or _StorageOnly(), client, on_poll, store=store)
    job = runner.run(timeout=timeout, poll_interval=poll_interval)
    _prune_quietly()
    return job


def _prune_quietly() -> None:
    """Old copies go after each export; trouble pruning never fails the export."""
    try:
        pruned = prune_exports()
    except Exception:
        logger.warning("could not prune old export files", exc_info=True)
        return
    if pruned:
        logger.info("pruned %s export files past EXPORT_RETENTION_DAYS", pruned)


class _Runner:
    def __init__(
        self,
        job: ExportJob,
        output: _Output,
        client: VoucherifyClient | None,
        on_poll: OnPoll | None,
        *,
        store: bool = True,
    ) -> None:
        self.job = job
        self.store = store
        self.output = output
        self.client = client
        self.on_poll = on_poll
        self.stage = "creating the export"

    def run(self, *, timeout: float, poll_interval: float) -> ExportJob:
        job = self.job
        try:
            request = ExportRequest.from_json(job.parameters)
            self._update(status=JobStatus.RUNNING, error="", finished_at=None)
            client = self.client or get_client()  # a configuration error fails the job too
            export = client.create_order_export(
                fields=request.fields, order=request.order, filters=request.filters
            )
            self._update(export_id=export.id, remote_status=export.status)
            self.stage = f"waiting for export {export.id}"
            if not export.finished:
                export = client.wait_for_export(
                    export.id, timeout=timeout, poll_interval=poll_interval, on_poll=self._polled
                )
            self._polled(export, report=False)
            if export.status != "DONE":
                raise _Stop(
                    f"export {export.id} ended in {export.status} on Voucherify's side "
                    "(no file was produced); try again, or ask Voucherify's support about it"
                )
            self.stage = f"downloading export {export.id}"
            counter = _RowCounter(self.output.spool)
            client.download_export(export, counter)  # type: ignore[arg-type]
            self.output.spool.flush()
            if self.store:
                self.stage = "storing the CSV in the export storage"
                self.output.spool.seek(0)
                name = f"orders-{job.pk}-{export.id}.csv"
                job.file.save(name, File(self.output.spool, name=name), save=False)
            self.stage = "writing the output"
            self.output.commit()
        except _Stop as exc:
            self._fail(str(exc))
        except TimeoutError:
            message = (
                f"export {self.job.export_id} did not finish within {timeout:g}s (still "
                f"{self.job.remote_status}); a longer --timeout waits longer"
            )
            self._fail(message)
        except AuthenticationError as exc:
            self._fail(
                f"{self.stage}: Voucherify refused the credentials ({exc}); check "
                'VOUCHERIFY_ORDERS["APP_ID"] and ["SECRET_KEY"]'
            )
        except VoucherifyTransportError as exc:
            self._fail(f"{self.stage}: no answer from Voucherify ({exc})")
        except (VoucherifyError, PayloadError, ExportInputError, OSError) as exc:
            self._fail(f"{self.stage}: {exc}")
        except BaseException as exc:  # a bug or Ctrl-C: the row must not stay "running"
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            self._fail(
                f"{self.stage}: {'interrupted' if interrupted else type(exc).__name__}: {exc}",
                status=JobStatus.INTERRUPTED if interrupted else JobStatus.FAILED,
                reraise=False,
            )
            raise
        self._update(
            status=JobStatus.DONE,
            row_count=counter.rows,
            file=job.file.name,
            finished_at=timezone.now(),
        )
        logger.info("export job %s: %s rows from export %s", job.pk, counter.rows, export.id)
        return job

    def _polled(self, export: Export, *, report: bool = True) -> None:
        if export.status != self.job.remote_status:
            self._update(remote_status=export.status)
        if report and self.on_poll is not None:
            self.on_poll(export)

    def _update(self, **fields: Any) -> None:
        for name, value in fields.items():
            if name != "file":
                setattr(self.job, name, value)
        ExportJob.objects.filter(pk=self.job.pk).update(**fields)

    def _fail(self, message: str, *, status: str = JobStatus.FAILED, reraise: bool = True) -> None:
        self.output.discard()
        if self.job.file:
            with contextlib.suppress(Exception):  # storage trouble must not hide the cause
                self.job.file.delete(save=False)
        self.job.file.name = ""
        self._update(
            status=status, error=message, row_count=None, file="", finished_at=timezone.now()
        )
        logger.warning("export job %s failed: %s", self.job.pk, message)
        if reraise:
            raise ExportFailed(self.job, message)


class _Stop(Exception):
    """A failure whose message is complete as it is."""
