"""Shipped migrations are complete, and sync settings are checked at startup."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.django_db
def test_no_migration_is_missing():
    out = StringIO()
    call_command("makemigrations", "voucherify_orders", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_no_migration_is_missing_when_the_host_uses_big_auto_field(tmp_path):
    """A host project's DEFAULT_AUTO_FIELD must not make our migrations stale."""
    (tmp_path / "big_settings.py").write_text(
        "from tests.settings import *\nDEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "django", "makemigrations", "voucherify_orders", "--check",
         "--dry-run", "--settings", "big_settings"],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def _ids(**changes) -> list[str]:
    from django.conf import settings

    with override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, **changes}):
        return [
            m.id for m in run_checks(tags=[Tags.compatibility]) if m.id and m.id.startswith("vo.")
        ]


def test_the_test_settings_pass():
    assert _ids() == []


@pytest.mark.parametrize(
    ("changes", "check_id"),
    [
        ({"ORDER_MODEL": "shop.Invoice"}, "vo.E005"),
        ({"MAPPER": "shop.voucherify.NoSuchMapper"}, "vo.E006"),
        ({"MAPPER": "shop.models.Order"}, "vo.E006"),
        ({"TRIGGERS": {"shop.Refund": "order"}}, "vo.E007"),
        ({"TRIGGERS": {"shop.OrderItem": "orders"}}, "vo.E007"),
        ({"TRIGGERS": {"shop.OrderItem": "product"}}, "vo.E007"),
        ({"ORDER_MODEL": "shop.Order", "MAPPER": None}, "vo.E002"),
        ({"RATE_LIMIT": "lots"}, "vo.E003"),
    ],
)
def test_bad_sync_settings_are_reported(changes, check_id):
    assert check_id in _ids(**changes)
