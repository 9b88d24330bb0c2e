"""The outbox and sync state of each order, and the log of every HTTP attempt."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from .export_storage import ExportStorage, delete_file_on_commit


class SyncState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SYNCED = "synced", _("Synced")
    FAILED = "failed", _("Failed")
    # A before_push receiver cancelled the push of this version.
    SKIPPED = "skipped", _("Skipped")
    # The local order is gone. Voucherify has no DELETE for orders, so the remote one stays.
    DELETED = "deleted", _("Deleted locally")


#: The error fields of an OrderSync row with no error (a success, a new order's row).
NO_ERROR: dict[str, Any] = {
    "last_error_status": None,
    "last_error_key": "",
    "last_error_message": "",
    "last_error_details": "",
    "last_error_request_id": "",
}


class OrderSync(models.Model):
    """One row per synced local order: the outbox entry and what Voucherify holds.

    ``version`` is bumped in the same transaction as every change to the order;
    ``pushed_version`` is the version the last successful push read. The row is
    dirty while ``version > pushed_version``.
    """

    # The local order's primary key, as text: it keys the row, so marking an order
    # changed needs no lookup, and Celery tasks carry just this value.
    order_pk = models.CharField(_("local order key"), max_length=255, primary_key=True)
    # Filled in on the first push when a related model's save created the row.
    source_id = models.CharField(_("source id"), max_length=255, unique=True, null=True)
    voucherify_id = models.CharField(_("Voucherify id"), max_length=64, blank=True, default="")
    state = models.CharField(
        _("state"), max_length=16, choices=SyncState.choices, default=SyncState.PENDING
    )
    version = models.PositiveBigIntegerField(_("version"), default=1)
    pushed_version = models.PositiveBigIntegerField(_("pushed version"), default=0)
    payload_hash = models.CharField(_("payload hash"), max_length=64, blank=True, default="")
    last_payload = models.JSONField(_("last pushed payload"), null=True, blank=True)
    remote_snapshot = models.JSONField(_("remote snapshot"), null=True, blank=True)
    last_error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error_key = models.CharField(_("error key"), max_length=64, blank=True, default="")
    last_error_message = models.TextField(_("error message"), blank=True, default="")
    last_error_details = models.TextField(_("error details"), blank=True, default="")
    last_error_request_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(_("failed attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # When the current run of transient failures began (meaningful while attempts > 0):
    # RETRY_FOR counts from here.
    first_failed_at = models.DateTimeField(_("failing since"), null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)

    class Meta:
        verbose_name = _("order sync")
        verbose_name_plural = _("order syncs")
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="vo_ordersync_state_next"),
            models.Index(fields=["last_error_key"], name="vo_ordersync_error_key"),
        ]
        permissions = [
            ("push_ordersync", _("Can push orders to Voucherify")),
            ("view_remote_orders", _("Can view orders held by Voucherify")),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} ({self.state})"

    @property
    def is_dirty(self) -> bool:
        return self.version > self.pushed_version

    def last_error(self) -> dict[str, Any] | None:
        if not (self.last_error_key or self.last_error_message):
            return None
        return {
            "status_code": self.last_error_status,
            "key": self.last_error_key,
            "message": self.last_error_message,
            "details": self.last_error_details,
            "request_id": self.last_error_request_id,
        }


class SyncAttempt(models.Model):
    """One HTTP attempt made for an order push. Written for every call, retries included."""

    sync = models.ForeignKey(OrderSync, on_delete=models.CASCADE, related_name="attempts_log")
    started_at = models.DateTimeField(_("started"), db_index=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    response_body = models.TextField(_("response (truncated)"), blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("sync attempt")
        verbose_name_plural = _("sync attempts")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status_code or self.error[:40]}"


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    # Finished, but some orders were not imported (see the failures).
    DONE_WITH_FAILURES = "done_with_failures", _("Done with failures")
    # Stopped part-way (Ctrl-C, a crash, Voucherify unreachable): resumable.
    INTERRUPTED = "interrupted", _("Interrupted")
    FAILED = "failed", _("Failed")


class ImportJob(models.Model):
    """One run of ``voucherify_import``: what was asked, each batch sent, what came back.

    ``batches`` holds one entry per request, in order: first and last order pk,
    order count, the async action id (recorded before waiting for it, so a resumed
    job polls it instead of sending the orders again) and its outcome. The batch in
    flight also lists the pks it sent, so a resume records exactly those.

    ``runner`` and ``heartbeat_at`` are the claim of the process running the job (see
    ``importer.claim``): one runner at a time.
    """

    status = models.CharField(max_length=24, choices=JobStatus.choices, default=JobStatus.QUEUED)
    parameters = models.JSONField(_("parameters"), default=dict)
    batches = models.JSONField(default=list, blank=True)
    last_pk = models.CharField(
        _("last order finished"), max_length=255, blank=True, default="",
        help_text=_("Resuming continues after this order."),
    )  # fmt: skip
    total = models.PositiveIntegerField(_("orders selected"), default=0)
    sent = models.PositiveIntegerField(_("orders sent"), default=0)
    imported = models.PositiveIntegerField(_("orders imported"), default=0)
    failed = models.PositiveIntegerField(_("orders failed"), default=0)
    skipped_synced = models.PositiveIntegerField(
        _("orders left out as synced"), default=0,
        help_text=_("Matched the filters, but live sync or an import delivered them already."),
    )  # fmt: skip
    already_held = models.PositiveIntegerField(
        _("orders Voucherify already held"), default=0,
        help_text=_("Sent, and refused by Voucherify as already existing."),
    )  # fmt: skip
    unitemised = models.PositiveIntegerField(
        _("failures Voucherify did not name"), default=0,
        help_text=_("Counted in an import's result without naming the order: their batch "
                    "is left unsynced."),
    )  # fmt: skip
    error = models.TextField(blank=True, default="")
    runner = models.CharField(_("runner"), max_length=32, blank=True, default="")
    heartbeat_at = models.DateTimeField(_("runner last seen"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at"]
        permissions = [("run_importjob", _("Can start imports to Voucherify"))]

    def __str__(self) -> str:
        return f"import #{self.pk} ({self.status})"


class ImportFailure(models.Model):
    """One order that was not imported, and why (invalid here, or refused by Voucherify)."""

    class Stage(models.TextChoices):
        LOCAL = "local", _("Invalid locally, not sent")
        REMOTE = "remote", _("Refused by Voucherify")

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="failures")
    source_id = models.CharField(max_length=255, blank=True, default="")
    order_pk = models.CharField(max_length=255, blank=True, default="")
    stage = models.CharField(max_length=8, choices=Stage.choices)
    reason = models.TextField()

    class Meta:
        verbose_name = _("import failure")
        verbose_name_plural = _("import failures")
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.source_id}: {self.reason[:60]}"


class ExportJob(models.Model):
    """One run of ``voucherify_export``: parameters, Voucherify's export, the CSV kept."""

    status = models.CharField(max_length=24, choices=JobStatus.choices, default=JobStatus.QUEUED)
    parameters = models.JSONField(_("parameters"), default=dict)
    export_id = models.CharField(_("Voucherify export id"), max_length=64, blank=True, default="")
    remote_status = models.CharField(max_length=16, blank=True, default="")
    row_count = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    # A private storage (export_storage.py), never the public media one; the file is
    # deleted with the job and pruned after EXPORT_RETENTION_DAYS.
    file = models.FileField(
        _("CSV file"), upload_to="voucherify/exports/", storage=ExportStorage(), blank=True
    )
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("export job")
        verbose_name_plural = _("export jobs")
        ordering = ["-created_at"]
        permissions = [("run_exportjob", _("Can start exports from Voucherify"))]

    def __str__(self) -> str:
        return f"export #{self.pk} ({self.status})"


@receiver(post_delete, sender=ExportJob, dispatch_uid="vo_exportjob_file")
def _delete_export_file(sender: type[ExportJob], instance: ExportJob, **kwargs: Any) -> None:
    """The CSV goes with its job: ``job.delete()``, ``QuerySet.delete()`` and the admin's
    bulk delete all send post_delete for each row (a receiver turns off fast deletes)."""
    delete_file_on_commit(instance.file.name)
