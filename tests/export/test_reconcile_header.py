"""Reconcile reads its columns by the export's header row: keys or display labels, in any
case and order, extra columns ignored; a missing column is a clear error."""

from __future__ import annotations

import csv
import io

import pytest
from shop.models import Order

from django_voucherify_orders.emulator import jobs as emulator_jobs
from django_voucherify_orders.emulator.csvexport import render_csv

from .test_reconcile_exit import exit_status

pytestmark = pytest.mark.django_db(transaction=True)


def relabelled(header: list[str], order: list[int], extra: bool = True):
    """The emulator's CSV with its header row replaced and its columns reordered."""

    def render(params, records) -> str:
        rows = list(csv.reader(io.StringIO(render_csv(params, records))))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*(["Created At"] if extra else []), *[header[i] for i in order]])
        for row in rows[1:]:
            writer.writerow([*(["2024-01-01"] if extra else []), *[row[i] for i in order]])
        return out.getvalue()

    return render


@pytest.mark.parametrize(
    "header",
    [
        ["ID", "Source ID", "Status", "Amount"],
        ["id", "SOURCE-ID", "status", "AMOUNT"],
        ["Order ID", "source id", "Status", "Amount"],
    ],
)
def test_display_labels_in_another_order_with_an_extra_column(
    synced_shop, media, monkeypatch, header
):
    in_step = synced_shop.order(status="paid")
    drifted = synced_shop.order(status="paid")
    Order.objects.filter(pk=drifted.pk).update(status="cancelled")  # no signal: no push
    # Amount first, then status, id, source id; and a "Created At" column before them.
    monkeypatch.setattr(emulator_jobs, "render_csv", relabelled(header, [3, 2, 0, 1]))

    status, out, err = exit_status()

    assert status == 1, err
    assert "Compared 2 local orders with 2 in Voucherify" in out
    assert "Different in Voucherify (status or amount): 1" in out
    assert "status: local CANCELED, Voucherify PAID" in out
    assert f"{in_step.pk} " not in out.split("Different in Voucherify")[1]


def test_a_missing_column_names_the_field_and_the_header_seen(synced_shop, media, monkeypatch):
    synced_shop.order(status="paid")
    monkeypatch.setattr(
        emulator_jobs,
        "render_csv",
        relabelled(["ID", "Source ID", "State", "Amount"], [0, 1, 2, 3]),
    )

    status, _, err = exit_status()

    assert status == 2
    assert (
        "the export has no column for status (its header row is "
        "Created At,ID,Source ID,State,Amount)" in err
    )


def test_an_export_that_starts_with_a_byte_order_mark_is_read(synced_shop, media, monkeypatch):
    """Spreadsheet tools and some exporters write a UTF-8 BOM before the first label."""
    synced_shop.order(status="paid")
    render = relabelled(["ID", "Source ID", "Status", "Amount"], [1, 0, 2, 3], extra=False)
    monkeypatch.setattr(emulator_jobs, "render_csv", lambda *a: "\ufeff" + render(*a))

    status, out, err = exit_status()

    assert status == 0, err
    assert "Compared 1 local orders with 1 in Voucherify" in out


def test_an_empty_export_is_a_header_error(synced_shop, media, monkeypatch):
    synced_shop.order(status="paid")
    monkeypatch.setattr(emulator_jobs, "render_csv", lambda *a: "")

    status, _, err = exit_status()

    assert status == 2
    assert "the export has no column for id, source_id, status, amount (its header row is " in err
    assert "(empty)); reconcile needs id, source_id, status, amount" in err


def test_a_row_shorter_than_the_header_reads_its_missing_cells_as_empty(
    synced_shop, media, monkeypatch
):
    synced_shop.order(status="paid")
    full = relabelled(["ID", "Source ID", "Status", "Amount"], [0, 1, 3, 2], extra=False)

    def render(*args) -> str:  # each row without its last cell (the status)
        lines = full(*args).split("\r\n")
        rows = [lines[0], *(line.rsplit(",", 1)[0] for line in lines[1:] if line)]
        return "\r\n".join(rows) + "\r\n"

    monkeypatch.setattr(emulator_jobs, "render_csv", render)

    status, out, err = exit_status()

    assert status == 1, err
    assert "status: local PAID, Voucherify -" in out  # no status, not a broken row
