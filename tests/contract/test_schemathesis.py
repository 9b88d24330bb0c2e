"""A property-based tool no one here wrote attacks the emulator's HTTP door with the documents.

Schemathesis, in positive mode only (requests the documents allow), generates requests for
every operation of Voucherify's Orders, Exports and Async Actions documents (patched as
VALIDATION.md says: Q1-Q9 are the documents' own defects) and checks each answer: no 5xx,
a declared status, a declared content type, a body that matches the response schema, and
valid data accepted. The run is bounded (a few examples per operation, no shrinking, a
fixed seed) so CI stays fast; raise ``VOUCHERIFY_SCHEMATHESIS_EXAMPLES`` for a longer hunt.

What the emulator does differently from the documents on purpose is listed, with a reason
and a test, in docs/emulator.md; the few checks switched off here point there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.specs.openapi import checks

from django_voucherify_orders.emulator import Emulator
from django_voucherify_orders.emulator.filters import (
    COMPARING_CONDITIONS,
    DATE_FIELDS,
    EVALUATED_CONDITIONS,
    FILTER_FIELDS,
    is_metadata_key,
)
from django_voucherify_orders.emulator.util import parse_iso
from tests.contract.openapi_contract import patched_document

APP_ID, SECRET = "test-app-id", "test-secret-key"
AUTH = {"X-App-Id": APP_ID, "X-App-Token": SECRET}
MAX_EXAMPLES = int(os.environ.get("VOUCHERIFY_SCHEMATHESIS_EXAMPLES", "10"))
LONG_HUNT = os.environ.get("VOUCHERIFY_SCHEMATHESIS_COVERAGE") == "1"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.positive_data_acceptance,
]


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "generation": {
                "mode": "positive",
                "max-examples": MAX_EXAMPLES,
                "no-shrink": True,
                "deterministic": True,
                "with-security-parameters": False,
                "database": "none",
            },
            # The documents' own examples are checked in test_openapi_documents.py and
            # test_reference_examples.py. The coverage phase (every boundary value of every
            # schema, thousands of calls for exports) is for a long hunt only.
            "phases": {
                "examples": {"enabled": False},
                "coverage": {"enabled": LONG_HUNT},
            },
            "seed": 20261201,
        }
    )


def _document(name: str) -> dict[str, Any]:
    doc = patched_document(name)
    doc["servers"] = [{"url": "http://127.0.0.1"}]  # replaced by base_url per call
    return doc


@pytest.fixture(scope="module")
def door() -> Iterator[Emulator]:
    emulator = Emulator(APP_ID, SECRET, rate_limit_per_minute=None)
    with emulator.serve():
        yield emulator


# The order every PUT/GET by id is pointed at: an id that names no order is a 404 that
# only PUT leaves undeclared (Q10), and says nothing about the emulator.
TARGET = "schemathesis-order"


def _within_listed_deviations(value: Any, key: str = "") -> Any:
    """Move generated values out of the places docs/emulator.md lists as stricter.

    S1 quantities below 1, S2 negative amounts and prices, S3/S4 ids that must name an
    existing customer or order, S5 `id` in an update body, S6 moments with no UTC form.
    Everything else is left as generated.
    """
    if isinstance(value, list):
        return [_within_listed_deviations(v, key) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("id", "referrer_id") and key != "product" and key != "sku":
                continue
            out[k] = _within_listed_deviations(v, k)
        return out
    if isinstance(value, int) and not isinstance(value, bool):
        if key in ("quantity", "initial_quantity"):
            return max(1, value)
        if key in ("discount_quantity", "amount", "initial_amount", "discount_amount", "price"):
            return max(0, value)
    if isinstance(value, float) and key == "price":
        return max(0.0, value)
    if key == "created_at" and isinstance(value, str) and parse_iso(value) is None:
        return "2024-01-01T00:00:00Z"
    return value


def _filters_within_listed_deviations(body: Any) -> Any:
    """S7: filters only on the fields the emulator knows, with the conditions it evaluates."""
    filters = body.get("parameters", {}).get("filters") if isinstance(body, dict) else None
    if not isinstance(filters, dict):
        return body
    kept: dict[str, Any] = {}
    for name, spec in filters.items():
        if name == "junction":
            kept[name] = spec
        elif name in FILTER_FIELDS or is_metadata_key(name):
            conditions = spec.get("conditions") if isinstance(spec, dict) else None
            if isinstance(conditions, dict):
                conditions = {
                    op: v
                    for op, v in conditions.items()
                    if op in EVALUATED_CONDITIONS and _comparable(name, op, v)
                }
                spec = {**spec, "conditions": conditions}
            kept[name] = spec
    return {**body, "parameters": {**body["parameters"], "filters": kept}}


def _comparable(name: str, op: str, value: Any) -> bool:
    """S7: an ordering condition compares with a date (date fields) or a number."""
    if op not in COMPARING_CONDITIONS:
        return True
    values = value if isinstance(value, list) else [value]
    is_date = name in DATE_FIELDS or op in ("$after", "$before")
    if is_date:
        return all(parse_iso(v) is not None for v in values)
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


orders = schemathesis.openapi.from_dict(_document("orders"), config=_config())


@orders.parametrize()
def test_orders_document(case, door) -> None:
    door.reset()  # each example on a fresh project with one order: no state between examples
    _seed(door)
    # In the test, not in hooks: hooks don't reach the examples and coverage phases.
    if case.body is not None and not isinstance(case.body, NotSet):
        case.body = _filters_within_listed_deviations(_within_listed_deviations(case.body))
    if case.path_parameters and "orderId" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "orderId": TARGET}
    case.call_and_validate(base_url=door.url, headers=AUTH, checks=CHECKS)


exports = schemathesis.openapi.from_dict(_document("exports"), config=_config())


@exports.parametrize()
def test_exports_document(case, door) -> None:
    door.reset()
    if isinstance(case.body, dict) and case.body.get("exported_object") is not None:
        if case.body["exported_object"] != "order":
            # S8: the emulator exports orders only, and says so.
            response = case.call(base_url=door.url, headers=AUTH)
            assert response.status_code == 400, response.text
            assert "exports only orders" in response.json()["details"]
            return
        case.body = _filters_within_listed_deviations(case.body)
    if case.operation.path == "/v1/exports/{export_Id}":
        # Q7: without `token` this is get-export, which shares the path; a download has one.
        case.query = {**(case.query or {}), "token": "not-a-token"}
    case.call_and_validate(base_url=door.url, headers=AUTH, checks=CHECKS)


async_actions = schemathesis.openapi.from_dict(_document("async-actions"), config=_config())


@async_actions.parametrize()
def test_async_actions_document(case, door) -> None:
    door.reset()
    case.call_and_validate(base_url=door.url, headers=AUTH, checks=CHECKS)


def _seed(door: Emulator) -> None:
    requests.post(
        f"{door.url}/v1/orders", json={"source_id": TARGET, "amount": 100}, headers=AUTH, timeout=5
    ).raise_for_status()
