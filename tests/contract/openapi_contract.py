"""Contract checks against Voucherify's own OpenAPI documents (test support, not a test file).

The documents in ``tests/contract/openapi/`` are byte copies of Voucherify's public
``documentation/openapi/{orders,exports,async-actions}.json``. They have known defects, listed
as Q1-Q11 in ``/work/shared/voucherify/VALIDATION.md``; Q1-Q9 are patched here, one small
function each, and Q10/Q11 are handled in the validation code. Every patch first asserts that
the node it changes still exists and still has the defect, so a refreshed copy of the
documents fails loudly instead of being patched silently.

Public API::

    load_api(name) -> openapi_core.OpenAPI          # "orders", "exports", "async-actions"
    download_api() -> openapi_core.OpenAPI          # exports.json without get-export (Q7)
    validate_request(prepared_request)
    validate_response(prepared_request, status, headers, body)
    validate_exchange(prepared_request, status, headers, body)

All three ``validate_*`` functions raise :class:`ContractViolation` (an ``AssertionError``)
whose message names the operation, says whether the request or the response failed, and
lists the per-field jsonschema errors. :class:`ContractValidator` does the work; build one
with ``skip=`` to see what a document does without some of the patches.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from jsonschema.exceptions import ValidationError
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockResponse
from openapi_schema_validator import OAS30Validator, oas30_format_checker

__all__ = [
    "API_NAMES",
    "ASYNC_ACTION_RESULT_SCHEMAS",
    "AUTH_HEADERS",
    "DOCS_DIR",
    "DOWNLOAD_PATCHES",
    "PATCHES",
    "UNDECLARED_ERROR_STATUSES",
    "ContractValidator",
    "ContractViolation",
    "DocumentChanged",
    "Route",
    "download_api",
    "load_api",
    "patched_document",
    "raw_document",
    "validate_exchange",
    "validate_request",
    "validate_response",
]

DOCS_DIR = Path(__file__).resolve().parent / "openapi"
API_NAMES = ("orders", "exports", "async-actions")

Document = dict[str, Any]
Patch = Callable[[Document], None]


class ContractViolation(AssertionError):
    """A request or a response does not match Voucherify's OpenAPI documents."""


# --------------------------------------------------------------------------------------------
# Patches for the documents' defects. Each takes the whole document dict and changes it in
# place. ``_node`` walks to the node and fails loudly when it has gone.
# --------------------------------------------------------------------------------------------


class DocumentChanged(AssertionError):
    """A patched node is gone or no longer has its defect: review the patch."""


def _node(doc: Document, *keys: str | int) -> Any:
    node: Any = doc
    for i, key in enumerate(keys):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = "/".join(str(k) for k in keys[: i + 1])
            raise DocumentChanged(
                f"{_doc_title(doc)}: node {where!r} is gone; the document changed, review the patch"
            ) from None
    return node


def _expect(condition: bool, doc: Document, what: str) -> None:
    if not condition:
        raise DocumentChanged(
            f"{_doc_title(doc)}: {what}; the document changed, review the patch (it may be fixed)"
        )


def _doc_title(doc: Document) -> str:
    return str(doc.get("info", {}).get("title", "OpenAPI document"))


def patch_q1_order_item_required(doc: Document) -> None:
    """Q1 (orders): ``OrderItem.required`` is ``["object"]`` but there is no ``object`` property.

    Every request item without ``object`` fails, and so does every request example of create,
    update and import. The client must not send ``object`` on items, so drop ``required``.
    ``OrderCalculatedItem.required: [object]`` (response items) stays.
    """
    item = _node(doc, "components", "schemas", "OrderItem")
    _expect(
        item.get("required") == ["object"] and "object" not in _node(item, "properties"),
        doc,
        "OrderItem no longer requires an undeclared 'object'",
    )
    del item["required"]


