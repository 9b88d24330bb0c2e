"""Fixtures for the export and reconcile tests: the emulator, storage in tmp_path, commands."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from django_voucherify_orders.conf import get_client


@pytest.fixture
def emulator(voucherify_emulator):
    return voucherify_emulator


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """Django's default (public) storage in tmp_path: no export may land here."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def media(settings, tmp_path, media_root) -> Path:
    """Where stored CSVs land: STORAGES["voucherify_exports"] in tmp_path, beside MEDIA_ROOT."""
    root = tmp_path / "exports"
    settings.STORAGES = {
        **settings.STORAGES,
        "voucherify_exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


@pytest.fixture
def synced_shop(emulator, shop):
    """The shop, with live sync pushing its orders to the emulator."""
    return shop


class Result:
    def __init__(self, stdout: str, stderr: str) -> None:
        self.stdout = stdout
        self.stderr = stderr


def run(command: str, *args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, "--poll-interval", "0", stdout=out, stderr=err)
    return Result(out.getvalue(), err.getvalue())


@pytest.fixture
def export() -> Callable[..., Result]:
    return lambda *args: run("voucherify_export", *args)


@pytest.fixture
def reconcile_cmd() -> Callable[..., Result]:
    return lambda *args: run("voucherify_reconcile", *args)


@pytest.fixture
def remote_order(emulator) -> Callable[..., dict[str, Any]]:
    """Create an order in Voucherify only (not in the shop)."""

    def create(source_id: str, **fields: Any) -> dict[str, Any]:
        if isinstance(fields.get("created_at"), str):
            fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        body = {"source_id": source_id, "status": "PAID", "amount": 1000, **fields}
        return get_client().create_order(body).model_dump()

    return create


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []
