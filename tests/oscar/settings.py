"""A test project with django-oscar's apps, synced by contrib.oscar's mapper alone.

Run as its own pass: ``pytest tests/oscar --ds=tests.oscar.settings`` (``make test`` does).
"""

from oscar import INSTALLED_APPS as OSCAR_APPS
from oscar.defaults import *  # noqa: F403 - Oscar's settings, as its docs tell a shop to

from django_voucherify_orders.contrib import oscar
from tests.settings import CACHES, CELERY_BROKER_URL, CELERY_TASK_ALWAYS_EAGER, DATABASES

SECRET_KEY = "tests-only-django-secret"
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.oscar.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SITE_ID = 1
# The sync panel's app goes before Oscar's, so its order_detail.html is found first.
INSTALLED_APPS = ["django_voucherify_orders.contrib.oscar", *OSCAR_APPS, "django_voucherify_orders"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.core.context_processors.metadata",
            ]
        },
    }
]
STATIC_URL = "/static/"
HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}
DATABASES = {"default": DATABASES["default"]}

# Oscar's sandbox pipeline, as a new shop copies it from Oscar's docs.
OSCAR_INITIAL_ORDER_STATUS = "Pending"
OSCAR_INITIAL_LINE_STATUS = "Pending"
OSCAR_ORDER_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Cancelled": (),
    "Complete": (),
}
OSCAR_LINE_STATUS_PIPELINE = {
    "Pending": ("Being processed", "Cancelled"),
    "Being processed": ("Complete", "Cancelled"),
    "Cancelled": (),
    "Complete": (),
}

# What docs/oscar.md tells a shop to write (plus the emulator's credentials and no waits).
VOUCHERIFY_ORDERS = {
    "APP_ID": "test-app-id",
    "SECRET_KEY": "test-secret-key",
    "ORDER_MODEL": "order.Order",
    "MAPPER": "django_voucherify_orders.contrib.oscar.OscarOrderMapper",
    "TRIGGERS": oscar.TRIGGERS,
    "RETRY_BACKOFF_BASE": 0.001,
    "RETRY_BACKOFF_MAX": 0.005,
    "PUSH_DELAY": 0,
}
CELERY_TASK_ALWAYS_EAGER = CELERY_TASK_ALWAYS_EAGER
CELERY_BROKER_URL = CELERY_BROKER_URL
CACHES = CACHES
