"""Errors built from every documented error example, and from bodies that are not JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from django_voucherify_orders.client import (
    AuthenticationError,
    NotFound,
    RateLimited,
    RetryPolicy,
    ValidationError,
    VoucherifyClient,
    VoucherifyClientError,
    VoucherifyResponseError,
    VoucherifyServerError,
)
from django_voucherify_orders.client.errors import error_from_response
from django_voucherify_orders.client.ratelimit import RateLimitInfo

DOCS = Path(__file__).parents[1] / "contract" / "openapi"


def _documented_error_examples():
    for name in ("orders", "exports", "async-actions"):
        document = json.loads((DOCS / f"{name}.json").read_text())
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if method not in ("get", "post", "put", "delete"):
                    continue  # path-level "parameters"
                for status, response in operation.get("responses", {}).items():
                    if not status.startswith(("4", "5")):
                        continue
                    for media in response.get("content", {}).values():
                        examples = media.get("examples", {})
                        for example_name, example in examples.items():
                            yield pytest.param(
                                int(status),
                                example["value"],
                                id=f"{name}:{method.upper()} {path} {status} {example_name}",
                            )
                        if "example" in media:
                            yield pytest.param(
                                int(status),
                                media["example"],
                                id=f"{name}:{method.upper()} {path} {status}",
                            )


def _response(
    status: int, body: bytes, content_type: str = "application/json"
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    return response


EXPECTED_CLASS = {400: ValidationError, 401: AuthenticationError, 404: NotFound}


@pytest.mark.parametrize(("status", "body"), list(_documented_error_examples()))
def test_every_documented_error_example_is_parsed(status, body):
    error = error_from_response(
        "GET", "/v1/x", _response(status, json.dumps(body).encode()), RateLimitInfo()
    )

    assert isinstance(error, EXPECTED_CLASS.get(status, VoucherifyClientError))
    assert error.status_code == status
    assert error.key == body.get("key")
    assert error.message == body.get("message")
    assert error.details == body.get("details")
    assert error.request_id == body.get("request_id")
    assert body["message"] in str(error)


def test_there_are_documented_examples_to_parse():
    assert len(list(_documented_error_examples())) >= 8


@pytest.mark.parametrize(
    ("status", "body", "content_type", "cls", "shown"),
    [
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html",
         VoucherifyServerError, "502 Bad Gateway"),
        (500, b'{"code": 500, "message": "Internal', "application/json",
         VoucherifyServerError, "not a Voucherify error object"),
        (503, b"", "text/plain", VoucherifyServerError, "empty response body"),
        (400, b'["not", "an", "object"]', "application/json", ValidationError, "not a Voucherify"),
        (429, b'{"code": "429", "message": "Too many requests hit the API too quickly."}',
         "application/json", RateLimited, "Too many requests"),
        (409, b'{"code": 409, "key": "duplicate_found", "message": "Duplicated resource found"}',
         "application/json", VoucherifyClientError, "duplicate_found"),
        (400, b'{"code": 400, "message": "Invalid", "error": {"message": "Rule says no"}}',
         "application/json", ValidationError, "Rule says no"),
        (500, b"x" * 5_000_000, "text/plain", VoucherifyServerError, "xxxx"),
    ],
)  # fmt: skip
def test_bodies_that_are_not_voucherify_errors_still_give_a_clear_error(
    status, body, content_type, cls, shown
):
    error = error_from_response(
        "POST", "/v1/orders", _response(status, body, content_type), RateLimitInfo()
    )

    assert type(error) is cls
    assert shown in str(error)
    assert f"POST /v1/orders -> HTTP {status}" in str(error)
    assert len(str(error)) < 1000
    assert len(error.body_text) <= 2000


@responses.activate
def test_a_2xx_that_is_not_json_is_a_response_error():
    responses.add(responses.GET, "https://api.voucherify.io/v1/orders/o-1", body="<html>hi</html>")
    client = VoucherifyClient("a", "s", retry=RetryPolicy(max_retries=0))
    with pytest.raises(VoucherifyResponseError, match=r"GET /v1/orders/o-1: .*not JSON"):
        client.get_order("o-1")


@responses.activate
def test_a_2xx_with_the_wrong_shape_is_a_response_error():
    responses.add(responses.GET, "https://api.voucherify.io/v1/orders/o-1", json={"status": 3})
    client = VoucherifyClient("a", "s", retry=RetryPolicy(max_retries=0))
    with pytest.raises(VoucherifyResponseError, match="id: Field required"):
        client.get_order("o-1")


@responses.activate
def test_unknown_response_fields_are_kept_not_rejected():
    responses.add(
        responses.GET,
        "https://api.voucherify.io/v1/orders/o-1",
        json={"id": "ord_1", "object": "order", "brand_new_field": {"x": 1}, "amount": 5},
    )
    order = VoucherifyClient("a", "s").get_order("o-1")
    assert order.brand_new_field == {"x": 1}
    assert order.amount == 5
