"""The integration tests' Celery app, configured from Django settings:

    DJANGO_SETTINGS_MODULE=tests.integration.settings DATABASE_URL=postgres://... \
        celery -A tests.integration.celery_app worker -P prefork --concurrency 1 -Q QUEUE
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.settings")

app = Celery("vo_integration")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_voucherify_orders"])
