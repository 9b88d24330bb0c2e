"""The contract checker itself: Voucherify's documents, their examples and the Q1-Q11 patches.

Independent of the package's client and emulator: every request/response here is built
from the documents' own examples or crafted by hand. (Run with ``-p no:django`` until
tests/settings.py exists.)
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockResponse

from tests.contract.openapi_contract import (
    API_NAMES,
    DOWNLOAD_PATCHES,
    PATCHES,
    ContractValidator,
    ContractViolation,
    DocumentChanged,
    download_api,
    load_api,
    patch_q1_order_item_required,
    patch_q2_export_order_fields_metadata,
    patch_q3_any_filter_values,
    patch_q4_scheduled_export_user_id_nullable,
    patch_q5_customer_export_empty_order,
    patch_q6_create_export_400_one_of,
    patch_q7_download_only,
    patch_q8_async_action_result_one_of,
    patch_q9_orders_import_failed_array,
    raw_document,
    validate_exchange,
    validate_request,
    validate_response,
)

BASE = "http://127.0.0.1:8080"
AUTH = {"X-App-Id": "test-app-id", "X-App-Token": "test-app-token"}
JSON = {"Content-Type": "application/json"}
SAMPLE_PATH_PARAMS = {
    "orderId": "ord_cRKOEXiBOj0EZKF7g9n6l0eH",
    "exportId": "exp_pT2Y1mgYsAgRAqsWTGf7PQX7",
    "export_Id": "exp_pT2Y1mgYsAgRAqsWTGf7PQX7",
    "asyncActionId": "aa_0a875d56c805df6601",
}
ALL_PATCHES = frozenset(DOWNLOAD_PATCHES) | {p for ps in PATCHES.values() for p in ps}
PATCHED = ContractValidator()  # builds its OpenAPI objects lazily, on first use


def make_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> requests.PreparedRequest:
    """A PreparedRequest as the client would send it (JSON body, auth headers)."""
    return requests.Request(
        method,
        BASE + path,
        json=body,
        params=params,
        headers=AUTH if headers is None else headers,
    ).prepare()


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The documents' own examples.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocExample:
    api: str
    method: str
    template: str
    operation_id: str
    status: int | None  # None: a request example
    content_type: str
    name: str
    value: Any

    @property
    def id(self) -> str:
        side = "request" if self.status is None else str(self.status)
        return f"{self.api}:{self.operation_id}:{side}:{self.name}"

    def request(self) -> requests.PreparedRequest:
        path = re.sub(r"\{([^}/]+)\}", lambda m: SAMPLE_PATH_PARAMS[m.group(1)], self.template)
        # Download-export shares get-export's template; the token tells them apart (Q7).
        params = {"token": "tok_example"} if self.operation_id == "download-export" else None
        if self.status is None:
            return make_request(self.method, path, self.value, params=params)
        return make_request(
            self.method, path, {} if self.method in {"POST", "PUT"} else None, params=params
        )

    def response_body(self) -> bytes:
        if self.content_type == "application/json":
            return dumps(self.value)
        assert isinstance(self.value, str)
        return self.value.encode("utf-8")

    def check(self, validator: ContractValidator | None = None) -> None:
        """Validate the example (with the default, cached, patched validator if None)."""
        if self.status is None:
            (validator.validate_request if validator else validate_request)(self.request())
        else:
            (validator.validate_response if validator else validate_response)(
                self.request(),
                self.status,
                {"Content-Type": self.content_type},
                self.response_body(),
            )


def _media_examples(media: dict[str, Any]) -> list[tuple[str, Any]]:
    found = [(name, ex["value"]) for name, ex in media.get("examples", {}).items()]
    if "example" in media:
        found.append(("example", media["example"]))
    return found


def collect_examples() -> list[DocExample]:
    """Every request/response example in paths.*.*.requestBody and responses.*, in order."""
    examples: list[DocExample] = []
    for api in API_NAMES:
        for template, item in raw_document(api)["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                common = (api, method.upper(), template, op["operationId"])
                for ctype, media in op.get("requestBody", {}).get("content", {}).items():
                    for name, value in _media_examples(media):
                        examples.append(DocExample(*common, None, ctype, name, value))
                for status, response in op.get("responses", {}).items():
                    for ctype, media in response.get("content", {}).items():
                        for name, value in _media_examples(media):
                            examples.append(DocExample(*common, int(status), ctype, name, value))
    return examples


EXAMPLES = collect_examples()
EXAMPLES_BY_ID = {ex.id: ex for ex in EXAMPLES}


def example(example_id: str) -> DocExample:
    return EXAMPLES_BY_ID[example_id]


def test_example_count_matches_validation_md() -> None:
    assert len(EXAMPLES) == 47
    assert len(EXAMPLES_BY_ID) == 47, "example ids must be unique"


@pytest.mark.parametrize("doc_example", EXAMPLES, ids=[ex.id for ex in EXAMPLES])
def test_document_example_passes_patched_documents(doc_example: DocExample) -> None:
    doc_example.check()


# Q5: "Get Export" and the third entry of "List Exports" are *customer* exports with
# "order": "" and result.url "{{internalVoucherifyURL}}". They pass with the Q5 patch, but
# are no model for an order export: see test_order_export_with_empty_order_is_rejected.

# With no patch at all, exactly these examples fail (VALIDATION.md counts 32 "fail their own
# schema"; the download 200 fails too here, because without Q7 it routes to get-export. The
# download 401 passes even so: get-export doesn't declare 401, so it is checked against Error
# (Q10), the very schema download-export declares.)
FAILING_UNPATCHED = {
    "orders:create-order:request:Example",
    "orders:create-order:request:Example 2",
    "orders:import-orders:request:Example",
    "orders:create-order-export:request:Using fields",
    "orders:create-order-export:request:Using fields and filters",
    "orders:create-order-export:200:Example",
    "exports:create-export:400:Invalid Export Fields",
    "exports:create-export:400:Invalid Payload",
    "exports:list-exports:200:List Exports",
    "exports:get-export:200:Get Export",
    "exports:download-export:200:CSV file contents",
} | {ex.id for ex in EXAMPLES if ex.operation_id == "get-async-action" and ex.status == 200}


def test_unpatched_documents_fail_exactly_the_known_examples() -> None:
    unpatched = ContractValidator(skip=ALL_PATCHES)
    failing = set()
    for ex in EXAMPLES:
        try:
            ex.check(unpatched)
        except ContractViolation:
            failing.add(ex.id)
    assert len(FAILING_UNPATCHED) == 33
    assert failing == FAILING_UNPATCHED


# --------------------------------------------------------------------------------------------
# Each patch is needed: a case that fails without it (all other patches applied) and
# passes with it.
# --------------------------------------------------------------------------------------------

Check = Callable[[ContractValidator], Any]


def _request_check(prepared: requests.PreparedRequest) -> Check:
    return lambda v: v.validate_request(prepared)


def _response_check(prepared: requests.PreparedRequest, status: int, body: Any) -> Check:
    return lambda v: v.validate_response(prepared, status, JSON, dumps(body))


def _example_check(example_id: str) -> Check:
    return example(example_id).check


ORDER_EXPORT_DONE = {
    "id": "exp_pT2Y1mgYsAgRAqsWTGf7PQX7",
    "object": "export",
    "created_at": "2024-05-01T10:00:00.000Z",
    "status": "DONE",
    "channel": "API",
    "exported_object": "order",
    "parameters": {
        "order": "-created_at",
        "fields": ["id", "source_id", "status", "metadata.payment_mean"],
        "filters": {"junction": "and"},
    },
    "result": {
        "url": "https://download.voucherify.io/v1/exports/exp_pT2Y1mgYsAgRAqsWTGf7PQX7?token=t"
    },
    "user_id": None,
}
ORDER_EXPORT_SCHEDULED = {
    "id": "exp_pT2Y1mgYsAgRAqsWTGf7PQX7",
    "object": "export",
    "created_at": "2024-05-01T10:00:00.000Z",
    "status": "SCHEDULED",
    "channel": "API",
    "exported_object": "order",
    "parameters": {"fields": ["id", "source_id", "status"]},
    "result": None,
    "user_id": None,
}
CREATED_AT_FILTER = {
    "created_at": {
        "conditions": {"$after": ["2024-01-01T00:00:00Z"], "$before": "2024-02-01T00:00:00Z"}
    }
}
ORDERS_IMPORT_ALL_OK = {
    "id": "aa_0a875d56c805df6601",
    "type": "ORDERS.IMPORT",
    "status": "DONE",
    "operation_status": "SUCCESS",
    "result": {
        "message": "2 order(s) imported successfully, 0 failed.",
        "failed": [],
        "done_count": 2,
        "failed_count": 0,
    },
    "created_at": "2024-05-01T10:00:00.000Z",
    "updated_at": "2024-05-01T10:00:01.000Z",
    "request_id": "v-0baa1ad023d0656a84",
    "progress": 100,
    "processing_time": 1000,
    "object": "async_action",
}
EXPORT_PATH = "/v1/exports/exp_pT2Y1mgYsAgRAqsWTGf7PQX7"
ASYNC_PATH = "/v1/async-actions/aa_0a875d56c805df6601"

PATCH_NEEDED_CASES: list[tuple[str, Callable[..., None], Check]] = [
    (
        "q1-orders-create-example",
        patch_q1_order_item_required,
        _example_check("orders:create-order:request:Example"),
    ),
    (
        "q2-orders-export-request-example",
        patch_q2_export_order_fields_metadata,
        _example_check("orders:create-order-export:request:Using fields"),
    ),
    (
        "q2-exports-get-order-export-metadata-field",
        patch_q2_export_order_fields_metadata,
        _response_check(make_request("GET", EXPORT_PATH), 200, ORDER_EXPORT_DONE),
    ),
    (
        "q3-orders-export-scalar-condition-example",
        patch_q3_any_filter_values,
        _example_check("orders:create-order-export:request:Using fields and filters"),
    ),
    (
        "q3-orders-export-created-at-filter",
        patch_q3_any_filter_values,
        _request_check(
            make_request(
                "POST", "/v1/orders/export", {"parameters": {"filters": CREATED_AT_FILTER}}
            )
        ),
    ),
    (
        "q3-exports-create-created-at-filter",
        patch_q3_any_filter_values,
        _request_check(
            make_request(
                "POST",
                "/v1/exports",
                {"exported_object": "order", "parameters": {"filters": CREATED_AT_FILTER}},
            )
        ),
    ),
    (
        "q4-orders-export-200-example",
        patch_q4_scheduled_export_user_id_nullable,
        _example_check("orders:create-order-export:200:Example"),
    ),
    (
        "q4-exports-create-200-user-id-null",
        patch_q4_scheduled_export_user_id_nullable,
        _response_check(
            make_request("POST", "/v1/exports", {"exported_object": "order"}),
            200,
            ORDER_EXPORT_SCHEDULED,
        ),
    ),
    (
        "q5-get-export-example",
        patch_q5_customer_export_empty_order,
        _example_check("exports:get-export:200:Get Export"),
    ),
    (
        "q6-create-export-400-example",
        patch_q6_create_export_400_one_of,
        _example_check("exports:create-export:400:Invalid Payload"),
    ),
    (
        "q7-download-200-example",
        patch_q7_download_only,
        _example_check("exports:download-export:200:CSV file contents"),
    ),
    (
        "q8-orders-metadata-key-purge-example",
        patch_q8_async_action_result_one_of,
        _example_check("async-actions:get-async-action:200:ORDERS.METADATA_KEY_PURGE"),
    ),
    (
        "q9-orders-import-example",
        patch_q9_orders_import_failed_array,
        _example_check("async-actions:get-async-action:200:ORDERS.IMPORT"),
    ),
    (
        "q9-orders-import-failed-empty",
        patch_q9_orders_import_failed_array,
        _response_check(make_request("GET", ASYNC_PATH), 200, ORDERS_IMPORT_ALL_OK),
    ),
]


@pytest.mark.parametrize(
    ("patch", "check"),
    [case[1:] for case in PATCH_NEEDED_CASES],
    ids=[case[0] for case in PATCH_NEEDED_CASES],
)
def test_each_patch_is_needed(patch: Callable[..., None], check: Check) -> None:
    with pytest.raises(ContractViolation):
        check(ContractValidator(skip={patch}))
    check(PATCHED)


def test_every_patch_has_a_needed_case() -> None:
    assert {case[1] for case in PATCH_NEEDED_CASES} == ALL_PATCHES


@pytest.mark.parametrize("patch", sorted(ALL_PATCHES, key=lambda p: p.__name__))
def test_patch_fails_loudly_once_the_defect_is_gone(patch: Callable[..., None]) -> None:
    assert re.fullmatch(r"patch_q\d+_\w+", patch.__name__)
    assert patch.__doc__ and patch.__doc__.strip()
    # Q7 is applied to exports.json, for the download-only object.
    api = next((name for name, ps in PATCHES.items() if patch in ps), "exports")
    doc = raw_document(api)
    patch(doc)
    with pytest.raises(DocumentChanged):
        patch(doc)  # the defect is gone now, as in a fixed copy of the document
    with pytest.raises(DocumentChanged):
        patch({"info": {"title": "empty"}, "paths": {}, "components": {"schemas": {}}})


def test_q10_undeclared_error_status_is_checked_against_error_schema() -> None:
    prepared = make_request("POST", "/v1/orders", {"items": [{"quantity": 0}]})
    body = {
        "code": 400,
        "key": "invalid_order",
        "message": "Invalid Order",
        "details": "Property .items[0].quantity cannot be lower than 1",
        "request_id": "v-0c5561d945cb0f0fb5",
    }
    with (
        warnings.catch_warnings(),
        pytest.raises(ResponseNotFound),
    ):
        warnings.simplefilter("ignore", UserWarning)
        load_api("orders").validate_response(
            RequestsOpenAPIRequest(prepared), MockResponse(dumps(body), status_code=400)
        )
    validate_response(prepared, 400, JSON, dumps(body))
    with pytest.raises(ContractViolation, match="'message' is a required property"):
        validate_response(prepared, 400, JSON, dumps({"code": 400, "details": "x"}))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/orders", 400),
        ("PUT", "/v1/orders/ord_1", 400),
        ("PUT", "/v1/orders/ord_1", 404),
        ("GET", "/v1/orders", 401),
        ("POST", "/v1/orders/import", 405),
        ("POST", "/v1/orders/export", 429),
        ("GET", EXPORT_PATH, 500),
        ("GET", ASYNC_PATH, 503),
    ],
)
def test_q10_undeclared_error_statuses_accepted(method: str, path: str, status: int) -> None:
    body = {"code": status, "message": "Some error"}
    prepared = make_request(method, path, {} if method in {"POST", "PUT"} else None)
    validate_response(
        prepared, status, {"Content-Type": "application/json; charset=utf-8"}, dumps(body)
    )


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/v1/orders", 404), ("GET", "/v1/orders", 400), ("GET", "/v1/orders/o", 418)],
)
def test_q10_other_undeclared_statuses_rejected(method: str, path: str, status: int) -> None:
    prepared = make_request(method, path, {} if method == "POST" else None)
    with pytest.raises(ContractViolation, match=f"status {status} is neither declared"):
        validate_response(prepared, status, JSON, dumps({"code": status, "message": "x"}))


def test_q11_auth_headers_are_asserted_because_openapi_core_does_not() -> None:
    prepared = make_request("GET", "/v1/orders", headers={"X-App-Id": "test-app-id"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        load_api("orders").validate_request(RequestsOpenAPIRequest(prepared))  # passes
    with pytest.raises(ContractViolation, match=r"missing auth header.*X-App-Token"):
        validate_request(prepared)


# --------------------------------------------------------------------------------------------
# The patched documents still reject what they should.
# --------------------------------------------------------------------------------------------

GOOD_ORDER = {
    "source_id": "shop-order-1001",
    "status": "PAID",
    "amount": 20000,
    "created_at": "2024-05-01T10:00:00+02:00",
    "customer": {"source_id": "shop-customer-7", "email": "ann@example.com"},
    "items": [
        {
            "source_id": "sku-1",
            "related_object": "sku",
            "quantity": 2,
            "price": 10000,
            "amount": 20000,
        }
    ],
    "metadata": {"channel": "web"},
}
GOOD_ORDER_RESPONSE = {
    "id": "ord_cRKOEXiBOj0EZKF7g9n6l0eH",
    "source_id": "shop-order-1001",
    "created_at": "2024-05-01T08:00:00.000Z",
    "updated_at": None,
    "status": "PAID",
    "amount": 20000,
    "total_amount": 20000,
    "items": [
        {
            "object": "order_item",
            "source_id": "sku-1",
            "related_object": "sku",
            "quantity": 2,
            "price": 10000,
            "amount": 20000,
            "subtotal_amount": 20000,
        }
    ],
    "metadata": {"channel": "web"},
    "customer": {"id": "cust_1", "object": "customer"},
    "customer_id": "cust_1",
    "referrer_id": None,
    "object": "order",
    "redemptions": {},
}


def test_good_order_exchange_passes() -> None:
    route = validate_exchange(
        make_request("POST", "/v1/orders", GOOD_ORDER),
        200,
        {"Content-Type": "application/json; charset=utf-8"},
        dumps(GOOD_ORDER_RESPONSE),
    )
    assert route.operation_id == "create-order"
    validate_request(make_request("PUT", "/v1/orders/shop-order-1001", {"status": "CANCELED"}))
    validate_request(make_request("POST", "/v1/orders/import", [GOOD_ORDER, GOOD_ORDER]))
    validate_request(make_request("POST", "/v1/orders/export", {}))
    validate_request(
        make_request("GET", "/v1/orders", params={"limit": 100, "page": 2, "order": "-created_at"})
    )
    validate_response(make_request("GET", EXPORT_PATH), 200, JSON, dumps(ORDER_EXPORT_DONE))
    validate_response(make_request("GET", ASYNC_PATH), 200, JSON, dumps(ORDERS_IMPORT_ALL_OK))


def test_request_with_charset_content_type_passes() -> None:
    prepared = make_request(
        "POST",
        "/v1/orders",
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )
    prepared.prepare_body(data=dumps(GOOD_ORDER), files=None)
    assert prepared.headers["Content-Type"] == "application/json; charset=utf-8"
    validate_request(prepared)


REJECTED_REQUESTS: list[tuple[str, requests.PreparedRequest, str]] = [
    (
        "bad-order-status",
        make_request("POST", "/v1/orders", {**GOOD_ORDER, "status": "SHIPPED"}),
        r"status: 'SHIPPED' is not one of",
    ),
    (
        "bad-order-status-on-update",
        make_request("PUT", "/v1/orders/o1", {"status": "cancelled"}),
        r"status: 'cancelled' is not one of",
    ),
    (
        "unknown-export-field",
        make_request("POST", "/v1/orders/export", {"parameters": {"fields": ["id", "colour"]}}),
        r"(?s)parameters/fields/1: .*'colour' is not one of",
    ),
    (
        "bare-metadata-dot-export-field",
        make_request("POST", "/v1/orders/export", {"parameters": {"fields": ["metadata."]}}),
        r"(?s)parameters/fields/0: .*'metadata\.' does not match",
    ),
    (
        "naive-created-at",
        make_request("POST", "/v1/orders", {**GOOD_ORDER, "created_at": "2024-01-01T00:00:00"}),
        r"created_at: '2024-01-01T00:00:00' is not a 'date-time'",
    ),
    (
        "float-amount",
        make_request("POST", "/v1/orders", {**GOOD_ORDER, "amount": 20000.0}),
        r"amount: 20000.0 is not of type 'integer'",
    ),
    (
        "float-item-amount-in-import",
        make_request(
            "POST",
            "/v1/orders/import",
            [{**GOOD_ORDER, "items": [{**GOOD_ORDER["items"][0], "amount": 20000.0}]}],
        ),
        r"0/items/0/amount: 20000.0 is not of type 'integer'",
    ),
    (
        "limit-101",
        make_request("GET", "/v1/orders", params={"limit": 101}),
        r"query parameter limit: 101 is greater than the maximum of 100",
    ),
    (
        "bad-list-order",
        make_request("GET", "/v1/orders", params={"order": "-amount"}),
        r"Invalid query parameter: order",
    ),
    (
        "missing-x-app-token",
        make_request("POST", "/v1/orders", GOOD_ORDER, headers={"X-App-Id": "test-app-id"}),
        r"missing auth header\(s\) X-App-Token",
    ),
    (
        "missing-body",
        make_request("POST", "/v1/orders/export"),
        r"MissingRequiredRequestBody",
    ),
    (
        "delete-order-does-not-exist",
        make_request("DELETE", "/v1/orders/o1"),
        r"no DELETE operation",
    ),
    (
        "unknown-path",
        make_request("GET", "/v1/customers"),
        r"no Voucherify document covers",
    ),
]


@pytest.mark.parametrize(
    ("prepared", "pattern"),
    [case[1:] for case in REJECTED_REQUESTS],
    ids=[case[0] for case in REJECTED_REQUESTS],
)
def test_patched_documents_reject_bad_request(
    prepared: requests.PreparedRequest, pattern: str
) -> None:
    with pytest.raises(ContractViolation, match=pattern) as excinfo:
        validate_request(prepared)
    assert "request failed" in str(excinfo.value)


REJECTED_RESPONSES: list[tuple[str, requests.PreparedRequest, int, dict[str, str], Any, str]] = [
    (
        "bad-order-status",
        make_request("GET", "/v1/orders/o1"),
        200,
        JSON,
        {**GOOD_ORDER_RESPONSE, "status": "SHIPPED"},
        r"status: 'SHIPPED' is not one of",
    ),
    (
        "naive-updated-at",
        make_request("GET", "/v1/orders/o1"),
        200,
        JSON,
        {**GOOD_ORDER_RESPONSE, "updated_at": "2024-05-01T10:00:00"},
        r"updated_at: '2024-05-01T10:00:00' is not a 'date-time'",
    ),
    (
        "float-total-amount",
        make_request("POST", "/v1/orders", {}),
        200,
        JSON,
        {**GOOD_ORDER_RESPONSE, "total_amount": 20000.0},
        r"total_amount: 20000.0 is not of type 'integer'",
    ),
    (
        "item-without-object",
        make_request("GET", "/v1/orders/o1"),
        200,
        JSON,
        {**GOOD_ORDER_RESPONSE, "items": [{"source_id": "sku-1", "quantity": 1}]},
        r"items/0: 'object' is a required property",
    ),
    (
        "null-customer",
        make_request("GET", "/v1/orders/o1"),
        200,
        JSON,
        {**GOOD_ORDER_RESPONSE, "customer": None},
        r"customer: None for not nullable",
    ),
    (
        "list-without-total",
        make_request("GET", "/v1/orders"),
        200,
        JSON,
        {"object": "list", "data_ref": "orders", "orders": []},
        r"'total' is a required property",
    ),
    (
        "unknown-export-field",
        make_request("GET", EXPORT_PATH),
        200,
        JSON,
        {
            **ORDER_EXPORT_DONE,
            "parameters": {**ORDER_EXPORT_DONE["parameters"], "fields": ["id", "colour"]},
        },
        r"(?s)closest \(#4\).*parameters/fields/1: .*'colour' is not one of",
    ),
    (
        "order-export-with-empty-order",
        make_request("GET", EXPORT_PATH),
        200,
        JSON,
        {**ORDER_EXPORT_DONE, "parameters": {**ORDER_EXPORT_DONE["parameters"], "order": ""}},
        r"parameters/order: '' is not one of \['-created_at'",
    ),
    (
        "done-count-two",
        make_request("GET", ASYNC_PATH),
        200,
        JSON,
        {**ORDERS_IMPORT_ALL_OK, "result": {**ORDERS_IMPORT_ALL_OK["result"], "done_count": "two"}},
        r"done_count: 'two' is not of type 'integer'",
    ),
    (
        "failed-source-id-number",
        make_request("GET", ASYNC_PATH),
        200,
        JSON,
        {
            **ORDERS_IMPORT_ALL_OK,
            "result": {**ORDERS_IMPORT_ALL_OK["result"], "failed": [{"source_id": 7}]},
        },
        r"result/failed/0/source_id: 7 is not of type 'string'",
    ),
    (
        "async-action-result-null",
        make_request("GET", ASYNC_PATH),
        200,
        JSON,
        {**ORDERS_IMPORT_ALL_OK, "result": None},
        r"result: None for not nullable",
    ),
    (
        "async-action-bad-status",
        make_request("GET", ASYNC_PATH),
        200,
        JSON,
        {**ORDERS_IMPORT_ALL_OK, "status": "SUCCESS"},
        r"status: 'SUCCESS' is not one of",
    ),
    (
        "download-as-text-csv",
        make_request("GET", EXPORT_PATH, params={"token": "t"}),
        200,
        {"Content-Type": "text/csv"},
        "id,source_id\n",
        r"download-export.*text/csv",
    ),
    (
        "declared-404-without-message",
        make_request("GET", "/v1/orders/o1"),
        404,
        JSON,
        {"code": 404, "key": "not_found"},
        r"'message' is a required property",
    ),
    (
        "undeclared-error-as-html",
        make_request("GET", "/v1/orders"),
        502,
        {"Content-Type": "text/html"},
        "<html>Bad gateway</html>",
        r"Content-Type 'text/html' is not JSON",
    ),
    (
        "json-without-content-type",
        make_request("GET", "/v1/orders/o1"),
        200,
        {},
        GOOD_ORDER_RESPONSE,
        r"(?s)get-order .*: response failed: 200 '': .*mimetype not found",
    ),
]


@pytest.mark.parametrize(
    ("prepared", "status", "headers", "body", "pattern"),
    [case[1:] for case in REJECTED_RESPONSES],
    ids=[case[0] for case in REJECTED_RESPONSES],
)
def test_patched_documents_reject_bad_response(
    prepared: requests.PreparedRequest,
    status: int,
    headers: dict[str, str],
    body: Any,
    pattern: str,
) -> None:
    raw = body.encode("utf-8") if isinstance(body, str) else dumps(body)
    with pytest.raises(ContractViolation, match=pattern) as excinfo:
        validate_response(prepared, status, headers, raw)
    assert "response failed" in str(excinfo.value)


def test_violation_message_is_readable() -> None:
    prepared = make_request("POST", "/v1/orders", {"status": "SHIPPED", "amount": 1.5})
    with pytest.raises(ContractViolation) as excinfo:
        validate_exchange(prepared, 200, JSON, dumps(GOOD_ORDER_RESPONSE))
    message = str(excinfo.value)
    assert message.startswith("create-order (POST /v1/orders, orders): request failed:")
    assert "- amount: 1.5 is not of type 'integer'" in message
    assert "- status: 'SHIPPED' is not one of" in message
    assert isinstance(excinfo.value, AssertionError)


def test_validate_exchange_checks_the_response_too() -> None:
    with pytest.raises(ContractViolation, match=r"create-order .*: response failed"):
        validate_exchange(
            make_request("POST", "/v1/orders", GOOD_ORDER),
            200,
            JSON,
            dumps({**GOOD_ORDER_RESPONSE, "amount": "20000"}),
        )


def test_load_api_is_cached_and_host_agnostic() -> None:
    assert load_api("orders") is load_api("orders")
    assert download_api() is download_api()
    assert download_api() is not load_api("exports")
    for host in ("http://localhost:1", "https://api.voucherify.io", "http://testserver"):
        prepared = requests.Request("GET", f"{host}/v1/orders/ord_1", headers=AUTH).prepare()
        validate_request(prepared)
    with pytest.raises(ValueError, match="unknown API document"):
        load_api("customers")
