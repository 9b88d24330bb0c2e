"""Shipped migrations are complete, and sync settings are checked at startup."""

from __future__ import annotations

import contextlib
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


@pytest.mark.parametrize(
    ("mapper", "named"),
    [
        ("tests.testapp.voucherify.PlacedOrderMapper", ("date_field", "'date_placed'")),
        ("tests.testapp.voucherify.StageOrderMapper", ("status_field", "'stage'")),
    ],
)
def test_a_mapper_field_the_order_model_lacks_is_reported(mapper, named):
    """Else `check` passes and `voucherify_import --until ...` dies with a FieldError."""
    from django.conf import settings

    with override_settings(VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "MAPPER": mapper}):
        messages = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "vo.E009"]
    assert len(messages) == 1
    assert all(part in messages[0].msg for part in (*named, "shop.Order"))
    assert named[0] in messages[0].hint


def test_a_mapper_field_across_a_relation_passes():
    assert _ids(MAPPER="tests.testapp.voucherify.CustomerCityMapper") == []


PER_PROCESS_CACHES = [
    {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
]


@pytest.mark.parametrize("caches", PER_PROCESS_CACHES)
def test_a_per_process_cache_with_a_real_broker_is_reported(caches):
    """Workers in other processes would not share the rate limiter, the queued markers or
    the health page's figures."""
    from celery import current_app

    with (
        override_settings(CACHES=caches),
        _celery(task_always_eager=False, broker_url="redis://127.0.0.1:6379/0"),
    ):
        messages = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "vo.W004"]
        assert current_app.conf.broker_url.startswith("redis")
    assert len(messages) == 1
    assert caches["default"]["BACKEND"] in messages[0].msg
    assert "rate limit" in messages[0].msg


@pytest.mark.parametrize(
    "celery_conf",
    [{"task_always_eager": True}, {"task_always_eager": False, "broker_url": "memory://"}],
)
def test_a_per_process_cache_without_worker_processes_passes(celery_conf):
    with override_settings(CACHES=PER_PROCESS_CACHES[0]), _celery(**celery_conf):
        assert "vo.W004" not in [m.id for m in run_checks(tags=[Tags.compatibility])]


def test_a_shared_cache_with_a_real_broker_passes():
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": "redis://127.0.0.1:6379/9"}}  # fmt: skip
    with (
        override_settings(CACHES=caches),
        _celery(task_always_eager=False, broker_url="redis://127.0.0.1:6379/0"),
    ):
        assert "vo.W004" not in [m.id for m in run_checks(tags=[Tags.compatibility])]


@contextlib.contextmanager
def _celery(**conf):
    from celery import current_app

    saved = {key: current_app.conf[key] for key in conf}
    current_app.conf.update(conf)
    try:
        yield
    finally:
        current_app.conf.update(saved)
