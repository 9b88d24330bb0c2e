"""Second half of `make demo`: bulk import and export through the client, over real HTTP.

Starts the emulator on a free port of 127.0.0.1 (no other server, no credentials), then
creates, upserts, updates, lists, imports and exports orders through the client, and
shows how failures look. Exits 0 when every step did what it should.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from django_voucherify_orders.client import (
    NotFound,
    RetryPolicy,
    VoucherifyClient,
    VoucherifyError,
)
from django_voucherify_orders.emulator import Emulator

APP_ID, SECRET_KEY = "demo-app-id", "demo-secret-key"


def step(title: str) -> None:
    print(f"\n== {title}")


def show(order) -> None:  # type: ignore[no-untyped-def]
    items = ", ".join(f"{i.quantity}x{i.price}" for i in order.items) or "-"
    print(
        f"   {order.source_id or '(none)':<10} {order.id}  {order.status:<9} "
        f"amount={order.amount}  items: {items}"
    )


def main() -> int:
    # The client logs each retry as a warning; show them inline with the steps.
    logging.basicConfig(level=logging.WARNING, format="   log: %(message)s", stream=sys.stdout)
    emulator = Emulator(APP_ID, SECRET_KEY, rate_limit_per_minute=2000)
    with emulator.serve("127.0.0.1", 0) as server:
        print(f"Voucherify emulator listening on {server.url}")
        client = VoucherifyClient(
            APP_ID, SECRET_KEY, server.url, retry=RetryPolicy(backoff_base=0.05, backoff_max=0.2)
        )

        step("Create two orders (POST /v1/orders, upsert by source_id)")
        for n, status in ((1001, "CREATED"), (1002, "PAID")):
            show(
                client.create_order(
                    {
                        "source_id": str(n),
                        "status": status,
                        "customer": {"source_id": f"customer-{n}", "email": f"c{n}@example.com"},
                        "items": [
                            {"source_id": "mug", "related_object": "product", "quantity": 2,
                             "price": 1250},
                            {"source_id": "tea", "related_object": "product", "quantity": 1,
                             "price": 800},
                        ],
                    }
                )
            )  # fmt: skip

        step("Upsert 1001 again with a new status and one item: same Voucherify id")
        show(
            client.create_order(
                {"source_id": "1001", "status": "PAID",
                 "items": [{"source_id": "mug", "related_object": "product", "quantity": 1,
                            "price": 1250}]}
            )
        )  # fmt: skip

        step("Partial update (PUT /v1/orders/1002): only the status changes")
        show(client.update_order("1002", {"status": "FULFILLED"}))

        step("Historical import: 4,500 orders in 3 requests of at most 2000")
        history = [
            {"source_id": f"H{n:05}", "status": "FULFILLED", "metadata": {"channel": "pos"},
             "items": [{"product_id": "prod_mug", "quantity": 1 + n % 3, "price": 1250}]}
            for n in range(4500)
        ]  # fmt: skip
        for start in range(0, len(history), 2000):
            action_id = client.import_orders(history[start : start + 2000])
            action = client.wait_for_async_action(action_id, poll_interval=0.01)
            result = action.import_result
            print(f"   {action_id}: {action.status}, {result.message}")

        step("List orders (GET /v1/orders), newest first")
        page = client.list_orders(limit=3, order="-created_at")
        print(f"   total={page.total}; first page:")
        for order in page.orders:
            show(order)

        step("Export PAID and FULFILLED orders with amount over 3000 as CSV, streamed")
        export = client.create_order_export(
            fields=["source_id", "status", "amount", "metadata.channel"],
            order="created_at",
            filters={
                "status": {"conditions": {"$in": ["PAID", "FULFILLED"]}},
                "amount": {"conditions": {"$more_than": 3000}},
            },
        )
        export = client.wait_for_export(export.id, poll_interval=0.01)
        csv = io.BytesIO()
        size = client.download_export(export, csv)
        lines = csv.getvalue().decode().splitlines()
        print(f"   {export.id}: {export.status}, {size} bytes, {len(lines) - 1} rows")
        for line in lines[:4]:
            print(f"   | {line}")

        step("Failures, as the client reports them")
        try:
            client.get_order("no-such-order")
        except NotFound as error:
            print(f"   {type(error).__name__}: {error}")
        emulator.faults.script([503, 429])
        show(client.get_order("1001"))
        print("   (a 503 and a 429 were injected and retried with backoff)")
        bad = VoucherifyClient(APP_ID, "a-wrong-secret-key", server.url)
        try:
            bad.get_order("1001")
        except VoucherifyError as error:
            print(f"   {type(error).__name__}: {error}")
        rate = client.last_rate_limit
        print(f"   rate limit: {rate.remaining} of {rate.limit} requests left this minute")

        ok = (
            page.total == 4502
            and len(lines) > 1
            and emulator.get_order("1002")["status"] == "FULFILLED"
        )
        print("\nDemo finished:", "OK" if ok else "UNEXPECTED STATE")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
