"""Import and export jobs: progress, results to download, and forms that start new ones.

Starting a job creates its row and queues its Celery task after commit; the request
never runs the job itself (with ``CELERY_TASK_ALWAYS_EAGER`` the "worker" is this
process, which is a deployment's choice, not the admin's).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.db.models import ForeignObjectRel
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..client.schemas import EXPORT_FIELDS
from ..conf import get_settings
from ..export_params import (
    EXPORT_ORDERINGS,
    ExportInputError,
    ExportRequest,
    build_filters,
    parse_fields,
)
from ..models import ExportJob, ImportFailure, ImportJob, JobStatus
from .actions import EXPORT_PERMISSION, IMPORT_PERMISSION
from .rendering import badge, pretty_json

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger("django_voucherify_orders.admin")

#: Failures listed on an import job's page; the CSV has them all.
FAILURES_SHOWN = 20

_STATUS_TONES: dict[str, str] = {
    JobStatus.QUEUED: "wait",
    JobStatus.RUNNING: "wait",
    JobStatus.DONE: "ok",
    JobStatus.DONE_WITH_FAILURES: "wait",
    JobStatus.INTERRUPTED: "wait",
    JobStatus.FAILED: "bad",
}


def _status_badge(job: ImportJob | ExportJob) -> SafeString:
    return badge(job.get_status_display(), _STATUS_TONES.get(job.status, "quiet"), job.error)


class _ReadOnlyJobAdmin(admin.ModelAdmin):
    """Jobs are written by their tasks; people start them with the start form."""

    start_permission = ""
    start_label: StrOrPromise = ""
    change_list_template = "admin/voucherify_orders/job_change_list.html"
    change_form_template = "admin/voucherify_orders/job_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_start_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.start_permission)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        extra = {
            "has_start_permission": self.has_start_permission(request),
            "start_label": self.start_label,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def _url(self, name: str, *args: Any) -> str:
        opts = self.opts
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{name}",
            args=args,
            current_app=self.admin_site.name,
        )

    def _form_page(self, request: HttpRequest, form: forms.Form, title: str) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            "changelist_url": self._url("changelist"),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/voucherify_orders/start_job.html", context)


def _enqueue(task: Any, job_pk: int, what: str) -> None:
    """Queue ``task`` for ``job_pk`` once the job row is committed. A broker that is down
    leaves the job queued (and logged) instead of failing the request."""
    queue = get_settings().celery_queue

    def send() -> None:
        try:
            task.apply_async(args=[job_pk], queue=queue)
        except Exception:
            logger.exception("could not queue %s job %s; it stays queued", what, job_pk)

    transaction.on_commit(send)


# --- imports ---------------------------------------------------------------------------------


class DateInput(forms.DateInput):
    input_type = "date"


class ImportForm(forms.Form):
    since = forms.DateField(
        label=gettext_lazy("Orders from"),
        required=False,
        widget=DateInput,
        help_text=gettext_lazy("Inclusive, by the order date the mapper names (date_field)."),
    )
    until = forms.DateField(label=gettext_lazy("Orders before"), required=False, widget=DateInput)
    statuses = forms.MultipleChoiceField(
        label=gettext_lazy("Statuses"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Your order model's statuses; none ticked means every status."),
    )
    skip_synced = forms.BooleanField(
        label=gettext_lazy("Skip orders live sync already delivered"), required=False, initial=True
    )
    dry_run = forms.BooleanField(
        label=gettext_lazy("Dry run: validate and count, send nothing"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _status_choices()
        if choices:
            statuses = self.fields["statuses"]
            assert isinstance(statuses, forms.ChoiceField)  # declared above
            statuses.choices = choices
        else:  # the status field has no choices: type them
            self.fields["statuses"] = forms.CharField(
                label=gettext_lazy("Statuses"),
                required=False,
                help_text=gettext_lazy("Comma-separated; empty means every status."),
            )

    def clean_statuses(self) -> tuple[str, ...]:
        value = self.cleaned_data.get("statuses") or ()
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(value)

    def clean(self) -> dict[str, Any]:
        super().clean()  # Form.clean() returns cleaned_data (typed as possibly None)
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", _("Must be after the start date."))
        return data

    def parameters(self) -> Any:
        from ..importer import ImportParameters

        data = self.cleaned_data
        return ImportParameters(
            since=_midnight(data["since"]),
            until=_midnight(data["until"]),
            statuses=data["statuses"],
            skip_synced=data["skip_synced"],
        )


def _midnight(day: date | None) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _status_choices() -> list[tuple[Any, Any]]:
    try:
        from ..mapping import get_mapper

        mapper = get_mapper()
        field = mapper.model._meta.get_field(mapper.status_field)
        if isinstance(field, ForeignObjectRel):  # a reverse relation has no choices
            return []
        return list(field.choices or [])
    except Exception:  # no order model, or no such field: free text it is
        return []


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Spreadsheets run a cell that starts with = + - @ as a formula: quote it."""
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def _failure_rows(job: ImportJob) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["source_id", "order_pk", "stage", "reason"])
    failures = (
        ImportFailure.objects.filter(job=job)
        .order_by("pk")
        .values_list("source_id", "order_pk", "stage", "reason")
    )
    for row in failures.iterator(chunk_size=2000):
        yield writer.writerow([_cell(str(value)) for value in row])