def patch_q2_export_order_fields_metadata(doc: Document) -> None:
    """Q2 (orders, exports): the ``ExportOrderFields`` enum lacks ``metadata.<key>``.

    The description and both request examples export a single metadata property
    (``metadata.payment_mean``). Accept the enum or any ``metadata.<key>``.
    """
    schemas = _node(doc, "components", "schemas")
    fields = _node(schemas, "ExportOrderFields")
    enum = _node(fields, "enum")
    _expect(
        fields.get("type") == "string" and not any(v.startswith("metadata.") for v in enum),
        doc,
        "ExportOrderFields is no longer a plain enum without metadata.<key>",
    )
    schemas["ExportOrderFields"] = {
        "title": fields.get("title", "Export Order Fields"),
        "type": "string",
        "anyOf": [{"enum": enum}, {"pattern": r"^metadata\..+"}],
    }


def patch_q3_any_filter_values(doc: Document) -> None:
    """Q3 (orders, exports): ``Any`` (every filter condition value) can never validate dates.

    It is an ``array`` of ``oneOf[string, string/date, string/date-time, number, object]``, so a
    date or date-time string matches two branches and every ``$after``/``$before`` filter
    fails; the scalar ``"$more_than": 100000`` of the export example fails ``type: array``.
    Make the items ``anyOf`` and accept either one item or an array of them (the API's 400
    text accepts both ``[condition]`` and ``[condition][index]``).
    """
    schemas = _node(doc, "components", "schemas")
    any_ = _node(schemas, "Any")
    branches = _node(any_, "items", "oneOf")
    formats = {b.get("format") for b in branches if b.get("type") == "string"}
    _expect(
        any_.get("type") == "array" and {None, "date", "date-time"} <= formats,
        doc,
        "Any is no longer an array of overlapping oneOf string branches",
    )
    item = {"anyOf": branches}
    schemas["Any"] = {
        "title": any_.get("title", "Any"),
        "anyOf": [{"type": "array", "items": item}, item],
    }


def patch_q4_scheduled_export_user_id_nullable(doc: Document) -> None:
    """Q4 (orders, exports): ``ExportScheduledBase.user_id`` is a required non-nullable string.

    The order-export example (and every export made through the API channel) has
    ``"user_id": null``. Make it nullable, as ``ExportBase.user_id`` already is.
    """
    base = _node(doc, "components", "schemas", "ExportScheduledBase")
    user_id = _node(base, "properties", "user_id")
    _expect(
        user_id.get("type") == "string"
        and not user_id.get("nullable")
        and "user_id" in base.get("required", []),
        doc,
        "ExportScheduledBase.user_id is no longer a required non-nullable string",
    )
    user_id["nullable"] = True


def patch_q5_customer_export_empty_order(doc: Document) -> None:
    """Q5 (exports): Get Export and List Exports examples return ``"order": ""``.

    Both are *customer* exports, and no ``ExportCustomerOrder`` value is ``""``, so ``oneOf``
    finds no branch. Allow ``""`` for customer exports only: order exports in the documents
    always show a real order (``"-created_at"``), so the emulator must echo one, and
    ``ExportOrderOrder`` keeps rejecting ``""``.
    """
    enum = _node(doc, "components", "schemas", "ExportCustomerOrder", "enum")
    _expect("" not in enum, doc, "ExportCustomerOrder already allows ''")
    enum.append("")


def patch_q6_create_export_400_one_of(doc: Document) -> None:
    """Q6 (exports): POST /v1/exports 400 is ``oneOf`` two identical error shapes.

    ``e_400_invalid_payload`` and ``e_400_invalid_export_fields`` have the same properties and
    no ``required``/enum, so every 400 body matches both and fails. Use ``anyOf``.
    """
    schema = _node(
        doc,
        "paths",
        "/v1/exports",
        "post",
        "responses",
        "400",
        "content",
        "application/json",
        "schema",
    )
    _expect(
        "oneOf" in schema and len(schema["oneOf"]) == 2,
        doc,
        "POST /v1/exports 400 is no longer a oneOf of two",
    )
    schema["anyOf"] = schema.pop("oneOf")


def patch_q7_download_only(doc: Document) -> None:
    """Q7 (exports): ``/v1/exports/{exportId}`` and ``/v1/exports/{export_Id}`` are one template.

    OAS 3.0 forbids it; openapi-core picks the first (get-export, JSON), so a download 200
    ``text/plain`` or 401 can't be validated. Applied only to the copy behind
    :func:`download_api`: delete get-export so the path routes to download-export.
    """
    paths = _node(doc, "paths")
    _node(paths, "/v1/exports/{export_Id}", "get")
    _node(paths, "/v1/exports/{exportId}", "get")
    del paths["/v1/exports/{exportId}"]


