"""example_project/settings.py: everything comes from the environment."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from django_voucherify_orders.conf import check_settings

PROJECT = Path(__file__).resolve().parents[2] / "example_project"
SETTINGS = PROJECT / "example_project" / "settings.py"
ENV_NAMES = (
    "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "VOUCHERIFY_API_URL", "VOUCHERIFY_APP_ID",
    "VOUCHERIFY_SECRET_KEY", "VOUCHERIFY_AUTO_SYNC", "VOUCHERIFY_RATE_LIMIT", "DJANGO_DEBUG",
)  # fmt: skip


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch):
    """Execute settings.py under the given environment (without importing the package)."""

    def run(**env: str) -> dict[str, Any]:
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return run


def test_defaults_need_nothing_running(load) -> None:
    settings = load()
    assert settings["DATABASES"]["default"] == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": PROJECT / "db.sqlite3",
    }
    assert settings["CELERY_TASK_ALWAYS_EAGER"] is True
    assert settings["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert settings["VOUCHERIFY_ORDERS"] == {
        "APP_ID": "emulator-app-id",
        "SECRET_KEY": "emulator-secret-key",
        "API_URL": "http://127.0.0.1:8787",
        "ORDER_MODEL": "shop.Order",
        "MAPPER": "shop.voucherify.ShopOrderMapper",
        "TRIGGERS": {"shop.OrderItem": "order"},
        "AUTO_SYNC": True,
        "RATE_LIMIT": None,
    }
    assert check_settings(settings["VOUCHERIFY_ORDERS"]) == []
    assert settings["LOGGING"]["loggers"]["django_voucherify_orders"]["level"] == "INFO"


def test_environment_overrides(load) -> None:
    settings = load(
        DATABASE_URL="postgres://shop:s%40cret@db.internal:6543/orders",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        VOUCHERIFY_API_URL="https://us1.api.voucherify.io",
        VOUCHERIFY_APP_ID="real-app",
        VOUCHERIFY_SECRET_KEY="real-secret",
        VOUCHERIFY_AUTO_SYNC="0",
        VOUCHERIFY_RATE_LIMIT="100/m",
    )
    assert settings["DATABASES"]["default"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "orders",
        "USER": "shop",
        "PASSWORD": "s@cret",
        "HOST": "db.internal",
        "PORT": "6543",
    }
    assert settings["CELERY_TASK_ALWAYS_EAGER"] is False
    assert settings["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    config = settings["VOUCHERIFY_ORDERS"]
    assert config["AUTO_SYNC"] is False
    assert config["RATE_LIMIT"] == "100/m"
    assert (config["APP_ID"], config["SECRET_KEY"]) == ("real-app", "real-secret")
    assert config["API_URL"] == "https://us1.api.voucherify.io"
    assert check_settings(config) == []


@pytest.fixture
def parse(load):
    return load()["parse_database_url"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://user@127.0.0.1:5432/test",
            {"NAME": "test", "USER": "user", "PASSWORD": "", "HOST": "127.0.0.1", "PORT": "5432"},
        ),
        (
            "postgresql://app:pw@localhost/shop",
            {"NAME": "shop", "USER": "app", "PASSWORD": "pw", "HOST": "localhost", "PORT": ""},
        ),
    ],
)
def test_postgres_urls(parse, url: str, expected: dict[str, str]) -> None:
    assert parse(url) == {"ENGINE": "django.db.backends.postgresql", **expected}


def test_sqlite_urls(parse) -> None:
    assert parse("sqlite:////tmp/shop.sqlite3")["NAME"] == Path("/tmp/shop.sqlite3")
    assert parse("sqlite:///shop.sqlite3")["NAME"] == PROJECT / "shop.sqlite3"
    assert parse("sqlite://:memory:")["NAME"] == ":memory:"
    assert parse("sqlite://")["NAME"] == ":memory:"


def test_bad_database_urls_are_refused_without_the_password(parse) -> None:
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme 'mysql'") as caught:
        parse("mysql://root:hunter2@localhost/shop")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        parse("postgres://user@127.0.0.1:5432/")


def test_auto_sync_flag_must_be_a_flag(load) -> None:
    assert load(VOUCHERIFY_AUTO_SYNC="1")["VOUCHERIFY_ORDERS"]["AUTO_SYNC"] is True
    with pytest.raises(ImproperlyConfigured, match="VOUCHERIFY_AUTO_SYNC"):
        load(VOUCHERIFY_AUTO_SYNC="maybe")


def test_cache_is_redis_only_when_asked_and_installed(load, monkeypatch) -> None:
    settings = load(CACHE_URL="redis://127.0.0.1:6379/1")
    cache_config = settings["cache_config"]
    assert cache_config(None)["BACKEND"].endswith("LocMemCache")

    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "redis" else real_find_spec(name, *a),
    )
    redis = load(CACHE_URL="redis://127.0.0.1:6379/1")["CACHES"]["default"]
    assert redis == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    fallback = load(CACHE_URL="redis://127.0.0.1:6379/1")["CACHES"]["default"]
    assert fallback["BACKEND"].endswith("LocMemCache")


def test_no_missing_shop_migration(db) -> None:
    # ShopConfig pins BigAutoField: tests.settings' AutoField default must not matter.
    call_command("makemigrations", "shop", check=True, dry_run=True, verbosity=0)


def test_project_boots_with_its_own_settings_and_celery_app(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ENV_NAMES and key != "DJANGO_SETTINGS_MODULE"
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'boot.sqlite3'}"
    # The checkout's package, as manage.py arranges (and as `pip install -e .` would).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT.parent), env.get("PYTHONPATH")]))
    script = (
        "import django, example_project\n"
        "from django.core.management import call_command\n"
        "django.setup()\n"
        "call_command('check', fail_level='WARNING')\n"
        "conf = example_project.celery_app.conf\n"
        "print(conf.task_always_eager, conf.broker_url, example_project.celery_app.main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["True", "memory://", "example_project"]