@admin.action(
    description=gettext_lazy("Resume the selected interrupted imports"), permissions=["start"]
)
def resume_imports(modeladmin: ImportJobAdmin, request: HttpRequest, queryset: Any) -> None:
    from .. import tasks

    resumable = list(
        queryset.filter(status__in=[JobStatus.INTERRUPTED, JobStatus.FAILED]).values_list(
            "pk", flat=True
        )
    )
    for pk in resumable:
        ImportJob.objects.filter(pk=pk).update(status=JobStatus.QUEUED)
        _enqueue(tasks.run_import, pk, "import")
    skipped = queryset.count() - len(resumable)
    if resumable:
        messages.success(
            request,
            ngettext(
                "%(count)d import queued to resume after its last finished batch.",
                "%(count)d imports queued to resume after their last finished batch.",
                len(resumable),
            )
            % {"count": len(resumable)},
        )
    if skipped:
        messages.info(
            request,
            ngettext(
                "%(count)d selected import was not interrupted or failed; left alone.",
                "%(count)d selected imports were not interrupted or failed; left alone.",
                skipped,
            )
            % {"count": skipped},
        )


@admin.register(ImportJob)
class ImportJobAdmin(_ReadOnlyJobAdmin):
    start_permission = IMPORT_PERMISSION
    start_label = gettext_lazy("Start an import")
    list_display = [
        "__str__",
        "status_display",
        "progress",
        "imported",
        "failed",
        "total",
        "dry_run",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    actions = [resume_imports]
    fieldsets = [
        (None, {"fields": ["status_display", "progress", "error", "failures_download"]}),
        (
            gettext_lazy("Counts"),
            {"fields": ["total", "sent", "imported", "failed", "last_pk"]},
        ),
        (gettext_lazy("Times"), {"fields": ["created_at", "started_at", "finished_at"]}),
        (gettext_lazy("Parameters"), {"fields": ["parameters_display"]}),
        (gettext_lazy("Failures"), {"fields": ["failures_list"]}),
        (gettext_lazy("Batches"), {"fields": ["batches_display"], "classes": ["collapse"]}),
    ]
    readonly_fields = [
        "status_display",
        "progress",
        "error",
        "failures_download",
        "total",
        "sent",
        "imported",
        "failed",
        "last_pk",
        "created_at",
        "started_at",
        "finished_at",
        "parameters_display",
        "failures_list",
        "batches_display",
    ]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, job: ImportJob) -> SafeString:
        return _status_badge(job)

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, job: ImportJob) -> SafeString | str:
        done = job.imported + job.failed
        if not job.total:
            return "—" if job.status in (JobStatus.QUEUED, JobStatus.RUNNING) else "0 / 0"
        percent = min(100, round(100 * done / job.total))
        return format_html(
            '<progress class="vo-progress" max="{}" value="{}" title="{}%"></progress> '
            "{} / {} ({}%)",
            job.total, min(done, job.total), percent, done, job.total, percent,
        )  # fmt: skip

    @admin.display(description=gettext_lazy("dry run"), boolean=True)
    def dry_run(self, job: ImportJob) -> bool:
        return bool(job.parameters.get("dry_run"))

    @admin.display(description=gettext_lazy("failures CSV"))
    def failures_download(self, job: ImportJob) -> SafeString | str:
        if not job.failed and not ImportFailure.objects.filter(job=job).exists():
            return "—"
        return format_html(
            '<a href="{}" class="button">{}</a>', self._url("failures", job.pk), _("Download")
        )

    @admin.display(description=gettext_lazy("parameters"))
    def parameters_display(self, job: ImportJob) -> SafeString:
        return pretty_json(job.parameters)

    @admin.display(description=gettext_lazy("batches"))
    def batches_display(self, job: ImportJob) -> SafeString:
        return pretty_json(job.batches)

    @admin.display(description=gettext_lazy("first failures"))
    def failures_list(self, job: ImportJob) -> SafeString:
        failures = list(ImportFailure.objects.filter(job=job).order_by("pk")[:FAILURES_SHOWN])
        if not failures:
            return format_html('<span class="vo-quiet">{}</span>', _("None."))
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f.source_id, f.order_pk, f.get_stage_display(), f.reason) for f in failures),
        )
        head = format_html_join(
            "",
            '<th scope="col">{}</th>',
            ((h,) for h in (_("source id"), _("order"), _("stage"), _("reason"))),
        )
        return format_html(
            '<table class="vo-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            rows,
        )

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name=f"{prefix}_start"),
            path(
                "<int:pk>/failures.csv",
                wrap(self.failures_csv_view),
                name=f"{prefix}_failures",
            ),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_start_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from .. import tasks
            from ..importer import create_job, select_orders

            try:
                params = form.parameters()
                selected = select_orders(params).count()
            except (ImproperlyConfigured, ValueError) as exc:
                messages.error(request, str(exc))
                return self._form_page(request, form, _("Start an import to Voucherify"))
            job = create_job(params, dry_run=form.cleaned_data["dry_run"])
            _enqueue(tasks.run_import, job.pk, "import")
            messages.success(
                request,
                ngettext(
                    "Import #%(job)d queued: %(count)d order matches.",
                    "Import #%(job)d queued: %(count)d orders match.",
                    selected,
                )
                % {"job": job.pk, "count": selected},
            )
            return redirect(self._url("change", job.pk))
        return self._form_page(request, form, _("Start an import to Voucherify"))

    def failures_csv_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = ImportJob.objects.filter(pk=pk).first()
        if job is None:
            raise Http404(_("No such import job."))
        response = StreamingHttpResponse(_failure_rows(job), content_type="text/csv")
        name = f"voucherify-import-{job.pk}-failures.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


