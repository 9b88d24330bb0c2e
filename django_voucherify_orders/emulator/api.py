"""The Voucherify API endpoints: a route table and one small handler per operation.

Routes are tried in order and the first whose path and method match wins, as in an
Express-style router; so GET /v1/orders/import is "get the order with id import" (404),
while PUT /v1/orders/import is a 405.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from . import validation as v
from .csvexport import parse_parameters
from .errors import ApiError, invalid_payload, invalid_query, not_found, unauthorized
from .state import State
from .util import dumps, parse_iso

JSON = "application/json; charset=utf-8"
CSV = "text/plain; charset=utf-8"  # the download is declared text/plain [D-exp]
LIST_ORDERS = ("created_at", "-created_at", "updated_at", "-updated_at")
LIST_EXPORTS = ("created_at", "-created_at", "status", "-status")
EXPORTED_OBJECTS = (
    "voucher",
    "redemption",
    "customer",
    "publication",
    "order",
    "points_expiration",
    "voucher_transactions",
)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    request_id: str
    params: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, dumps(payload))


Handler = Callable[[State, ApiRequest], Reply]


def create_order(state: State, req: ApiRequest) -> Reply:
    body = v.validate_order(v.parse_json(req.body, empty={}))
    return Reply.json(state.save_order(body))


def get_order(state: State, req: ApiRequest) -> Reply:
    order = state.get_order(req.params["id"])
    if order is None:
        raise not_found("order", req.params["id"])
    return Reply.json(order)


def update_order(state: State, req: ApiRequest) -> Reply:
    body = v.validate_order(v.parse_json(req.body, empty={}), allow_id=False)
    return Reply.json(state.update_order(req.params["id"], body))


def list_orders(state: State, req: ApiRequest) -> Reply:
    limit = v.query_int(req.query, "limit", 10, 1, 100)
    page = v.query_int(req.query, "page", 1, 1, 100)
    # The text says "most recent last", the documented example is newest first; we
    # follow the example (and the export default), which is -created_at.
    order = v.query_enum(req.query, "order", "-created_at", LIST_ORDERS)
    orders, total = state.list_orders(order, limit, page)
    return Reply.json({"object": "list", "data_ref": "orders", "orders": orders, "total": total})


def import_orders(state: State, req: ApiRequest) -> Reply:
    orders = v.validate_import(v.parse_json(req.body))
    return Reply.json({"async_action_id": state.create_import(orders, req.request_id)})


def get_async_action(state: State, req: ApiRequest) -> Reply:
    return Reply.json(state.poll_import(req.params["id"]))


def list_async_actions(state: State, req: ApiRequest) -> Reply:
    limit = v.query_int(req.query, "limit", 10, 1, 100)
    end_date = None
    if req.query.get("end_date"):
        end_date = parse_iso(req.query["end_date"][-1])
        if end_date is None:
            raise invalid_query(
                "Property .end_date cannot be recognized as a ISO-8601 compliant date"
            )
    actions, has_more = state.list_imports(limit, end_date)
    return Reply.json(
        {
            "object": "list",
            "data_ref": "async_actions",
            "async_actions": actions,
            "has_more": has_more,
        }
    )


def export_orders(state: State, req: ApiRequest) -> Reply:
    body = v.check_object(v.parse_json(req.body, empty={}), "")
    return Reply.json(state.create_export(parse_parameters(body.get("parameters"))))


def create_export(state: State, req: ApiRequest) -> Reply:
    body = v.check_object(v.parse_json(req.body, empty={}), "")
    exported = body.get("exported_object")
    if exported not in EXPORTED_OBJECTS:
        raise invalid_payload(
            "Property .exported_object should be equal to one of the allowed values "
            f"[ {', '.join(EXPORTED_OBJECTS)} ]"
        )
    if exported != "order":
        raise invalid_payload(
            f"Property .exported_object: the emulator exports only orders, not {exported}"
        )
    return Reply.json(state.create_export(parse_parameters(body.get("parameters"))))


def get_export(state: State, req: ApiRequest) -> Reply:
    if "token" in req.query:
        # Download Export shares this path template (served on the download host) [D-exp].
        csv = state.download(req.params["id"], req.query["token"][-1])
        if csv is None:
            raise unauthorized()
        return Reply(200, csv.encode("utf-8"), CSV)
    return Reply.json(state.poll_export(req.params["id"]))


def list_exports(state: State, req: ApiRequest) -> Reply:
    limit = v.query_int(req.query, "limit", 10, 1, 100)
    page = v.query_int(req.query, "page", 1, 1, 100)
    order = v.query_enum(req.query, "order", "-created_at", LIST_EXPORTS)
    exports, total = state.list_exports(order, limit, page)
    return Reply.json({"object": "list", "data_ref": "exports", "exports": exports, "total": total})


def delete_export(state: State, req: ApiRequest) -> Reply:
    state.delete_export(req.params["id"])
    return Reply(204, b"")


_ID = r"(?P<id>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", r"/v1/orders", list_orders),
        ("POST", r"/v1/orders", create_order),
        ("POST", r"/v1/orders/import", import_orders),
        ("POST", r"/v1/orders/export", export_orders),
        ("GET", rf"/v1/orders/{_ID}", get_order),
        ("PUT", rf"/v1/orders/{_ID}", update_order),
        ("GET", r"/v1/async-actions", list_async_actions),
        ("GET", rf"/v1/async-actions/{_ID}", get_async_action),
        ("GET", r"/v1/exports", list_exports),
        ("POST", r"/v1/exports", create_export),
        ("GET", rf"/v1/exports/{_ID}", get_export),
        ("DELETE", rf"/v1/exports/{_ID}", delete_export),
    ]
]


def dispatch(
    state: State, method: str, path: str, query: dict[str, list[str]], body: bytes, request_id: str
) -> Reply:
    if len(path) > 1:
        path = path.rstrip("/")  # non-strict routing: /v1/orders/ is /v1/orders
    allowed: list[str] = []
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match is None:
            continue
        if route_method != method:
            allowed.append(route_method)
            continue
        # Path segments are percent-decoded one by one, so a source_id with "/" survives.
        params = {k: unquote(val) for k, val in match.groupdict().items()}
        return handler(state, ApiRequest(method, path, query, body, request_id, params))
    if allowed:
        raise ApiError(
            405,
            "method_not_allowed",
            "Method Not Allowed",
            f"Method {method} is not allowed on {path}",
            headers={"Allow": ", ".join(dict.fromkeys(allowed))},
        )
    raise ApiError(404, "not_found", "Resource not found", f"Cannot {method} {path}")