def patch_q8_async_action_result_one_of(doc: Document) -> None:
    """Q8 (async-actions): ``AsyncAction.result`` is ``oneOf`` 22 overlapping result schemas.

    None has ``additionalProperties: false`` and most have no ``required``, so any non-empty
    result matches several branches and all 22 Get Async Action examples fail. Use ``anyOf``;
    the validators here then check ``result`` separately against the schema chosen by
    ``type`` (see ``ASYNC_ACTION_RESULT_SCHEMAS``).
    """
    branches = _node(doc, "components", "schemas", "AsyncAction", "allOf")
    result = next(
        (b["properties"]["result"] for b in branches if "result" in b.get("properties", {})), None
    )
    _expect(
        result is not None and "oneOf" in result, doc, "AsyncAction.result is no longer a oneOf"
    )
    assert result is not None
    result["anyOf"] = result.pop("oneOf")


def patch_q9_orders_import_failed_array(doc: Document) -> None:
    """Q9 (async-actions): ORDERS.IMPORT ``result.failed`` is typed as one object.

    The description ("this array shows the failure details") and the example are an array,
    and the example has ``"source_id": null``; an all-success ``failed: []`` fails too. Make it
    an array of the old object, with ``source_id`` nullable.
    """
    props = _node(
        doc,
        "components",
        "schemas",
        "17_res_obj_get_async_action_result_orders_import",
        "properties",
    )
    failed = _node(props, "failed")
    _expect(
        failed.get("type") == "object" and "source_id" in failed.get("properties", {}),
        doc,
        "ORDERS.IMPORT result.failed is no longer a single object",
    )
    item = {k: v for k, v in failed.items() if k != "description"}
    item["properties"]["source_id"]["nullable"] = True
    props["failed"] = {"description": failed.get("description", ""), "type": "array", "items": item}


PATCHES: Mapping[str, tuple[Patch, ...]] = {
    "orders": (
        patch_q1_order_item_required,
        patch_q2_export_order_fields_metadata,
        patch_q3_any_filter_values,
        patch_q4_scheduled_export_user_id_nullable,
    ),
    "exports": (
        patch_q2_export_order_fields_metadata,
        patch_q3_any_filter_values,
        patch_q4_scheduled_export_user_id_nullable,
        patch_q5_customer_export_empty_order,
        patch_q6_create_export_400_one_of,
    ),
    "async-actions": (
        patch_q8_async_action_result_one_of,
        patch_q9_orders_import_failed_array,
    ),
}
DOWNLOAD_PATCHES: tuple[Patch, ...] = (*PATCHES["exports"], patch_q7_download_only)

# Q8: ``result`` of GET /v1/async-actions/{id} is checked against the schema for its ``type``.
# Only the order types are mapped; the others are not this app's business (and e.g. the
# VOUCHERS.IMPORT schema has the same defect as Q9, unpatched here).
ASYNC_ACTION_RESULT_SCHEMAS: Mapping[str, str] = {
    "ORDERS.IMPORT": "17_res_obj_get_async_action_result_orders_import",
    "ORDERS.METADATA_KEY_PURGE": "17_res_obj_get_async_action_result_orders_metadata_key_purge",
}

# Q10: error statuses the documents don't declare. Their bodies are checked against
# ``components/schemas/Error``. Key: (method, path template); "*" = any operation.
UNDECLARED_ERROR_STATUSES: Mapping[tuple[str, str], frozenset[int]] = {
    ("*", "*"): frozenset({401, 405, 429}),
    ("POST", "/v1/orders"): frozenset({400}),
    ("PUT", "/v1/orders/{orderId}"): frozenset({400, 404}),
}

AUTH_HEADERS = ("X-App-Id", "X-App-Token")


@functools.cache
def _raw_text(name: str) -> str:
    if name not in API_NAMES:
        raise ValueError(f"unknown API document {name!r}; expected one of {API_NAMES}")
    return (DOCS_DIR / f"{name}.json").read_text(encoding="utf-8")