# --- exports ---------------------------------------------------------------------------------


class ExportForm(forms.Form):
    columns = forms.MultipleChoiceField(
        label=gettext_lazy("Columns"),
        required=False,
        choices=[(name, name) for name in EXPORT_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked: Voucherify's default (id, source_id, status)."),
    )
    metadata = forms.CharField(
        label=gettext_lazy("Metadata columns"),
        required=False,
        help_text=gettext_lazy("Comma-separated metadata keys, e.g. channel, number."),
    )
    order = forms.ChoiceField(
        label=gettext_lazy("Order by"),
        required=False,
        choices=[("", gettext_lazy("Voucherify's default (-created_at)"))]
        + [(value, value) for value in EXPORT_ORDERINGS],
    )
    filters = forms.CharField(
        label=gettext_lazy("Filters"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50, "placeholder": "status=PAID"}),
        help_text=gettext_lazy(
            "One per line, as FIELD OPERATOR VALUE: status=PAID,FULFILLED, "
            "created_at>2024-01-01, amount>=1000, metadata.channel=web."
        ),
    )
    junction = forms.ChoiceField(
        label=gettext_lazy("Combine filters with"),
        choices=[("and", gettext_lazy("and")), ("or", gettext_lazy("or"))],
        initial="and",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()  # Form.clean() returns cleaned_data (typed as possibly None)
        data = self.cleaned_data
        try:
            columns = list(data.get("columns") or [])
            keys = [k.strip() for k in (data.get("metadata") or "").split(",") if k.strip()]
            columns += [f"metadata.{key}" for key in keys]
            lines = [line for line in (data.get("filters") or "").splitlines() if line.strip()]
            data["request"] = ExportRequest(
                fields=tuple(parse_fields(",".join(columns))) if columns else None,
                order=data.get("order") or None,
                filters=build_filters(lines, data.get("junction") or "and"),
            )
        except ExportInputError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(ExportJob)
class ExportJobAdmin(_ReadOnlyJobAdmin):
    start_permission = EXPORT_PERMISSION
    start_label = gettext_lazy("Start an export")
    list_display = [
        "__str__",
        "status_display",
        "remote_status",
        "row_count",
        "columns",
        "created_at",
        "finished_at",
        "download",
    ]
    list_filter = ["status"]
    fieldsets = [
        (None, {"fields": ["status_display", "row_count", "download", "error"]}),
        (gettext_lazy("Voucherify"), {"fields": ["export_id", "remote_status"]}),
        (gettext_lazy("Times"), {"fields": ["created_at", "finished_at"]}),
        (gettext_lazy("Parameters"), {"fields": ["parameters_display"]}),
    ]
    readonly_fields = [
        "status_display",
        "row_count",
        "download",
        "error",
        "export_id",
        "remote_status",
        "created_at",
        "finished_at",
        "parameters_display",
    ]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, job: ExportJob) -> SafeString:
        return _status_badge(job)

    @admin.display(description=gettext_lazy("columns"))
    def columns(self, job: ExportJob) -> str:
        fields = job.parameters.get("fields")
        return ", ".join(fields) if fields else _("(default)")

    @admin.display(description=gettext_lazy("CSV"))
    def download(self, job: ExportJob) -> SafeString | str:
        if not job.file:
            return "—"
        return format_html(
            '<a href="{}" class="vo-download">{}</a>', self._url("download", job.pk), _("Download")
        )

    @admin.display(description=gettext_lazy("parameters"))
    def parameters_display(self, job: ExportJob) -> SafeString:
        return pretty_json(job.parameters)

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name=f"{prefix}_start"),
            path("<int:pk>/download/", wrap(self.download_view), name=f"{prefix}_download"),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_start_permission(request):
            raise PermissionDenied
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from ..exporter import start_export_job

            try:
                job = start_export_job(form.cleaned_data["request"])
            except ImproperlyConfigured as exc:
                messages.error(request, str(exc))
                return self._form_page(request, form, _("Start an export from Voucherify"))
            except Exception as exc:  # the broker is down: the job stays queued
                logger.exception("could not queue an export")
                messages.error(
                    request, _("The export could not be queued: %(error)s") % {"error": exc}
                )
                return redirect(self._url("changelist"))
            messages.success(request, _("Export #%(job)d queued.") % {"job": job.pk})
            return redirect(self._url("change", job.pk))
        return self._form_page(request, form, _("Start an export from Voucherify"))

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = ExportJob.objects.filter(pk=pk).first()
        if job is None or not job.file.name:  # what bool(job.file) tests
            raise Http404(_("This export has no CSV."))
        try:
            handle = job.file.open("rb")
        except OSError:
            raise Http404(_("The CSV of this export is gone from storage.")) from None
        return FileResponse(
            handle,
            as_attachment=True,
            filename=os.path.basename(job.file.name),
            content_type="text/csv",
        )
