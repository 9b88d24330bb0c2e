"""Where export CSVs are kept: a private storage, never the public media one, and pruned.

``VOUCHERIFY_ORDERS["EXPORT_STORAGE"]`` names a key of Django's ``STORAGES``. When it is
not set, ``STORAGES["voucherify_exports"]`` is used if the project defines it, and
otherwise a private directory on this machine (:data:`DEFAULT_LOCATION`: not under
``MEDIA_ROOT``, owner-only permissions). No file has a URL. The admin serves the files through a
permission-checked view, never through a storage URL.

The storage is looked up on every call (:class:`ExportStorage`), so settings read at call
time apply here too, and migrations record no path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import transaction
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from .conf import get_settings

__all__ = [
    "DEFAULT_ALIAS",
    "DEFAULT_LOCATION",
    "ExportStorage",
    "configured_storage",
    "delete_file_on_commit",
    "prune_exports",
]

logger = logging.getLogger("django_voucherify_orders.exports")

DEFAULT_ALIAS = "voucherify_exports"
# A directory of the server's own, readable by the app's user only. A project whose web
# and worker processes do not share /tmp (two hosts, systemd PrivateTmp) names a shared
# storage instead: STORAGES["voucherify_exports"].
DEFAULT_LOCATION = os.path.join(tempfile.gettempdir(), "django-voucherify-orders-exports")


def _private_default() -> Storage:
    return FileSystemStorage(
        location=DEFAULT_LOCATION,
        file_permissions_mode=0o600,
        directory_permissions_mode=0o700,
    )


def storage_alias() -> str | None:
    """The ``STORAGES`` key in use, or None for the built-in private directory."""
    alias = get_settings().export_storage
    if alias is not None:
        return alias
    return DEFAULT_ALIAS if DEFAULT_ALIAS in settings.STORAGES else None


def configured_storage() -> Storage:
    alias = storage_alias()
    return _private_default() if alias is None else storages[alias]


@deconstructible(path="django_voucherify_orders.export_storage.ExportStorage")
class ExportStorage(Storage):
    """ExportJob.file's storage: every call goes to :func:`configured_storage`."""

    def _target(self) -> Storage:
        return configured_storage()

    def open(self, name: str, mode: str = "rb") -> Any:
        return self._target().open(name, mode)

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        return self._target().save(name, content, max_length=max_length)

    def delete(self, name: str) -> None:
        self._target().delete(name)

    def exists(self, name: str) -> bool:
        return self._target().exists(name)

    def size(self, name: str) -> int:
        return self._target().size(name)

    def path(self, name: str) -> str:
        return self._target().path(name)

    def url(self, name: str | None) -> str:
        # No link may point at a CSV: the admin serves it after checking permissions.
        raise NotImplementedError("export files have no URL; the admin's download view serves them")

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        return self._target().listdir(path)

    def generate_filename(self, filename: str | os.PathLike[str]) -> str:
        return self._target().generate_filename(filename)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return self._target().get_available_name(name, max_length=max_length)

    def get_modified_time(self, name: str) -> datetime:
        return self._target().get_modified_time(name)

    def _open(self, name: str, mode: str = "rb") -> IO[Any]:  # pragma: no cover - open() wins
        return self._target().open(name, mode)


def delete_file_on_commit(name: str | None) -> None:
    """Remove a stored CSV once the deletion of its job commits (a rollback keeps both)."""
    if not name:
        return

    def delete() -> None:
        try:
            configured_storage().delete(name)
        except Exception:  # storage trouble must not break the deletion that triggered it
            logger.warning("could not delete the export file %s", name, exc_info=True)

    transaction.on_commit(delete)


def prune_exports(*, now: datetime | None = None) -> int:
    """Delete the CSVs of jobs finished more than ``EXPORT_RETENTION_DAYS`` ago; the job
    rows stay (their counts and errors are history). Returns how many files went."""
    from .models import ExportJob

    days = get_settings().export_retention_days
    if days is None:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = ExportJob.objects.filter(finished_at__lt=cutoff).exclude(file="")
    pruned = 0
    for pk, name in expired.values_list("pk", "file").iterator(chunk_size=500):
        with contextlib.suppress(FileNotFoundError):
            configured_storage().delete(name)
        pruned += ExportJob.objects.filter(pk=pk, file=name).update(file="")
    return pruned


def is_public(storage_alias_name: str | None) -> str:
    """Why the named storage looks public ("" when it does not): the default storage,
    a URL of its own, or a directory under MEDIA_ROOT."""
    if storage_alias_name == "default":
        return 'it is STORAGES["default"], the media storage'
    storage = configured_storage()
    if isinstance(storage, FileSystemStorage):
        media = settings.MEDIA_ROOT
        if media:
            location = Path(storage.location).resolve()
            root = Path(media).resolve()
            if location == root or root in location.parents:
                return f"its directory {location} is under MEDIA_ROOT ({root})"
    return ""
