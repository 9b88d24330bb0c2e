"""Suite-wide fixtures. The emulator fixtures come from the package's pytest plugin."""

from __future__ import annotations

import pytest
from celery import Celery

# A Celery app configured from tests.settings (CELERY_TASK_ALWAYS_EAGER: no broker).
celery_app = Celery("tests")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.set_default()
celery_app.set_current()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The queued-push markers and rate-limit counters live in the cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
