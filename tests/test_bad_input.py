"""Bad input, table-driven: each case gives a clear error naming what was wrong, and
nothing is lost or half-written. Across mapper output, settings, command arguments and
Voucherify's responses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_voucherify_orders.client import (
    RetryPolicy,
    VoucherifyClient,
    VoucherifyConfigurationError,
    VoucherifyError,
)
from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.mapping import MappingError, OrderMapper

ITEM = {"product_id": "prod_1", "quantity": 1, "price": 100}

# --- mapper output -----------------------------------------------------------------------

MAPPER_CASES = [
    ("negative quantity", {"items": [{**ITEM, "quantity": -2}]}, "items.0.quantity"),
    ("product price as text", {"items": [{"product": {"price": "9.99"}}]}, "items.0.product"),
    ("more than 500 items", {"items": [ITEM] * 501}, "items"),
    ("metadata that is not JSON", {"metadata": {"total": Decimal("1.5")}}, "metadata"),
    ("unknown status", {"status": "SHIPPED"}, "status"),
    ("amount as float", {"amount": 10.5}, "amount"),
    ("amount as text", {"amount": "1000"}, "amount"),
    ("negative amount", {"amount": -1}, "amount"),
    ("naive created_at", {"created_at": datetime(2024, 1, 1)}, "created_at"),
    ("misspelt field", {"stauts": "PAID"}, "stauts"),
    ("customer email not text", {"customer": {"source_id": "c", "email": 42}}, "customer.email"),
    ("unknown related_object", {"items": [{"source_id": "s", "related_object": "x"}]}, "items.0"),
]


class _Order:
    pk = 7


@pytest.mark.parametrize(
    ("case", "payload", "field"), MAPPER_CASES, ids=[c[0] for c in MAPPER_CASES]
)
def test_bad_mapper_output_names_the_order_and_the_field(case, payload, field):
    class Mapper(OrderMapper):
        def to_voucherify(self, order):
            return payload

    with pytest.raises(MappingError) as caught:
        Mapper(model=None).build(_Order())  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("order 7 (source_id '7'): ")
    assert field in message, message


@pytest.mark.parametrize(
    ("case", "raised", "shown"),
    [
        ("returns a list", lambda: [], "to_voucherify returned list, not a dict"),
        ("raises KeyError", lambda: {}["colour"], "KeyError: 'colour'"),
    ],
)
def test_a_mapper_that_breaks_fails_that_order_only(case, raised, shown):
    class Mapper(OrderMapper):
        def to_voucherify(self, order):
            return raised()

    with pytest.raises(MappingError, match=f"order 7 .*{shown}"):
        Mapper(model=None).build(_Order())  # type: ignore[arg-type]


# --- settings -----------------------------------------------------------------------------

GOOD = {"APP_ID": "a", "SECRET_KEY": "s"}
SETTINGS_CASES = [
    ("not a dict", "a:s", "must be a dict"),
    ("no APP_ID", {"SECRET_KEY": "s"}, '"APP_ID": os.environ["VOUCHERIFY_APP_ID"]'),
    ("empty SECRET_KEY", {"APP_ID": "a", "SECRET_KEY": ""}, "SECRET_KEY"),
    ("API_URL with /v1", {**GOOD, "API_URL": "https://api.voucherify.io/v1"}, "without a path"),
    ("negative READ_TIMEOUT", {**GOOD, "READ_TIMEOUT": -1}, "READ_TIMEOUT"),
    ("typo in a key", {**GOOD, "SECRT_KEY": "s"}, 'Did you mean "SECRET_KEY"?'),
    ("RATE_LIMIT in words", {**GOOD, "RATE_LIMIT": "fast"}, '"100/m"'),
    ("ORDER_MODEL without MAPPER", {**GOOD, "ORDER_MODEL": "shop.Order"}, "MAPPER is required"),
    ("MAX_ATTEMPTS of 0", {**GOOD, "MAX_ATTEMPTS": 0}, "MAX_ATTEMPTS"),
]


@pytest.mark.parametrize(
    ("case", "value", "shown"), SETTINGS_CASES, ids=[c[0] for c in SETTINGS_CASES]
)
def test_bad_settings_say_what_to_write(case, value, shown):
    with (
        override_settings(VOUCHERIFY_ORDERS=value),
        pytest.raises(VoucherifyConfigurationError) as caught,
    ):
        get_settings()
    assert shown in str(caught.value)


# --- command arguments --------------------------------------------------------------------

COMMAND_CASES = [
    ("import batch of 0", ["voucherify_import", "--batch-size", "0"], "must be 1 to 2000"),
    ("import since garbage", ["voucherify_import", "--since", "last tuesday"], "not a date"),
    ("import since after until",
     ["voucherify_import", "--since", "2025-01-01", "--until", "2024-01-01"],
     "--since must be before"),
    ("import resume unknown job", ["voucherify_import", "--resume", "999"], "no import job 999"),
    ("export unknown field", ["voucherify_export", "--fields", "id,colour"], "colour"),
    ("export > on status", ["voucherify_export", "--filter", "status>PAID"], "status>PAID"),
    ("export bad date", ["voucherify_export", "--filter", "created_at>yesterday"], "yesterday"),
    ("export unwritable output", ["voucherify_export", "--output", "/nonexistent/dir/x.csv"],
     "/nonexistent/dir"),
    ("export bad junction", ["voucherify_export", "--junction", "xor"], "xor"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "argv", "shown"), COMMAND_CASES, ids=[c[0] for c in COMMAND_CASES]
)
def test_bad_command_arguments_are_refused_before_anything_is_sent(
    case, argv, shown, voucherify_emulator
):
    from django_voucherify_orders.models import ExportJob, ImportJob

    with pytest.raises((CommandError, SystemExit)) as caught:
        call_command(*argv, stdout=StringIO(), stderr=StringIO())
    if isinstance(caught.value, CommandError):
        assert shown in str(caught.value)
    assert voucherify_emulator.count() == 0
    assert not ImportJob.objects.exists() and not ExportJob.objects.exists()


# --- Voucherify's responses ---------------------------------------------------------------

URL = "https://api.voucherify.io/v1/orders/o-1"
RESPONSE_CASES = [
    ("malformed JSON", 200, "application/json", b'{"id": "ord_1",', "not JSON"),
    ("an HTML 502 page", 502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>",
     "502 Bad Gateway"),
    ("HTML where JSON belongs", 200, "text/html", b"<html>maintenance</html>", "not JSON"),
    ("a truncated error", 500, "application/json", b'{"code": 500, "mess',
     "not a Voucherify error"),
    ("a huge error body", 503, "text/plain", b"x" * 3_000_000, "HTTP 503"),
    ("a missing id", 200, "application/json", b'{"object": "order", "status": "PAID"}',
     "id: Field required"),
    ("a wrong type", 200, "application/json", b'{"id": "ord_1", "amount": "ten"}', "amount"),
    ("an empty body", 200, "application/json", b"", "not JSON"),
    ("a list, not an object", 200, "application/json", b"[]", "Input should be"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "status", "content_type", "body", "shown"),
    RESPONSE_CASES,
    ids=[c[0] for c in RESPONSE_CASES],
)
@responses.activate
def test_bad_responses_give_a_clear_error(case, status, content_type, body, shown):
    responses.add(responses.GET, URL, status=status, content_type=content_type, body=body)
    client = VoucherifyClient("a", "s", retry=RetryPolicy(max_retries=0))

    with pytest.raises(VoucherifyError) as caught:
        client.get_order("o-1")

    message = str(caught.value)
    assert message.startswith("GET /v1/orders/o-1")
    assert shown in message, message
    assert len(message) < 1000


def test_unexpected_extra_fields_are_accepted():
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, json={"id": "ord_1", "object": "order", "new_thing": [1]})
        assert VoucherifyClient("a", "s").get_order("o-1").id == "ord_1"


@pytest.mark.parametrize(
    "body", [b"<html>502</html>", b'{"id": 5', b'{"object": "order"}'], ids=["html", "cut", "no id"]
)
def test_a_bad_response_to_a_push_is_retried_then_shown_and_the_order_kept(shop, body, settings):
    """Through the push engine (eager here, so the retries run at once): bounded retries
    (MAX_ATTEMPTS tries here, RETRY_FOR by default), then a failed row that says what
    happened; the order is pushed again after a fix."""
    from django_voucherify_orders.models import OrderSync, SyncState

    settings.VOUCHERIFY_ORDERS = {**settings.VOUCHERIFY_ORDERS, "MAX_ATTEMPTS": 3}
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "https://api.voucherify.io/v1/orders", status=200, body=body)
        order = shop.order(status="paid")
        assert len(mock.calls) == 3

    row = OrderSync.objects.get(pk=str(order.pk))
    assert (row.state, row.attempts) == (SyncState.FAILED, 3)
    assert row.last_error_key == "VoucherifyResponseError"
    assert "POST /v1/orders: unexpected response from Voucherify" in row.last_error_message
