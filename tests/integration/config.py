"""The integration settings, from environment variables, in one place.

``tests/integration/settings.py`` (the worker processes' DJANGO_SETTINGS_MODULE) applies
them to ``tests.settings``; the test process applies the same ones with
``override_settings``, so savers and workers agree on the broker, cache and queue.

VO_IT_REDIS_URL        redis://127.0.0.1:6379 (no database number)
VO_IT_BROKER_DB        Redis database of the Celery broker (default 14)
VO_IT_CACHE_DB         Redis database of the Django cache (default 15)
VO_IT_PREFIX           key prefix unique to the test run (broker and cache keys)
VO_IT_QUEUE            the Celery queue the app pushes on (VOUCHERIFY_ORDERS CELERY_QUEUE)
VO_IT_API_URL          the emulator's HTTP door
VO_IT_ORDERS           JSON object merged into VOUCHERIFY_ORDERS (per-test knobs)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REDIS_URL = "redis://127.0.0.1:6379"
BROKER_DB = 14
CACHE_DB = 15

# The knobs the integration tests start from; a test changes them through VO_IT_ORDERS.
ORDERS_DEFAULTS: dict[str, Any] = {
    "PUSH_DELAY": 0.2,
    "SWEEP_AFTER": 1.0,
    "LEASE_SECONDS": 15,
    "CONNECT_TIMEOUT": 2,
    "READ_TIMEOUT": 5,
    "RETRY_BACKOFF_BASE": 0.05,
    "RETRY_BACKOFF_MAX": 0.5,
    "MAX_ATTEMPTS": 8,
}


def settings_from_env(env: Mapping[str, str], base_orders: Mapping[str, Any]) -> dict[str, Any]:
    """Django settings (upper-case names) for an integration run described by ``env``."""
    redis_url = env.get("VO_IT_REDIS_URL", REDIS_URL).rstrip("/")
    prefix = env.get("VO_IT_PREFIX", "vo-it")
    broker_db = int(env.get("VO_IT_BROKER_DB", BROKER_DB))
    cache_db = int(env.get("VO_IT_CACHE_DB", CACHE_DB))
    orders = {
        **base_orders,
        **ORDERS_DEFAULTS,
        "API_URL": env.get("VO_IT_API_URL", "http://127.0.0.1:8787"),
        "CELERY_QUEUE": env.get("VO_IT_QUEUE", f"{prefix}-voucherify"),
        **json.loads(env.get("VO_IT_ORDERS") or "{}"),
    }
    return {
        "CACHES": {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"{redis_url}/{cache_db}",
                "KEY_PREFIX": prefix,
            }
        },
        "CELERY_BROKER_URL": f"{redis_url}/{broker_db}",
        "CELERY_BROKER_TRANSPORT_OPTIONS": broker_transport_options(prefix),
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_TASK_IGNORE_RESULT": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        "VOUCHERIFY_ORDERS": orders,
    }


def broker_transport_options(prefix: str) -> dict[str, Any]:
    # Every broker key (queues, unacked messages, bindings) lives under the run's prefix,
    # so parallel runs on one Redis never see each other's messages.
    return {"global_keyprefix": f"{prefix}:", "visibility_timeout": 3600}


def celery_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The CELERY_* Django settings as a Celery app's lower-case configuration."""
    return {
        name.removeprefix("CELERY_").lower(): value
        for name, value in settings.items()
        if name.startswith("CELERY_")
    }
