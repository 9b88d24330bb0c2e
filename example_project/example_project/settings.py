"""Settings of the example shop, read from environment variables.

DATABASE_URL           sqlite:///path/to/db.sqlite3 (default: example_project/db.sqlite3)
                       or postgres://user:password@127.0.0.1:5432/name
CELERY_BROKER_URL      e.g. redis://127.0.0.1:6379/0; unset: tasks run in-process, eagerly
CACHE_URL              e.g. redis://127.0.0.1:6379/1; unset: local-memory cache
VOUCHERIFY_API_URL     default http://127.0.0.1:8787 (python -m django_voucherify_orders.emulator)
VOUCHERIFY_APP_ID      default the emulator's "emulator-app-id"
VOUCHERIFY_SECRET_KEY  default the emulator's "emulator-secret-key"
VOUCHERIFY_AUTO_SYNC   "1" (default) or "0"
VOUCHERIFY_RATE_LIMIT  e.g. "100/m"; default unset
DJANGO_SECRET_KEY, DJANGO_DEBUG ("1"/"0", default 1), DJANGO_ALLOWED_HOSTS (comma-separated)
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_flag(name: str, default: bool) -> bool:
    """``"1"``/``"0"`` (also true/false, yes/no, on/off) from the environment."""
    value = os.environ.get(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ImproperlyConfigured(f'{name}={value!r}: use "1" or "0"')


def parse_database_url(url: str) -> dict[str, Any]:
    """A ``DATABASES`` entry from a URL, without a dj-database-url dependency.

    ``sqlite:///relative.sqlite3``, ``sqlite:////absolute/path.sqlite3``, ``sqlite://:memory:``,
    ``postgres://user:password@host:5432/name`` (``postgresql://`` too).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc == ":memory:" or parts.path in ("", "/", "/:memory:"):
            name: str | Path = ":memory:"
        else:
            # sqlite:///db.sqlite3 is relative to example_project/, sqlite:////tmp/x absolute.
            path = Path(unquote(parts.path[1:]))
            name = path if path.is_absolute() else BASE_DIR / path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if scheme in ("postgres", "postgresql", "pgsql"):
        config: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
        if not config["NAME"]:
            raise ImproperlyConfigured(f"DATABASE_URL {_redact(url)!r} names no database")
        return config
    raise ImproperlyConfigured(
        f"DATABASE_URL {_redact(url)!r}: unsupported scheme {parts.scheme!r} "
        "(use sqlite:/// or postgres://)"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def cache_config(url: str | None) -> dict[str, Any]:
    """Redis when ``url`` is set and the ``redis`` package is installed, else local memory."""
    if url and find_spec("redis") is not None:
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "example-shop"}


# --- Django -----------------------------------------------------------------------------

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-shop-only-for-local-development"
)
DEBUG = env_flag("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_voucherify_orders",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": cache_config(os.environ.get("CACHE_URL"))}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# --- Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or None
# No broker: tasks run in this process right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_TASK_ALWAYS_EAGER:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep a worker's database connection across tasks (Celery's Django fix-up closes it after
# each task otherwise: a new PostgreSQL connection per push).
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = TIME_ZONE

# --- Voucherify ---------------------------------------------------------------------------

VOUCHERIFY_ORDERS = {
    "APP_ID": os.environ.get("VOUCHERIFY_APP_ID", "emulator-app-id"),
    "SECRET_KEY": os.environ.get("VOUCHERIFY_SECRET_KEY", "emulator-secret-key"),
    "API_URL": os.environ.get("VOUCHERIFY_API_URL", "http://127.0.0.1:8787"),
    "ORDER_MODEL": "shop.Order",
    "MAPPER": "shop.voucherify.ShopOrderMapper",
    "TRIGGERS": {"shop.OrderItem": "order"},
    "AUTO_SYNC": env_flag("VOUCHERIFY_AUTO_SYNC", True),
    "RATE_LIMIT": os.environ.get("VOUCHERIFY_RATE_LIMIT") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "loggers": {
        "django_voucherify_orders": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
        },
    },
}
