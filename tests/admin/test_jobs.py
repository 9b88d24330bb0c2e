"""Import and export jobs in the admin: progress, downloads, and start forms that queue a
task instead of running the job in the request."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_voucherify_orders import tasks
from django_voucherify_orders.models import ExportJob, ImportFailure, ImportJob, JobStatus

from .conftest import ADMIN, texts

IMPORTS = f"{ADMIN}/importjob/"
EXPORTS = f"{ADMIN}/exportjob/"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", [IMPORTS, EXPORTS])
def test_job_lists_run_a_fixed_number_of_queries(superuser_client, media, voucherify_emulator, url):
    def add(count: int) -> None:
        for n in range(count):
            ImportJob.objects.create(total=10, imported=n % 10, failed=1, status=JobStatus.RUNNING)
            job = ExportJob.objects.create(status=JobStatus.DONE, row_count=3)
            job.file.save(f"e{job.pk}.csv", ContentFile(b"id\n1\n"))

    add(5)
    five = queries(superuser_client, url)
    add(45)
    assert queries(superuser_client, url) == five
    assert voucherify_emulator.count() == 0


def test_import_progress_and_counts(superuser_client):
    job = ImportJob.objects.create(
        total=40, imported=10, failed=2, status=JobStatus.RUNNING, parameters={"dry_run": True}
    )

    page = superuser_client.get(IMPORTS).content.decode()
    assert (
        '<progress class="vo-progress" max="40" value="12" title="30%"></progress> 12 / 40 (30%)'
        in page
    )
    detail = superuser_client.get(f"{IMPORTS}{job.pk}/change/").content.decode()
    assert "12 / 40 (30%)" in detail
    assert "&quot;dry_run&quot;: true" in detail


def test_the_failures_csv_streams_every_failure(superuser_client):
    job = ImportJob.objects.create(total=3, failed=3, status=JobStatus.DONE_WITH_FAILURES)
    ImportFailure.objects.bulk_create(
        ImportFailure(job=job, source_id=f"A-{n}", order_pk=str(n), stage=stage, reason=reason)
        for n, stage, reason in [
            (1, "local", "amount: bad"),
            (2, "remote", "=cmd|' /C calc'!A0"),
            (3, "remote", 'quote " and, comma'),
        ]
    )
    other = ImportJob.objects.create()
    ImportFailure.objects.create(job=other, source_id="B", stage="local", reason="x")

    response = superuser_client.get(f"{IMPORTS}{job.pk}/failures.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="voucherify-import-{job.pk}-failures.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["source_id", "order_pk", "stage", "reason"],
        ["A-1", "1", "local", "amount: bad"],
        ["A-2", "2", "remote", "'=cmd|' /C calc'!A0"],  # never a live formula in a spreadsheet
        ["A-3", "3", "remote", 'quote " and, comma'],
    ]
    assert (
        f"{IMPORTS}{job.pk}/failures.csv"
        in superuser_client.get(f"{IMPORTS}{job.pk}/change/").content.decode()
    )
    assert superuser_client.get(f"{IMPORTS}999/failures.csv").status_code == 404


def test_starting_an_import_queues_the_task(superuser_client, make_order):
    make_order(status="paid", created_at=datetime(2025, 1, 10, tzinfo=UTC))
    make_order(status="new", created_at=datetime(2025, 1, 11, tzinfo=UTC))
    make_order(status="paid", created_at=datetime(2025, 3, 1, tzinfo=UTC))

    with (
        mock.patch.object(tasks.run_import, "apply_async") as queued,
        mock.patch("django_voucherify_orders.importer.run_import") as ran,
    ):
        response = superuser_client.post(
            f"{IMPORTS}start/",
            {"since": "2025-01-01", "until": "2025-02-01", "statuses": ["paid"], "dry_run": "on"},
        )
        job = ImportJob.objects.get()

    assert response.status_code == 302
    assert response["Location"] == f"{IMPORTS}{job.pk}/change/"
    assert texts(response) == [f"Import #{job.pk} queued: 1 order matches."]
    assert job.status == JobStatus.QUEUED
    assert job.parameters["since"] == "2025-01-01T00:00:00+00:00"
    assert job.parameters["until"] == "2025-02-01T00:00:00+00:00"
    assert job.parameters["statuses"] == ["paid"]
    assert job.parameters["dry_run"] is True
    assert job.parameters["skip_synced"] is False
    ran.assert_not_called()
    queued.assert_not_called()  # the test's transaction never commits


@pytest.mark.django_db(transaction=True)
def test_the_import_task_is_sent_after_commit(superuser_client):
    with mock.patch.object(tasks.run_import, "apply_async") as queued:
        superuser_client.post(f"{IMPORTS}start/", {"skip_synced": "on"})

    job = ImportJob.objects.get()
    queued.assert_called_once_with(args=[job.pk], queue=None)
    assert job.parameters["skip_synced"] is True


def test_the_import_form_checks_dates(superuser_client):
    response = superuser_client.post(
        f"{IMPORTS}start/", {"since": "2025-02-01", "until": "2025-01-01"}
    )

    assert response.status_code == 200
    assert "Must be after the start date." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_the_import_form_offers_the_shops_statuses(superuser_client):
    page = superuser_client.get(f"{IMPORTS}start/").content.decode()
    for status in ("new", "paid", "shipped", "cancelled"):
        assert f'value="{status}"' in page


@pytest.mark.django_db(transaction=True)
def test_resuming_an_interrupted_import(superuser_client):
    interrupted = ImportJob.objects.create(status=JobStatus.INTERRUPTED, last_pk="40")
    done = ImportJob.objects.create(status=JobStatus.DONE)

    with mock.patch.object(tasks.run_import, "apply_async") as queued:
        response = superuser_client.post(
            IMPORTS, {"action": "resume_imports", "_selected_action": [interrupted.pk, done.pk]}
        )

    assert response.status_code == 302
    queued.assert_called_once_with(args=[interrupted.pk], queue=None)
    interrupted.refresh_from_db()
    assert interrupted.status == JobStatus.QUEUED


def test_starting_an_export_queues_the_task(superuser_client):
    with mock.patch("django_voucherify_orders.exporter.run_export") as ran:
        response = superuser_client.post(
            f"{EXPORTS}start/",
            {
                "columns": ["id", "source_id", "status", "amount"],
                "metadata": "channel",
                "order": "-created_at",
                "filters": "status=PAID,FULFILLED\ncreated_at>2024-01-01",
                "junction": "and",
            },
        )

    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{EXPORTS}{job.pk}/change/"
    assert job.status == JobStatus.QUEUED
    assert job.parameters == {
        "fields": ["id", "source_id", "status", "amount", "metadata.channel"],
        "order": "-created_at",
        "filters": {
            "junction": "and",
            "status": {"conditions": {"$in": ["PAID", "FULFILLED"]}},
            "created_at": {"conditions": {"$after": "2024-01-01T00:00:00.000Z"}},
        },
    }
    ran.assert_not_called()


@pytest.mark.django_db(transaction=True)
def test_the_export_task_is_sent_after_commit(superuser_client):
    with mock.patch.object(tasks.run_export, "apply_async") as queued:
        superuser_client.post(f"{EXPORTS}start/", {"junction": "and"})

    job = ExportJob.objects.get()
    queued.assert_called_once_with(args=[job.pk], queue=None)
    assert job.parameters == {}


def test_a_bad_export_filter_is_a_form_error(superuser_client):
    response = superuser_client.post(
        f"{EXPORTS}start/", {"filters": "status>PAID", "junction": "and"}
    )

    assert response.status_code == 200
    assert "compares numbers and dates" in response.content.decode()
    assert not ExportJob.objects.exists()


def test_the_export_csv_downloads(superuser_client, media):
    job = ExportJob.objects.create(status=JobStatus.DONE, row_count=1)
    job.file.save("orders-1-exp_x.csv", ContentFile(b"id,source_id\nord_1,1\n"))
    empty = ExportJob.objects.create(status=JobStatus.FAILED, error="boom")

    response = superuser_client.get(f"{EXPORTS}{job.pk}/download/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"id,source_id\nord_1,1\n"
    assert response["Content-Disposition"] == 'attachment; filename="orders-1-exp_x.csv"'
    assert superuser_client.get(f"{EXPORTS}{empty.pk}/download/").status_code == 404
    assert f"{EXPORTS}{job.pk}/download/" in superuser_client.get(EXPORTS).content.decode()


def test_jobs_are_read_only(superuser_client):
    job = ImportJob.objects.create()

    assert superuser_client.get(f"{IMPORTS}add/").status_code == 403
    assert superuser_client.get(f"{EXPORTS}add/").status_code == 403
    assert superuser_client.post(f"{IMPORTS}{job.pk}/change/", {"total": 5}).status_code == 403


def test_starting_jobs_needs_the_run_permissions(staff_client, media):
    viewer = staff_client("view_importjob", "view_exportjob")
    job = ImportJob.objects.create(status=JobStatus.INTERRUPTED)
    export = ExportJob.objects.create(status=JobStatus.DONE)
    export.file.save("x.csv", ContentFile(b"id\n"))

    assert viewer.get(f"{IMPORTS}start/").status_code == 403
    assert viewer.post(f"{IMPORTS}start/", {}).status_code == 403
    assert viewer.get(f"{EXPORTS}start/").status_code == 403
    assert "Start an import" not in viewer.get(IMPORTS).content.decode()
    assert "Start an export" not in viewer.get(EXPORTS).content.decode()
    assert "resume_imports" not in viewer.get(IMPORTS).content.decode()
    # Viewing and downloading need only the view permissions.
    assert viewer.get(f"{IMPORTS}{job.pk}/failures.csv").status_code == 200
    assert viewer.get(f"{EXPORTS}{export.pk}/download/").status_code == 200
    assert not ImportJob.objects.exclude(pk=job.pk).exists()

    nobody = staff_client("view_ordersync")
    assert nobody.get(f"{IMPORTS}{job.pk}/failures.csv").status_code == 403
    assert nobody.get(f"{EXPORTS}{export.pk}/download/").status_code == 403

    runner = staff_client("view_importjob", "run_importjob", "view_exportjob", "run_exportjob")
    assert runner.get(f"{IMPORTS}start/").status_code == 200
    assert runner.get(f"{EXPORTS}start/").status_code == 200
    assert "Start an import" in runner.get(IMPORTS).content.decode()
