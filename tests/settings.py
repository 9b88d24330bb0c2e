"""Settings for the test suite. ``DATABASE_URL=postgres://...`` runs it on PostgreSQL."""

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

# The example shop is the order model the tests sync, as a user's project would.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "example_project"))

SECRET_KEY = "tests-only-django-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",  # admin pages styled in the browser tests (live_server)
    "django_voucherify_orders",
    "shop",
    "tests.testapp",  # proxies and children of the shop's models (tests/sync/test_receivers.py)
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database(url: str) -> dict:
    if not url.startswith(("postgres://", "postgresql://")):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "test",
        "USER": unquote(parts.username or "postgres"),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "127.0.0.1",
        "PORT": str(parts.port or 5432),
    }


DATABASES = {"default": _database(os.environ.get("DATABASE_URL", ""))}
# A second database for the router tests (tests/sync/test_databases.py); pytest-django
# creates it only for the tests that ask for it (databases=[..., "other"]).
DATABASES["other"] = {**DATABASES["default"], "NAME": f"{DATABASES['default']['NAME']}_other"}
if DATABASES["other"]["ENGINE"].endswith("sqlite3"):
    DATABASES["other"]["NAME"] = ":memory:"

# The credentials the emulator fixtures expect (see the voucherify_emulator fixture).
VOUCHERIFY_ORDERS = {
    "APP_ID": "test-app-id",
    "SECRET_KEY": "test-secret-key",
    "API_URL": "https://api.voucherify.io",
    "ORDER_MODEL": "shop.Order",
    "MAPPER": "shop.voucherify.ShopOrderMapper",
    "TRIGGERS": {"shop.OrderItem": "order"},
    # Tests must not sleep: retries back off by at most a few milliseconds.
    "HTTP_BACKOFF_BASE": 0.001,
    "HTTP_BACKOFF_MAX": 0.005,
    "RETRY_BACKOFF_BASE": 0.001,
    "RETRY_BACKOFF_MAX": 0.005,
    "PUSH_DELAY": 0,
}

# No broker in unit tests: tasks run in-process when enqueued after commit.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
