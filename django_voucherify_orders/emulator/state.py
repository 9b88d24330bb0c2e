"""The engine: one lock around the order store and the async jobs.

Everything an endpoint does to state happens inside one `with self.lock` block, so the
HTTP door's worker threads see each request as atomic. Returned views are never mutated
afterwards (records swap in new dicts), so callers may serialise them outside the lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .csvexport import ExportParameters
from .errors import not_found
from .faults import Faults
from .jobs import ExportJob, ImportAction, Jobs
from .orders import sort_records
from .store import OrderStore
from .util import Clock, now_iso, parse_iso

View = dict[str, Any]


class State:
    def __init__(
        self,
        faults: Faults,
        clock: Clock,
        async_steps: int,
        download_url: Callable[[], str],
        import_existing: str,
    ) -> None:
        self.lock = threading.RLock()
        self._faults = faults
        self._clock = clock
        self._async_steps = async_steps
        self._download_url = download_url
        self._import_existing = import_existing
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.store = OrderStore()
            self.jobs = Jobs(
                self.store,
                self._faults,
                self._clock,
                self._async_steps,
                self._download_url,
                self._import_existing,
            )

    # -- orders ---------------------------------------------------------------------------

    def save_order(self, body: dict[str, Any]) -> View:
        with self.lock:
            return self.store.upsert(body, now_iso(self._clock)).view

    def update_order(self, key: str, body: dict[str, Any]) -> View:
        with self.lock:
            record = self.store.find(key)
            if record is None:
                raise not_found("order", key)
            return self.store.update(record, body, now_iso(self._clock)).view

    def get_order(self, key: str) -> View | None:
        with self.lock:
            record = self.store.find(key)
            return record.view if record else None

    def list_orders(self, order: str, limit: int, page: int) -> tuple[list[View], int]:
        with self.lock:
            records = sort_records(list(self.store.orders.values()), order)
        start = (page - 1) * limit
        return [r.view for r in records[start : start + limit]], len(records)

    def orders_snapshot(self) -> list[View]:
        with self.lock:
            views = [r.view for r in sorted(self.store.orders.values(), key=lambda r: r.seq)]
        return copy.deepcopy(views)

    # -- what the project holds already (test set-up) ------------------------------------

    def add_customer(self, fields: dict[str, Any]) -> View:
        with self.lock:
            return self.store.add_customer(**fields)

    def add_product(self, fields: dict[str, Any]) -> View:
        with self.lock:
            return self.store.catalogue.add_product(**fields)

    def add_sku(self, fields: dict[str, Any]) -> View:
        with self.lock:
            return self.store.catalogue.add_sku(**fields)

    # -- imports --------------------------------------------------------------------------

    def create_import(self, orders: list[dict[str, Any]], request_id: str) -> str:
        with self.lock:
            return self.jobs.create_import(orders, request_id).id

    def poll_import(self, action_id: str) -> View:
        with self.lock:
            action = self._action(action_id)
            self.jobs.poll_import(action)
            return action.view()

    def list_imports(self, limit: int, end_date: datetime | None) -> tuple[list[View], bool]:
        """Newest first; list entries carry no `result` [D-aa]."""
        with self.lock:
            actions = sorted(self.jobs.imports.values(), key=lambda a: a.seq, reverse=True)
            if end_date is not None:
                actions = [a for a in actions if _before(a.created_at, end_date)]
            views = [a.view(with_result=False) for a in actions[:limit]]
        return views, len(actions) > limit

    def _action(self, action_id: str) -> ImportAction:
        action = self.jobs.imports.get(action_id)
        if action is None:
            raise not_found("async_action", action_id)
        return action

    # -- exports --------------------------------------------------------------------------

    def create_export(self, params: ExportParameters) -> View:
        with self.lock:
            return self.jobs.create_export(params).view()

    def poll_export(self, export_id: str) -> View:
        with self.lock:
            job = self._export(export_id)
            self.jobs.poll_export(job)
            return job.view()

    def list_exports(self, order: str, limit: int, page: int) -> tuple[list[View], int]:
        with self.lock:
            key_name = order.lstrip("-")
            jobs = sorted(
                self.jobs.exports.values(),
                key=lambda j: (j.status if key_name == "status" else j.created_at, j.seq),
                reverse=order.startswith("-"),
            )
            start = (page - 1) * limit
            return [j.view() for j in jobs[start : start + limit]], len(jobs)

    def delete_export(self, export_id: str) -> None:
        with self.lock:
            self._export(export_id)
            del self.jobs.exports[export_id]

    def download(self, export_id: str, token: str) -> str | None:
        """The CSV when the token is that export's token; None means 401."""
        with self.lock:
            job = self.jobs.exports.get(export_id)
            if job is None or job.token is None or not secrets.compare_digest(job.token, token):
                return None
            return job.csv

    def _export(self, export_id: str) -> ExportJob:
        job = self.jobs.exports.get(export_id)
        if job is None:
            raise not_found("export", export_id)
        return job

    def finish_async(self) -> None:
        with self.lock:
            self.jobs.finish_all()


def _before(timestamp: str, end: datetime) -> bool:
    moment = parse_iso(timestamp)
    return moment is not None and moment < end
