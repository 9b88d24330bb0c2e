"""Asynchronous work: order imports (async actions) and order exports.

Real Voucherify runs these in the background. Here time is counted in polls, so tests are
deterministic: each GET of an import or export moves it one step; `async_steps` polls
reach DONE (0 = finished at once). Not locked: State locks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .csvexport import ExportParameters, render_csv
from .errors import ApiError
from .faults import Faults
from .store import ImportConflict, OrderStore
from .util import Clock, new_async_action_id, new_download_token, new_export_id, now_iso


@dataclass
class ImportAction:
    id: str
    seq: int
    request_id: str
    created_at: str
    updated_at: str
    orders: list[dict[str, Any]]
    status: str = "ENQUEUED"
    polls: int = 0
    started: float | None = None
    processing_time: int = 0
    progress: int = 0
    result: dict[str, Any] | None = None

    def view(self, *, with_result: bool = True) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "type": "ORDERS.IMPORT",
            "status": self.status,
        }
        if self.status == "DONE":
            # SUCCESS as in the documented DONE examples; failed orders don't fail the action.
            view["operation_status"] = "SUCCESS"
        view.update(
            created_at=self.created_at,
            updated_at=self.updated_at,
            request_id=self.request_id,
            progress=self.progress,
            processing_time=self.processing_time,
            object="async_action",
        )
        # `result` is left out until set: the documents do not allow result: null.
        if with_result and self.result is not None:
            view["result"] = self.result
        return view


@dataclass
class ExportJob:
    id: str
    seq: int
    created_at: str
    params: ExportParameters
    will_fail: bool = False
    status: str = "SCHEDULED"
    polls: int = 0
    token: str | None = None
    csv: str | None = None
    result: dict[str, str] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "export",
            "created_at": self.created_at,
            "status": self.status,
            "channel": "API",
            "exported_object": "order",
            "parameters": self.params.echo(),
            "result": self.result,
            "user_id": None,  # set only for exports started in the dashboard (WEBSITE)
        }


class Jobs:
    def __init__(
        self,
        store: OrderStore,
        faults: Faults,
        clock: Clock,
        steps: int,
        download_url: Callable[[], str],
        import_existing: str,
    ) -> None:
        self.store = store
        self.faults = faults
        self.clock = clock
        self.steps = steps
        self.download_url = download_url
        self.import_existing = import_existing
        self.imports: dict[str, ImportAction] = {}
        self.exports: dict[str, ExportJob] = {}
        self._seq = itertools.count()

    # -- imports --------------------------------------------------------------------------

    def create_import(self, orders: list[dict[str, Any]], request_id: str) -> ImportAction:
        now = now_iso(self.clock)
        action = ImportAction(
            id=new_async_action_id(),
            seq=next(self._seq),
            request_id=request_id,
            created_at=now,
            updated_at=now,
            orders=orders,
        )
        self.imports[action.id] = action
        if self.steps == 0:
            self._finish_import(action)
        return action

    def poll_import(self, action: ImportAction) -> None:
        """One poll is one step of the import at the head of the queue.

        "There can be only a single on-going order import per tenant per project" [D-ord]:
        imports run one at a time, first in first out. A poll of a waiting import drives
        the one ahead of it, as the server would keep working meanwhile; so a client that
        polls only its latest import still gets there.
        """
        head = self._head_import()
        if head is None or action.status == "DONE":
            return
        head.polls += 1
        if head.polls >= self.steps:
            self._finish_import(head)
            return
        if head.started is None:
            head.started = self.clock()
        head.status = "IN_PROGRESS"
        head.progress = 100 * head.polls // self.steps
        head.updated_at = now_iso(self.clock)

    def _head_import(self) -> ImportAction | None:
        return next((a for a in self.imports.values() if a.status != "DONE"), None)

    def _finish_import(self, action: ImportAction) -> None:
        now = now_iso(self.clock)
        failed: list[dict[str, Any]] = []
        unnamed = 0
        for body in action.orders:
            source_id = body.get("source_id")
            try:
                reason = self.faults.import_failure(source_id)
                if reason is not None:
                    raise ImportConflict(reason)
                # Undocumented: what the API does with an order that already exists. The
                # default policy ("fail") lists it in result.failed, which also catches a
                # source_id that appears twice in one batch; "upsert" updates it instead.
                self.store.upsert(body, now, existing=self.import_existing)
            except ImportConflict as exc:
                if self.faults.import_failure_unnamed(source_id):
                    unnamed += 1  # counted, not itemised
                    continue
                failed.append({"source_id": source_id, "reason": str(exc)})
            except ApiError as exc:
                failed.append({"source_id": source_id, "reason": exc.details or exc.message})
        failed_count = len(failed) + unnamed
        done = len(action.orders) - failed_count
        action.result = {
            "message": f"{done} order(s) imported successfully, {failed_count} failed.",
            "failed": failed,
            "done_count": done,
            "failed_count": failed_count,
        }
        if action.started is not None:
            action.processing_time = int((self.clock() - action.started) * 1000)
        # DONE even when some orders failed, as the documented example shows [D-aa].
        action.status = "DONE"
        action.progress = 100
        action.updated_at = now
        action.orders = []  # applied; keep memory flat for long-lived servers

    # -- exports --------------------------------------------------------------------------

    def create_export(self, params: ExportParameters) -> ExportJob:
        job = ExportJob(
            id=new_export_id(),
            seq=next(self._seq),
            created_at=now_iso(self.clock),
            params=params,
            will_fail=self.faults.take_export_failure(),
        )
        self.exports[job.id] = job
        if self.steps == 0:
            self._finish_export(job)
        return job

    def poll_export(self, job: ExportJob) -> None:
        """Exports don't queue behind imports or each other: each moves on its own polls."""
        if job.status not in ("SCHEDULED", "IN_PROGRESS"):
            return
        job.polls += 1
        if job.polls >= self.steps:
            self._finish_export(job)
        else:
            job.status = "IN_PROGRESS"

    def _finish_export(self, job: ExportJob) -> None:
        if job.will_fail:
            # Undocumented: what ERROR means. We model a generation failure: no file, result null.
            job.status = "ERROR"
            return
        # The file is a snapshot of the orders at the moment the export completes.
        job.csv = render_csv(job.params, list(self.store.orders.values()))
        job.token = new_download_token()
        job.result = {"url": f"{self.download_url()}/v1/exports/{job.id}?token={job.token}"}
        job.status = "DONE"

    def finish_all(self) -> None:
        for action in list(self.imports.values()):
            if action.status != "DONE":
                self._finish_import(action)
        for job in list(self.exports.values()):
            if job.status in ("SCHEDULED", "IN_PROGRESS"):
                self._finish_export(job)