def raw_document(name: str) -> Document:
    """A fresh copy of a document as shipped, with ``servers`` made host-agnostic."""
    doc = json.loads(_raw_text(name))
    # The documents' server is https://{cluster}.voucherify.io; "/" matches on the path alone,
    # whatever the host and port (the emulator listens on 127.0.0.1:PORT).
    doc["servers"] = [{"url": "/"}]
    return doc


def patched_document(
    name: str, *, patches: Iterable[Patch] | None = None, skip: Collection[Patch] = ()
) -> Document:
    """A fresh copy of a document with its patches (default ``PATCHES[name]``) minus ``skip``."""
    doc = raw_document(name)
    for patch in PATCHES[name] if patches is None else patches:
        if patch not in skip:
            patch(doc)
    return doc


# --------------------------------------------------------------------------------------------
# Routing and validation.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Which document and operation an HTTP request belongs to."""

    api: str  # "orders", "exports", "async-actions" or "download"
    method: str  # upper case
    template: str  # path template as in the document
    operation_id: str
    declared_statuses: frozenset[int]

    def __str__(self) -> str:
        return f"{self.operation_id} ({self.method} {self.template}, {self.api})"


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile(
        "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p) + "/?$"
    )


def _request_parts(prepared: requests.PreparedRequest) -> tuple[str, str, dict[str, list[str]]]:
    if not isinstance(prepared, requests.PreparedRequest):
        raise TypeError(f"expected a requests.PreparedRequest, got {type(prepared).__name__}")
    url = urlsplit(prepared.url or "")
    return (prepared.method or "").upper(), url.path, parse_qs(url.query, keep_blank_values=True)


