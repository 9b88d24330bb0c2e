"""Export CSVs hold every order's customer and amounts: kept private, pruned, deleted with
their job, and served to staff only through the admin's permission-checked view."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from django_voucherify_orders import export_storage
from django_voucherify_orders.models import ExportJob, JobStatus

from .conftest import stored_files

pytestmark = pytest.mark.django_db(transaction=True)

EXPORTS = "/admin/voucherify_orders/exportjob/"


@pytest.fixture
def three(synced_shop):
    return [synced_shop.order(status="paid") for _ in range(3)]


@pytest.fixture
def default_location(monkeypatch, tmp_path) -> Path:
    """The built-in private directory (no STORAGES entry), moved into tmp_path."""
    location = tmp_path / "private"
    monkeypatch.setattr(export_storage, "DEFAULT_LOCATION", str(location))
    return location


def staff(*codenames: str) -> Client:
    user = User.objects.create_user(f"staff-{'-'.join(codenames)}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_out_of_the_box_no_export_lands_under_media_root(
    export, three, media_root, default_location
):
    export()

    job = ExportJob.objects.get()
    assert stored_files(media_root) == []  # the public media storage holds nothing
    stored = default_location / job.file.name
    assert stored.read_bytes().count(b"\n") == 4
    assert stored.stat().st_mode & 0o077 == 0  # the app's user only
    with pytest.raises(NotImplementedError, match="no URL"):
        job.file.url  # noqa: B018 - nothing may link to it


def test_staff_with_permission_download_through_the_admin_only(export, three, media):
    export()
    job = ExportJob.objects.get()
    url = f"{EXPORTS}{job.pk}/download/"

    response = staff("view_exportjob").get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (media / job.file.name).read_bytes()
    assert staff("view_ordersync").get(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the login page


def test_the_named_storage_is_used(export, three, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "private_csv": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "named")},
        },
    }
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_STORAGE": "private_csv"}

    export()

    job = ExportJob.objects.get()
    assert (tmp_path / "named" / job.file.name).is_file()


def test_deleting_a_job_deletes_its_file(export, three, media):
    for _ in range(3):
        export()
    one, two, three_ = ExportJob.objects.order_by("pk")
    assert len(stored_files(media)) == 3

    one.delete()
    assert len(stored_files(media)) == 2
    ExportJob.objects.filter(pk=two.pk).delete()
    assert stored_files(media) == [media / three_.file.name]


def test_the_admin_bulk_delete_deletes_the_files(export, three, media):
    export()
    export()
    client = staff("view_exportjob", "delete_exportjob")
    pks = [str(pk) for pk in ExportJob.objects.values_list("pk", flat=True)]

    response = client.post(
        EXPORTS, {"action": "delete_selected", "_selected_action": pks, "post": "yes"}
    )

    assert response.status_code == 302
    assert not ExportJob.objects.exists()
    assert stored_files(media) == []


def test_files_past_the_retention_are_pruned_by_the_next_export_and_by_prune(
    export, three, media, settings
):
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_RETENTION_DAYS": 3}
    export()
    export()
    old, recent = ExportJob.objects.order_by("pk")
    ExportJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=4))
    ExportJob.objects.filter(pk=recent.pk).update(finished_at=timezone.now() - timedelta(days=2))

    export()  # prunes after it has run

    assert not (media / old.file.name).exists()
    old.refresh_from_db()
    assert old.file.name == "" and old.row_count == 3  # the job stays, as history
    assert (media / recent.file.name).exists()

    ExportJob.objects.filter(pk=recent.pk).update(finished_at=timezone.now() - timedelta(days=5))
    result = export("--prune")
    assert result.stdout.strip() == "Pruned 1 export files past EXPORT_RETENTION_DAYS."
    assert len(stored_files(media)) == 1  # only the newest export's
    assert ExportJob.objects.count() == 3  # --prune exports nothing


def test_no_retention_keeps_files(export, three, media, settings):
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_RETENTION_DAYS": None}
    export()
    ExportJob.objects.update(finished_at=timezone.now() - timedelta(days=400))

    assert export("--prune").stdout.startswith("Pruned 0 ")
    assert len(stored_files(media)) == 1


def test_a_rolled_back_deletion_keeps_the_file(media, emulator):
    from django.db import transaction

    job = ExportJob.objects.create(status=JobStatus.DONE)
    job.file.save("kept.csv", ContentFile(b"id\n"))
    with pytest.raises(RuntimeError), transaction.atomic():
        job.delete()
        raise RuntimeError("rolled back")

    assert (media / job.file.name).exists()


def warnings_about_storage() -> list[str]:
    return [m.id for m in run_checks() if m.id in ("vo.W005", "vo.E010")]


def test_checks_warn_about_a_public_export_storage(settings, tmp_path, default_location):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    assert warnings_about_storage() == []  # the default is private

    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_STORAGE": "default"}
    assert warnings_about_storage() == ["vo.W005"]

    settings.STORAGES = {
        **settings.STORAGES,
        "voucherify_exports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": os.path.join(settings.MEDIA_ROOT, "private")},
        },
    }
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_STORAGE": None}
    assert warnings_about_storage() == ["vo.W005"]  # under MEDIA_ROOT is public too

    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "EXPORT_STORAGE": "typo"}
    assert warnings_about_storage() == ["vo.E010"]
