"""manage.py voucherify_export against the emulator (responses door)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest
from django.core.management import CommandError

from django_voucherify_orders.client import VoucherifyClient, VoucherifyTransportError
from django_voucherify_orders.models import ExportJob, JobStatus

from .conftest import stored_files

pytestmark = pytest.mark.django_db(transaction=True)

EXPORTS = "/v1/orders/export"


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def read_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def three(remote_order):
    remote_order(
        "o-1",
        status="PAID",
        amount=500,
        created_at="2024-01-10T10:00:00+00:00",
        metadata={"channel": "web", "note": 'line one\nline "two", three'},
    )
    remote_order(
        "o-2",
        status="CANCELED",
        amount=1500,
        created_at="2024-02-10T10:00:00+00:00",
        metadata={"channel": "shop"},
    )
    remote_order("o-3", status="FULFILLED", amount=1000, created_at="2024-03-10T10:00:00+00:00",
                 metadata={"channel": "web"})  # fmt: skip


def export_rows(export, tmp_path, *args: str) -> list[list[str]]:
    path = tmp_path / "out.csv"
    export("--output", str(path), *args)
    return read_csv(path)


# --- what is exported -------------------------------------------------------------------


def test_default_fields_file_job_row_and_stored_copy(export, three, tmp_path, media, emulator):
    path = tmp_path / "orders.csv"
    result = export("--output", str(path))

    table = read_csv(path)
    assert table[0] == ["id", "source_id", "status"]
    assert sorted(r[1] for r in table[1:]) == ["o-1", "o-2", "o-3"]
    job = ExportJob.objects.get()
    assert job.status == JobStatus.DONE
    assert job.export_id.startswith("exp_") and job.remote_status == "DONE"
    assert job.row_count == 3 and job.error == "" and job.finished_at is not None
    assert job.parameters == {}
    assert job.file.name.startswith("voucherify/exports/")
    assert (media / job.file.name).read_bytes() == path.read_bytes()
    assert f"Exported 3 rows (export {job.export_id}, job #{job.pk}) to {path}" in result.stdout
    assert f"export {job.export_id} IN_PROGRESS" in result.stderr
    assert emulator.count("POST", EXPORTS) == 1
    assert sorted(os.listdir(tmp_path)) == ["exports", "orders.csv"]  # no temporary file left


def test_fields_with_metadata_and_metadata_key(export, three, tmp_path, media):
    table = export_rows(
        export, tmp_path, "--fields", "source_id, amount,metadata,metadata.note", "--order",
        "created_at",
    )  # fmt: skip

    assert table[0] == ["source_id", "amount", "metadata", "metadata.note"]
    assert [r[0] for r in table[1:]] == ["o-1", "o-2", "o-3"]
    assert table[1][1] == "500"
    assert json.loads(table[1][2]) == {"channel": "web", "note": 'line one\nline "two", three'}
    assert table[1][3] == 'line one\nline "two", three'
    assert table[2][3] == ""
    # Rows, not lines: the note's newline is inside a quoted field.
    assert ExportJob.objects.get().row_count == 3


def test_every_documented_field_is_accepted(export, three, tmp_path, media):
    fields = ("id,source_id,created_at,updated_at,status,amount,discount_amount,"
              "items_discount_amount,total_discount_amount,total_amount,customer_id,"
              "referrer_id,metadata")  # fmt: skip
    table = export_rows(export, tmp_path, "--fields", fields)
    assert table[0] == fields.split(",")
    assert len(table) == 4


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("created_at", ["o-1", "o-2", "o-3"]),
        ("-created_at", ["o-3", "o-2", "o-1"]),
        ("status", ["o-2", "o-3", "o-1"]),  # CANCELED, FULFILLED, PAID
        ("-status", ["o-1", "o-3", "o-2"]),
    ],
)
def test_order(export, three, tmp_path, media, order, expected):
    table = export_rows(export, tmp_path, "--fields", "source_id", f"--order={order}")
    assert [r[0] for r in table[1:]] == expected
    assert ExportJob.objects.get().parameters == {"fields": ["source_id"], "order": order}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["status=PAID"], ["o-1"]),
        (["status=paid,FULFILLED"], ["o-1", "o-3"]),
        (["status!=CANCELED"], ["o-1", "o-3"]),
        (["status!=CANCELED,PAID"], ["o-3"]),
        (["created_at>2024-02-01"], ["o-2", "o-3"]),
        (["created_at<2024-02-10T11:00:00+01:00"], ["o-1"]),
        (["created_at>2024-01-31", "created_at<2024-03-01"], ["o-2"]),
        (["amount>=1000"], ["o-2", "o-3"]),
        (["amount>1000"], ["o-2"]),
        (["amount<1000"], ["o-1"]),
        (["amount<=1000"], ["o-1", "o-3"]),
        (["amount=500,1500"], ["o-1", "o-2"]),
        (["metadata.channel=web"], ["o-1", "o-3"]),
        (["metadata.channel!=web"], ["o-2"]),
        (["status=CANCELED", "metadata.channel=web"], []),
        (["status=CANCELED", "metadata.channel=web", ("--junction", "or")], ["o-1", "o-2", "o-3"]),
        (["status=PAID", "amount>=1000", ("--junction", "or")], ["o-1", "o-2", "o-3"]),
        (["status=PAID", "amount>=1000", ("--junction", "and")], []),
    ],
)
def test_filters(export, three, tmp_path, media, filters, expected):
    args = [
        arg for item in filters for arg in (item if isinstance(item, tuple) else ("--filter", item))
    ]
    table = export_rows(export, tmp_path, "--fields", "source_id", "--order", "created_at", *args)
    assert [r[0] for r in table[1:]] == expected
    assert ExportJob.objects.get().row_count == len(expected)


def test_filters_are_stored_as_sent(export, three, tmp_path, media):
    export_rows(
        export, tmp_path, "--filter", "status=PAID,FULFILLED", "--filter", "created_at>2024-01-01",
        "--filter", "metadata.channel=web", "--junction", "or",
    )  # fmt: skip
    assert ExportJob.objects.get().parameters["filters"] == {
        "junction": "or",
        "status": {"conditions": {"$in": ["PAID", "FULFILLED"]}},
        "created_at": {"conditions": {"$after": "2024-01-01T00:00:00.000Z"}},
        "metadata.channel": {"conditions": {"$is": "web"}},
    }


def test_standard_output(export, three, media):
    result = export("--output", "-", "--fields", "source_id,metadata.note", "--order",
                    "created_at")  # fmt: skip

    table = rows(result.stdout)
    assert table[0] == ["source_id", "metadata.note"]
    assert [r[0] for r in table[1:]] == ["o-1", "o-2", "o-3"]
    assert result.stdout.startswith("source_id,metadata.note\r\n")  # nothing else on stdout
    job = ExportJob.objects.get()
    assert f"export {job.export_id} IN_PROGRESS" in result.stderr
    assert "Exported 3 rows" in result.stderr and "to standard output" in result.stderr
    assert (media / job.file.name).read_bytes().decode("utf-8") == result.stdout


def test_without_output_the_csv_is_kept_in_storage_only(export, three, tmp_path, media):
    result = export()
    job = ExportJob.objects.get()
    assert job.status == JobStatus.DONE and job.row_count == 3
    assert f"stored as {job.file.name}" in result.stdout
    assert stored_files(media) == [media / job.file.name]


def test_an_existing_output_is_replaced_whole_with_the_usual_permissions(
    export, three, tmp_path, media
):
    path = tmp_path / "orders.csv"
    path.write_text("old contents\n")
    export("--output", str(path))
    assert read_csv(path)[0] == ["id", "source_id", "status"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_an_empty_export_has_a_header_and_zero_rows(export, emulator, tmp_path, media):
    table = export_rows(export, tmp_path, "--fields", "source_id")
    assert table == [["source_id"]]
    assert ExportJob.objects.get().row_count == 0


# --- --async --------------------------------------------------------------------------------


def test_async_creates_the_job_and_runs_it_in_a_worker(export, three, media, emulator):
    result = export("--async", "--fields", "source_id,status", "--filter", "status=PAID")

    job = ExportJob.objects.get()
    assert result.stdout.strip() == str(job.pk)
    # CELERY_TASK_ALWAYS_EAGER: the task ran when the job row was committed.
    assert job.status == JobStatus.DONE and job.row_count == 1
    assert rows((media / job.file.name).read_text(encoding="utf-8"))[1][0] == "o-1"
    assert stored_files(media) == [media / job.file.name]


def test_async_refuses_an_output(export, emulator, tmp_path):
    with pytest.raises(CommandError, match="--async keeps the CSV in the export storage"):
        export("--async", "--output", str(tmp_path / "x.csv"))
    assert not ExportJob.objects.exists()


def test_a_task_delivered_twice_exports_once(three, media, emulator):
    from django_voucherify_orders import exporter

    job = exporter.create_job(exporter.ExportRequest(fields=("source_id",)))
    assert exporter.run_export_job(job.pk).status == JobStatus.DONE
    assert exporter.run_export_job(job.pk).status == JobStatus.DONE
    assert emulator.count("POST", EXPORTS) == 1


def test_run_export_job_records_a_failure_without_raising(three, media, emulator):
    from django_voucherify_orders import exporter

    emulator.faults.fail_export_next()
    job = exporter.create_job(exporter.ExportRequest(), timeout=30)
    job = exporter.run_export_job(job.pk)
    assert job.status == JobStatus.FAILED and "ERROR" in job.error
    assert ExportJob.objects.get().status == JobStatus.FAILED


# --- bad input: clear errors, nothing created or sent ---------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fields", "id,colour"], "unknown field 'colour'"),
        (["--fields", "id,metadata."], "unknown field 'metadata.'"),
        (["--fields", " , "], "names no field"),
        (["--filter", "colour=red"], "filter 'colour=red': unknown field 'colour'"),
        (["--filter", "status~PAID"], "filter 'status~PAID': unknown operator '~'"),
        (["--filter", "status>PAID"], "'>' compares numbers and dates; status is a status"),
        (["--filter", "status=SHIPPED"], "unknown status 'SHIPPED'"),
        (["--filter", "created_at>yesterday"], "'yesterday' is not a date"),
        (["--filter", "created_at=2024-01-01"], "created_at takes > (after) or < (before)"),
        (["--filter", "amount>=12.50"], "'12.50' is not an amount"),
        (["--filter", "status"], "expected FIELD OPERATOR VALUE"),
        (["--filter", "amount>"], "no value after '>'"),
        (["--filter", "amount>1", "--filter", "amount>2"], "already has a $more_than condition"),
    ],
)
def test_bad_input_is_a_command_error_before_anything_happens(
    export, emulator, tmp_path, args, message
):
    with pytest.raises(CommandError) as excinfo:
        export("--output", str(tmp_path / "x.csv"), *args)
    assert message in str(excinfo.value)
    assert emulator.count() == 0
    assert not ExportJob.objects.exists()
    assert os.listdir(tmp_path) == []


def test_an_unknown_order_is_refused_by_the_parser(export, emulator):
    with pytest.raises(CommandError, match="invalid choice: 'amount'"):
        export("--order", "amount")


@pytest.mark.parametrize("where", ["missing-dir/x.csv", "a-directory"])
def test_an_unwritable_output_fails_before_the_export_is_created(
    export, emulator, tmp_path, media, where
):
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(CommandError, match="cannot write the CSV to"):
        export("--output", str(tmp_path / where))
    assert emulator.count() == 0
    assert not ExportJob.objects.exists()


def test_a_read_only_directory_fails_before_the_export_is_created(
    export, emulator, tmp_path, monkeypatch
):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the directory refuse it all the same

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(CommandError, match=r"cannot write the CSV to .*Permission denied"):
        export("--output", str(locked / "x.csv"))
    assert emulator.count() == 0
    assert not ExportJob.objects.exists()


# --- failures after the export was created: the job row says what happened ---------------


def assert_nothing_written(tmp_path, media, job: ExportJob, *, keep: tuple[str, ...] = ()) -> None:
    assert sorted(os.listdir(tmp_path)) == sorted({"media", *keep} & set(os.listdir(tmp_path)))
    assert stored_files(media) == []
    assert job.status == JobStatus.FAILED
    assert not job.file and job.row_count is None and job.finished_at is not None


def test_wrong_credentials(export, emulator, tmp_path, media, settings):
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "SECRET_KEY": "wrong-secret"}
    with pytest.raises(CommandError) as excinfo:
        export("--output", str(tmp_path / "x.csv"))
    job = ExportJob.objects.get()
    for text in (str(excinfo.value), job.error):
        assert "HTTP 401" in text and "refused the credentials" in text
        assert "wrong-secret" not in text
    assert f"export job #{job.pk} failed" in str(excinfo.value)
    assert job.export_id == ""
    assert_nothing_written(tmp_path, media, job)


def test_an_export_that_ends_in_error(export, emulator, three, tmp_path, media):
    emulator.faults.fail_export_next()
    with pytest.raises(CommandError, match=r"export exp_\w+ ended in ERROR"):
        export("--output", str(tmp_path / "x.csv"))
    job = ExportJob.objects.get()
    assert job.remote_status == "ERROR" and job.export_id.startswith("exp_")
    assert "ended in ERROR" in job.error
    assert_nothing_written(tmp_path, media, job)


def test_a_timeout(export, emulator, three, tmp_path, media):
    with pytest.raises(CommandError, match=r"did not finish within 0s \(still IN_PROGRESS\)"):
        export("--output", str(tmp_path / "x.csv"), "--timeout", "0")
    job = ExportJob.objects.get()
    assert job.remote_status == "IN_PROGRESS" and "did not finish" in job.error
    assert_nothing_written(tmp_path, media, job)


def _drop_downloads(emulator, monkeypatch, drops: int) -> None:
    """Once the export is DONE, drop the connection of the next `drops` requests."""
    original = VoucherifyClient.wait_for_export

    def wait(self, *args, **kwargs):
        export = original(self, *args, **kwargs)
        emulator.faults.script(["drop"] * drops)
        return export

    monkeypatch.setattr(VoucherifyClient, "wait_for_export", wait)


def test_a_dropped_download_leaves_nothing_behind(
    export, emulator, three, tmp_path, media, monkeypatch
):
    path = tmp_path / "orders.csv"
    path.write_text("the previous export\n")
    _drop_downloads(emulator, monkeypatch, drops=3)  # the first try and HTTP_RETRIES=2

    with pytest.raises(CommandError, match=r"downloading export exp_.*no answer from Voucherify"):
        export("--output", str(path))

    job = ExportJob.objects.get()
    assert "ConnectionError" in job.error and job.remote_status == "DONE"
    assert path.read_text() == "the previous export\n"  # untouched
    assert_nothing_written(tmp_path, media, job, keep=("orders.csv",))
    downloads = [r for r in emulator.requests if r.path.startswith("/v1/exports/")][-3:]
    assert [r.status for r in downloads] == [0, 0, 0]


def test_a_single_dropped_download_is_retried(
    export, emulator, three, tmp_path, media, monkeypatch
):
    _drop_downloads(emulator, monkeypatch, drops=1)
    table = export_rows(export, tmp_path)
    assert len(table) == 4 and ExportJob.objects.get().status == JobStatus.DONE


def test_a_failure_mid_download_leaves_nothing_behind(
    export, emulator, three, tmp_path, media, monkeypatch
):
    def broken(self, export, fileobj, *, chunk_size=65536):
        fileobj.write(b"id,source_id,status\r\nord_1,o-1,PA")
        raise VoucherifyTransportError("GET", "/v1/exports/x", ConnectionError("reset"), sent=True)

    monkeypatch.setattr(VoucherifyClient, "download_export", broken)
    for output in (str(tmp_path / "x.csv"), "-"):
        with pytest.raises(CommandError, match="no answer from Voucherify"):
            result = export("--output", output)
            assert result.stdout == ""  # pragma: no cover - not reached
    for job in ExportJob.objects.all():
        assert_nothing_written(tmp_path, media, job)


def test_a_storage_failure_leaves_no_output(export, emulator, three, tmp_path, media, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    def full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", full)
    with pytest.raises(CommandError, match=r"storing the CSV .*No space left on device"):
        export("--output", str(tmp_path / "x.csv"))
    assert_nothing_written(tmp_path, media, ExportJob.objects.get())


def test_an_interrupted_export_is_recorded_and_cleaned_up(
    export, emulator, three, tmp_path, media, monkeypatch
):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(VoucherifyClient, "download_export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export("--output", str(tmp_path / "x.csv"))
    job = ExportJob.objects.get()
    assert job.status == JobStatus.INTERRUPTED and "interrupted" in job.error
    assert os.listdir(tmp_path) == ["media"] or os.listdir(tmp_path) == []


def test_a_configuration_error_fails_the_job_and_is_raised(emulator, media, settings):
    from django.core.exceptions import ImproperlyConfigured

    from django_voucherify_orders import exporter

    job = exporter.create_job(exporter.ExportRequest())
    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "APP_ID": ""}
    with pytest.raises(ImproperlyConfigured):
        exporter.run_export_job(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "APP_ID" in job.error
    assert emulator.count() == 0