def _closest_branches(err: ValidationError) -> dict[int, list[ValidationError]]:
    """For a failed oneOf/anyOf: the branches that got furthest (their errors sit deepest)."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in err.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        branches.setdefault(int(index), []).append(sub)
    depth = {i: min(len(e.absolute_path) for e in subs) for i, subs in branches.items()}
    best = max(depth.values())
    return {i: subs for i, subs in branches.items() if depth[i] == best}


def _format_schema_error(
    err: ValidationError, indent: str = "  ", depth: int = 0, prefix: str = ""
) -> list[str]:
    where = "/".join([prefix] * bool(prefix) + [str(p) for p in err.absolute_path]) or "<root>"
    if err.validator in ("oneOf", "anyOf") and err.context:
        closest = _closest_branches(err)
        numbers = ", ".join(f"#{i}" for i in closest)
        lines = [
            f"{indent}- {where}: matches none of the {len(err.validator_value)} "
            f"{err.validator} branches; the closest ({numbers}) fail with:"
        ]
        if depth < 3:
            sub_lines = [
                line
                for subs in closest.values()
                for sub in subs
                for line in _format_schema_error(sub, indent + "    ", depth + 1, prefix)
            ]
            unique = list(dict.fromkeys(sub_lines))
            lines.extend(unique[:8])
            if len(unique) > 8:
                lines.append(f"{indent}    ... and {len(unique) - 8} more")
        return lines
    message = err.message
    if err.validator == "oneOf":  # valid under several branches
        message = f"matches more than one oneOf branch: {message.rpartition(' is valid under ')[2]}"
    return [f"{indent}- {where}: {_short(message, 300)}"]


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(exc: BaseException) -> list[str]:
    """The exception chain, and every jsonschema error found in it."""
    lines: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    prefix = ""
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if hasattr(cur, "location") and hasattr(cur, "name"):  # a parameter error
            prefix = f"{cur.location} parameter {cur.name}"
        schema_errors = getattr(cur, "schema_errors", None)
        if schema_errors:
            lines.append(f"  {type(cur).__name__}: {len(schema_errors)} schema error(s):")
            for err in schema_errors:
                lines.extend(_format_schema_error(err, "    ", prefix=prefix))
        else:
            lines.append(f"  {type(cur).__name__}: {_short(str(cur) or repr(cur))}")
        cur = cur.__cause__ or cur.__context__
    return lines


def _violation(
    route: Route | str, side: str, summary: str, details: Iterable[str] = ()
) -> ContractViolation:
    text = f"{route}: {side} failed: {summary}"
    details = list(details)
    if details:
        text += "\n" + "\n".join(details)
    return ContractViolation(text)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _schema_errors(doc: Document, schema_name: str, instance: Any) -> list[ValidationError]:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    validator = OAS30Validator(root, format_checker=oas30_format_checker)
    return sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))


class ContractValidator:
    """Validates requests/responses against the three documents, patched as described above.

    ``skip`` leaves out some patches (tests use it to show that each patch is needed).
    Documents are built lazily, one ``OpenAPI`` object each, plus the download-only one (Q7).
    """

    def __init__(self, *, skip: Collection[Patch] = ()) -> None:
        self.skip = frozenset(skip)
        self._documents: dict[str, Document] = {}
        self._apis: dict[str, OpenAPI] = {}

    # ---- documents ----------------------------------------------------------------------

    def document(self, name: str) -> Document:
        """The patched document dict for ``name`` (or ``"download"``). Don't mutate it."""
        if name not in self._documents:
            if name == "download":
                doc = patched_document("exports", patches=DOWNLOAD_PATCHES, skip=self.skip)
            else:
                doc = patched_document(name, skip=self.skip)
            self._documents[name] = doc
        return self._documents[name]

    def api(self, name: str) -> OpenAPI:
        """The ``OpenAPI`` object for ``name`` (or ``"download"``, see Q7)."""
        if name not in self._apis:
            # Deep copy: openapi-core keeps the dict; the raw one serves the schema checks.
            self._apis[name] = OpenAPI.from_dict(copy.deepcopy(self.document(name)))
        return self._apis[name]

    # ---- routing ------------------------------------------------------------------------

    def route(self, prepared: requests.PreparedRequest) -> Route:
        """Find the document and operation of a request, or raise ContractViolation."""
        method, path, query = _request_parts(prepared)
        if path.startswith("/v1/orders"):
            name = "orders"
        elif path.startswith("/v1/exports"):
            name = "exports"
            # Q7: download-export shares get-export's template; it is told apart by ``token``.
            if method == "GET" and "token" in query and re.fullmatch(r"/v1/exports/[^/]+/?", path):
                name = "download"
        elif path.startswith("/v1/async-actions"):
            name = "async-actions"
        else:
            raise _violation(
                f"{method} {path}", "request", "no Voucherify document covers this path"
            )
        paths = self.document(name)["paths"]
        # Literal segments win over templated ones: /v1/orders/import is not get-order.
        for template in sorted(paths, key=lambda t: t.count("{")):
            item = paths[template]
            if not _template_regex(template).match(path):
                continue
            operation = item.get(method.lower())
            if operation is None:
                raise _violation(
                    f"{method} {template} ({name})",
                    "request",
                    f"the document has no {method} operation on this path "
                    f"(only {', '.join(m.upper() for m in item if m != 'parameters')})",
                )
            declared = frozenset(int(s) for s in operation.get("responses", {}) if s.isdigit())
            return Route(name, method, template, operation.get("operationId", "?"), declared)
        raise _violation(f"{method} {path}", "request", f"no path of {name}.json matches")

    # ---- validation ---------------------------------------------------------------------

    def validate_request(self, prepared: requests.PreparedRequest) -> Route:
        """Check auth headers (Q11), path and query parameters and the body of a request."""
        route = self.route(prepared)
        missing = [h for h in AUTH_HEADERS if not prepared.headers.get(h)]
        if missing:
            # Q11: openapi-core can't check the OAuth2 alternative, so it never reports these.
            raise _violation(route, "request", f"missing auth header(s) {', '.join(missing)}")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
                self.api(route.api).validate_request(RequestsOpenAPIRequest(prepared))
        except OpenAPIError as exc:
            raise _violation(route, "request", type(exc).__name__, _describe(exc)) from exc
        return route

    def validate_response(
        self,
        prepared: requests.PreparedRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Route:
        """Check a response to ``prepared`` (the request itself isn't validated here)."""
        route = self.route(prepared)
        status = int(status)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if status in route.declared_statuses:
            self._validate_declared_response(route, prepared, status, headers, body)
        elif status in self._undeclared_error_statuses(route) or 500 <= status <= 599:
            self._validate_undeclared_error(route, status, headers, body)
        else:
            declared = ", ".join(str(s) for s in sorted(route.declared_statuses))
            raise _violation(
                route,
                "response",
                f"status {status} is neither declared ({declared}) nor a known undeclared error",
            )
        if route.operation_id == "get-async-action" and status == 200:
            self._validate_async_action_result(route, body)
        return route

    def validate_exchange(
        self,
        prepared: requests.PreparedRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Route:
        """Validate a request and the response it got."""
        self.validate_request(prepared)
        return self.validate_response(prepared, status, headers, body)

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _undeclared_error_statuses(route: Route) -> frozenset[int]:
        return UNDECLARED_ERROR_STATUSES[("*", "*")] | UNDECLARED_ERROR_STATUSES.get(
            (route.method, route.template), frozenset()
        )

    def _validate_declared_response(
        self,
        route: Route,
        prepared: requests.PreparedRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        content_type = _header(headers, "Content-Type") or ""
        response = MockResponse(
            body, status_code=status, headers=dict(headers), content_type=content_type
        )
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
                self.api(route.api).validate_response(RequestsOpenAPIRequest(prepared), response)
        except OpenAPIError as exc:
            raise _violation(
                route,
                "response",
                f"{status} {content_type!r}: {type(exc).__name__}",
                _describe(exc),
            ) from exc

    def _json_body(self, route: Route, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        content_type = _header(headers, "Content-Type") or ""
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise _violation(
                route, "response", f"{status}: Content-Type {content_type!r} is not JSON"
            )
        try:
            return json.loads(body)
        except ValueError as exc:
            raise _violation(route, "response", f"{status}: body is not JSON ({exc})") from exc

    def _validate_undeclared_error(
        self, route: Route, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        # Q10: validate against components/schemas/Error directly.
        data = self._json_body(route, status, headers, body)
        errors = _schema_errors(self.document(route.api), "Error", data)
        if errors:
            lines = [line for e in errors for line in _format_schema_error(e)]
            raise _violation(
                route, "response", f"{status} (undeclared) is not an Error object", lines
            )

    def _validate_async_action_result(self, route: Route, body: bytes) -> None:
        # Q8: ``result`` is hardly checked by the patched anyOf; check it by ``type``.
        data = json.loads(body)
        if not isinstance(data, dict) or "result" not in data:
            return
        schema_name = ASYNC_ACTION_RESULT_SCHEMAS.get(data.get("type", ""))
        if schema_name is None:
            return
        errors = _schema_errors(self.document(route.api), schema_name, data["result"])
        if errors:
            lines = [f"  (result of {data['type']}, schema {schema_name})"]
            lines += [line for e in errors for line in _format_schema_error(e, prefix="result")]
            raise _violation(route, "response", "200: result does not match its type", lines)


@functools.cache
def _default_validator() -> ContractValidator:
    return ContractValidator()


def load_api(name: str) -> OpenAPI:
    """The patched ``OpenAPI`` object for "orders", "exports" or "async-actions" (cached)."""
    if name not in API_NAMES:
        raise ValueError(f"unknown API document {name!r}; expected one of {API_NAMES}")
    return _default_validator().api(name)


def download_api() -> OpenAPI:
    """exports.json without get-export, for GET /v1/exports/{id}?token=... (Q7; cached)."""
    return _default_validator().api("download")


def validate_request(prepared_request: requests.PreparedRequest) -> Route:
    """Validate a request the client sends (raises ContractViolation)."""
    return _default_validator().validate_request(prepared_request)


def validate_response(
    prepared_request: requests.PreparedRequest, status: int, headers: Mapping[str, str], body: bytes
) -> Route:
    """Validate a response to ``prepared_request`` (raises ContractViolation)."""
    return _default_validator().validate_response(prepared_request, status, headers, body)


def validate_exchange(
    request: requests.PreparedRequest, status: int, headers: Mapping[str, str], body: bytes
) -> Route:
    """Validate a request and its response (raises ContractViolation)."""
    return _default_validator().validate_exchange(request, status, headers, body)
