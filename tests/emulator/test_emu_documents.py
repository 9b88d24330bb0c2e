"""The emulator against Voucherify's documents: what it computes, what it fixes, and the
closed list of places where it is stricter or looser (docs/emulator.md, one test each)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django_voucherify_orders.emulator import Emulator

from .conftest import Api

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def _order(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/orders", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _details(api: Api, body: Any, path: str = "/v1/orders", method: str = "POST") -> str:
    response = api.request(method, path, json=body)
    assert response.status_code == 400, response.text
    return response.json()["details"]


# --- what Voucherify computes: item prices from the catalogue --------------------------------


def test_override_stores_the_product_and_a_later_item_takes_its_price(api: Api) -> None:
    product = {"name": "Mug", "price": 1250, "override": True}
    _order(api, {"items": [{"source_id": "mug", "related_object": "product", "quantity": 1,
                            "product": product}]})  # fmt: skip
    later = _order(
        api, {"items": [{"source_id": "mug", "related_object": "product", "quantity": 3}]}
    )
    assert later["items"][0]["price"] == 1250
    assert later["items"][0]["amount"] == 3750
    assert later["amount"] == 3750
    assert later["items"][0]["product_id"].startswith("prod_")


def test_sku_price_wins_over_its_products_and_the_items_own_price_over_both(api: Api) -> None:
    sku_item = {"source_id": "tea-green", "related_object": "sku", "quantity": 2,
                "product": {"source_id": "tea", "price": 800, "override": True},
                "sku": {"price": 900, "override": True}}  # fmt: skip
    order = _order(api, {"items": [sku_item, {**sku_item, "price": 700}]})
    assert [i["amount"] for i in order["items"]] == [1800, 1400]
    assert order["items"][0]["sku_id"].startswith("sku_")
    assert order["items"][0]["product_id"].startswith("prod_")


def test_an_order_keeps_the_price_it_was_sold_at(api: Api) -> None:
    item = {"source_id": "vase", "related_object": "product", "quantity": 1}
    _order(api, {"items": [{**item, "product": {"price": 2000, "override": True}}]})
    first = _order(api, {"source_id": "A", "items": [item]})
    _order(api, {"items": [{**item, "product": {"price": 2500, "override": True}}]})
    assert api.get(f"/v1/orders/{first['id']}").json()["amount"] == 2000
    assert _order(api, {"source_id": "B", "items": [item]})["amount"] == 2500


def test_without_override_nothing_is_stored(api: Api) -> None:
    _order(api, {"items": [{"source_id": "lamp", "related_object": "product", "quantity": 1,
                            "product": {"price": 3000}}]})  # fmt: skip
    later = _order(
        api, {"items": [{"source_id": "lamp", "related_object": "product", "quantity": 1}]}
    )
    assert "amount" not in later and "price" not in later["items"][0]


def test_an_update_prices_from_the_catalogue_but_does_not_write_to_it(api: Api) -> None:
    """ "Override works only for endpoints that create an order" [D-ord]."""
    _order(api, {"source_id": "U"})
    item = {"source_id": "cup", "related_object": "product", "quantity": 1}
    put = api.put(
        "/v1/orders/U", json={"items": [{**item, "product": {"price": 5, "override": True}}]}
    )
    assert put.json()["amount"] == 5  # the item's own product.price
    assert "amount" not in _order(api, {"items": [item]})  # but nothing was stored


def test_products_the_project_holds_price_items_named_by_id(emu: Emulator, api: Api) -> None:
    product = emu.add_product(id="prod_held", price=4500)
    emu.add_sku(id="sku_held", product_id=product["id"], price=5000)
    order = _order(api, {"items": [{"product_id": "prod_held", "quantity": 2},
                                   {"sku_id": "sku_held", "quantity": 1}]})  # fmt: skip
    assert [i["amount"] for i in order["items"]] == [9000, 5000]
    assert order["items"][1]["product_id"] == "prod_held"
    assert order["amount"] == 14000


def test_what_the_project_holds_can_be_set_up_over_http(served: tuple[Emulator, Api]) -> None:
    _, api = served
    control = api.base + "/_emulator"
    assert api.post(f"{control}/products", json={"id": "prod_h", "price": 250}).json()["id"] == (
        "prod_h"
    )
    api.post(f"{control}/customers", json={"id": "cust_h"}).raise_for_status()
    assert api.post(f"{control}/skus", json=["not", "fields"]).status_code == 400
    order = _order(api, {"customer": {"id": "cust_h"},
                         "items": [{"product_id": "prod_h", "quantity": 4}]})  # fmt: skip
    assert order["amount"] == 1000 and order["customer_id"] == "cust_h"


def test_order_amount_is_the_sum_of_the_items_that_have_one(api: Api) -> None:
    order = _order(
        api, {"items": [{"amount": 900}, {"price": 300, "quantity": 2}, {"quantity": 1}]}
    )
    assert [i.get("amount") for i in order["items"]] == [900, 600, None]
    assert order["amount"] == order["total_amount"] == 1500


def test_a_price_given_as_a_number_is_rounded_to_minor_units(api: Api) -> None:
    order = _order(api, {"items": [{"quantity": 3, "product": {"price": 333.4}}]})
    assert order["items"][0]["price"] == 333 and order["amount"] == 999


# --- fixes found by schemathesis -------------------------------------------------------------


def test_timestamps_before_the_year_1000_keep_four_digits(api: Api) -> None:
    order = _order(api, {"source_id": "old", "created_at": "0974-04-13T16:56:36.100Z"})
    assert order["created_at"] == "0974-04-13T16:56:36.100Z"
    assert api.get("/v1/orders/old").json()["created_at"] == "0974-04-13T16:56:36.100Z"


def test_an_export_filter_without_conditions_filters_nothing(emu: Emulator, api: Api) -> None:
    _order(api, {"source_id": "F", "amount": 5})
    body = {"parameters": {"filters": {"amount": {"conditions": {}}, "created_at": {}}}}
    response = api.post("/v1/orders/export", json=body)
    assert response.status_code == 200, response.text
    emu.finish_async()
    export = api.get(f"/v1/exports/{response.json()['id']}").json()
    assert "F" in api.get(export["result"]["url"]).text


def test_customer_dates_must_be_dates(api: Api) -> None:
    details = _details(api, {"customer": {"source_id": "c", "birthdate": "1st of May"}})
    assert details == 'Property .customer.birthdate should match format "date" (YYYY-MM-DD)'
    assert _order(api, {"referrer": {"source_id": "r", "birthday": "2022-03-03"}})["referrer_id"]


# --- the closed list of docs/emulator.md: one test per entry ----------------------------------


def test_s1_quantities_below_1_are_refused(api: Api) -> None:
    assert _details(api, {"items": [{"quantity": 0}]}) == (
        "Property .items[0].quantity cannot be lower than 1"
    )
    assert "cannot be lower than 0" in _details(api, {"items": [{"discount_quantity": -1}]})


def test_s2_negative_amounts_and_prices_are_refused(api: Api) -> None:
    assert _details(api, {"amount": -1}) == "Property .amount cannot be lower than 0"
    assert _details(api, {"items": [{"product": {"price": -0.5}}]}) == (
        "Property .items[0].product.price cannot be lower than 0"
    )


def test_s3_a_customer_id_that_names_no_customer_is_404(api: Api) -> None:
    response = api.post("/v1/orders", json={"customer": {"id": "cust_unknown"}})
    assert response.status_code == 404
    assert response.json()["resource_type"] == "customer"
    assert api.post("/v1/orders", json={"referrer_id": "cust_unknown"}).status_code == 404


def test_s4_an_order_id_that_names_no_order_is_404(api: Api) -> None:
    assert api.post("/v1/orders", json={"id": "ord_unknown"}).status_code == 404


def test_s5_an_id_in_an_update_body_is_refused(api: Api) -> None:
    _order(api, {"source_id": "P"})
    assert _details(api, {"id": "ord_x"}, "/v1/orders/P", "PUT") == "Property .id is not allowed"


def test_s6_a_moment_without_a_utc_form_is_refused(api: Api) -> None:
    details = _details(api, {"created_at": "0001-01-01T00:00:00+05:00"})
    assert details == "Property .created_at cannot be recognized as a ISO-8601 compliant date"


def test_s7_export_filters_the_emulator_cannot_evaluate_are_refused(api: Api) -> None:
    def export(filters: dict[str, Any]) -> str:
        return _details(api, {"parameters": {"filters": filters}}, "/v1/orders/export")

    assert "should match either" in export({"colour": {"conditions": {"$is": "red"}}})
    assert "not implemented by the Voucherify emulator" in export(
        {"status": {"conditions": {"$count_more": 1}}}
    )
    assert "should be number" in export({"amount": {"conditions": {"$more_than": {}}}})
    assert "should match either" in export({"status": {"$in": ["PAID"]}})


def test_s8_only_orders_are_exported(api: Api) -> None:
    details = _details(api, {"exported_object": "voucher"}, "/v1/exports")
    assert "exports only orders" in details


def test_s9_a_source_id_another_order_holds_is_409(api: Api) -> None:
    _order(api, {"source_id": "one"})
    _order(api, {"source_id": "two"})
    response = api.put("/v1/orders/two", json={"source_id": "one"})
    assert response.status_code == 409 and response.json()["key"] == "duplicate_found"


def test_l1_order_dates_may_be_any_iso_8601(api: Api) -> None:
    assert _order(api, {"created_at": "2024-03-01T10:00:00"})["created_at"] == (
        "2024-03-01T10:00:00.000Z"
    )
    assert _order(api, {"created_at": "2024-03-01"})["created_at"] == "2024-03-01T00:00:00.000Z"


def test_l2_an_item_naming_a_product_no_one_holds_is_accepted_unpriced(api: Api) -> None:
    order = _order(api, {"items": [{"product_id": "prod_nobody", "quantity": 2}]})
    assert order["items"][0]["product_id"] == "prod_nobody"
    assert "amount" not in order["items"][0] and "amount" not in order


def test_l3_a_new_export_has_user_id_null(api: Api) -> None:
    export = api.post("/v1/orders/export", json={}).json()
    assert "user_id" in export and export["user_id"] is None


def test_l4_null_is_a_field_not_given(api: Api) -> None:
    order = _order(api, {"id": None, "source_id": "N", "amount": None, "status": None,
                         "customer": {"id": None, "source_id": "c-1", "birthday": None},
                         "items": [{"amount": 900, "sku_id": None, "product": None}]})  # fmt: skip
    assert order["status"] == "CREATED" and order["amount"] == 900
    assert order["customer_id"].startswith("cust_")
    assert _details(api, {"items": [{"amount": "900", "sku_id": None}]}) == (
        "Property .items[0].amount should be integer"
    )


def test_the_list_in_docs_emulator_md_is_closed() -> None:
    """Every entry of the list has its test here, and every such test its entry."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Where the emulator is stricter or looser than the documents")[1]
    listed = set(re.findall(r"^\| \*\*([SL]\d+)\*\* \|", section.split("\n## ")[0], re.M))
    tested = {
        name.split("_")[1].upper() for name in globals() if re.fullmatch(r"test_[sl]\d+_\w+", name)
    }
    assert listed and listed == tested
