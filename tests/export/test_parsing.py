"""parse_fields, parse_filter, build_filters and the streaming row counter (no database)."""

from __future__ import annotations

import csv
import io
import random

import pytest
from django.test import override_settings

from django_voucherify_orders.exporter import (
    ExportInputError,
    ExportRequest,
    _RowCounter,
    build_filters,
    parse_fields,
    parse_filter,
)


def test_parse_fields():
    assert parse_fields("id, source_id,,metadata.channel,id") == [
        "id",
        "source_id",
        "metadata.channel",
    ]
    with pytest.raises(ExportInputError, match=r"unknown fields 'colour', 'items'; choose from"):
        parse_fields("id,colour,items")


@pytest.mark.parametrize(
    ("text", "field", "conditions"),
    [
        ("status=PAID", "status", {"$is": "PAID"}),
        ("status == paid", "status", {"$is": "PAID"}),
        ("status=PAID,FULFILLED", "status", {"$in": ["PAID", "FULFILLED"]}),
        ("status!=CANCELED", "status", {"$is_not": "CANCELED"}),
        ("status!=CANCELED,CREATED", "status", {"$not_in": ["CANCELED", "CREATED"]}),
        ("created_at>2024-01-01", "created_at", {"$after": "2024-01-01T00:00:00.000Z"}),
        ("updated_at<2024-01-01", "updated_at", {"$before": "2024-01-01T00:00:00.000Z"}),
        (
            "created_at>2024-06-30T23:30:00.250+02:00",
            "created_at",
            {"$after": "2024-06-30T21:30:00.250Z"},
        ),
        ("created_at>2024-06-30T12:00:00Z", "created_at", {"$after": "2024-06-30T12:00:00.000Z"}),
        ("amount>=1000", "amount", {"$more_than_equal": 1000}),
        ("total_amount>1000", "total_amount", {"$more_than": 1000}),
        ("discount_amount<5", "discount_amount", {"$less_than": 5}),
        ("amount<=0", "amount", {"$less_than_equal": 0}),
        ("amount=1000", "amount", {"$is": 1000}),
        ("amount=1000,2000", "amount", {"$in": [1000, 2000]}),
        ("source_id=shop-1", "source_id", {"$is": "shop-1"}),
        ("customer_id!=cust_1", "customer_id", {"$is_not": "cust_1"}),
        ("metadata.channel=web", "metadata.channel", {"$is": "web"}),
        ("metadata.channel=web,shop", "metadata.channel", {"$in": ["web", "shop"]}),
        ("metadata.weight>2.5", "metadata.weight", {"$more_than": 2.5}),
        ("metadata.sales-region = north east", "metadata.sales-region", {"$is": "north east"}),
    ],
)
def test_parse_filter(text, field, conditions):
    assert parse_filter(text) == (field, {"conditions": conditions})


@override_settings(TIME_ZONE="Europe/Berlin")
def test_naive_dates_are_in_the_default_time_zone():
    assert parse_filter("created_at>2024-01-01")[1] == {
        "conditions": {"$after": "2023-12-31T23:00:00.000Z"}
    }
    assert parse_filter("created_at<2024-07-01T12:00")[1] == {
        "conditions": {"$before": "2024-07-01T10:00:00.000Z"}
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "filter 'colour=red': unknown field 'colour'; filterable: created_at"),
        ("metadata.=x", "unknown field 'metadata.'"),
        ("items=3", "unknown field 'items'"),
        ("status=>PAID", "unknown operator '=>'"),
        ("status<>PAID", "unknown operator '<>'"),
        ("status~PAID", "unknown operator '~'"),
        ("status>PAID", "'>' compares numbers and dates; status is a status: use = or !="),
        ("source_id<=b", "source_id is text"),
        ("status=PAID,SHIPPED", "unknown status 'SHIPPED'; Voucherify's are CREATED, PAID"),
        ("status=PAID,", "empty value in the comma-separated list"),
        ("created_at>2024-13-01", "'2024-13-01' is not a date"),
        ("created_at>last week", "'last week' is not a date"),
        ("created_at>=2024-01-01", "created_at takes > (after) or < (before), not '>='"),
        ("updated_at!=2024-01-01", "updated_at takes > (after) or < (before)"),
        ("amount>ten", "'ten' is not an amount: use whole minor units"),
        ("amount>-5", "amounts are never negative"),
        ("metadata.weight>heavy", "'heavy' is not a number"),
        ("status=", "no value after '='"),
        ("=PAID", "expected FIELD OPERATOR VALUE"),
        ("PAID", "expected FIELD OPERATOR VALUE"),
    ],
)
def test_parse_filter_errors_name_the_expression_and_the_problem(text, message):
    with pytest.raises(ExportInputError) as excinfo:
        parse_filter(text)
    assert message in str(excinfo.value)
    assert f"filter {text!r}" in str(excinfo.value)


def test_build_filters_merges_conditions_per_field():
    assert build_filters([]) is None
    assert build_filters(
        ["created_at>2024-01-01", "created_at<2024-02-01", "status=PAID", "metadata.a=1"], "or"
    ) == {
        "junction": "or",
        "created_at": {
            "conditions": {
                "$after": "2024-01-01T00:00:00.000Z",
                "$before": "2024-02-01T00:00:00.000Z",
            }
        },
        "status": {"conditions": {"$is": "PAID"}},
        "metadata.a": {"conditions": {"$is": "1"}},
    }
    assert build_filters(["status=PAID"])["junction"] == "and"
    with pytest.raises(ExportInputError, match="status already has a \\$is condition"):
        build_filters(["status=PAID", "status=CANCELED"])
    with pytest.raises(ExportInputError, match="--junction must be"):
        build_filters(["status=PAID"], "xor")


def test_export_request_validates_and_round_trips():
    request = ExportRequest(fields=("id", "metadata.x"), order="-status", filters=None)
    assert ExportRequest.from_json(request.to_json()) == request
    assert ExportRequest().to_json() == {}
    assert ExportRequest().columns == ("id", "source_id", "status")
    with pytest.raises(ExportInputError, match="--order 'amount'"):
        ExportRequest(order="amount")
    with pytest.raises(ExportInputError, match="unknown field 'colour'"):
        ExportRequest(fields=("colour",))
    with pytest.raises(ExportInputError, match="cannot filter on this field"):
        ExportRequest(filters={"colour": {"conditions": {"$is": "red"}}})


def _random_csv(rng: random.Random, rows: int) -> bytes:
    alphabet = ["a", "b", ",", '"', "\n", "\r\n", " ", "é", "€", '""']
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["id", "metadata"])
    for i in range(rows):
        note = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        writer.writerow([f"ord_{i}", note])
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("seed", range(20))
def test_the_row_counter_agrees_with_the_csv_module_whatever_the_chunks(seed):
    rng = random.Random(seed)
    data = _random_csv(rng, rows=rng.randrange(0, 60))
    expected = len(list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))) - 1
    for size in (1, 2, 3, 7, 64, len(data) or 1):
        sink = io.BytesIO()
        counter = _RowCounter(sink)
        for start in range(0, len(data), size):
            counter.write(data[start : start + size])
        assert counter.rows == expected, size
        assert sink.getvalue() == data


def test_the_row_counter_counts_a_last_row_without_a_newline():
    counter = _RowCounter(io.BytesIO())
    counter.write(b'id,note\n1,"a\nb"\n2,c')
    assert counter.rows == 2
    empty = _RowCounter(io.BytesIO())
    assert empty.rows == 0
