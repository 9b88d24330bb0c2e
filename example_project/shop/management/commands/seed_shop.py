"""``manage.py seed_shop --orders N --items K``: a realistic shop history, fast.

Rows are written with ``bulk_create``, which sends no signals: seeded orders are
historical and are not queued for Voucherify (``voucherify_import`` sends them) unless
``--sync`` is given. The same ``--seed`` and ``--end`` give the same data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models.functions import Length

from django_voucherify_orders.mapping import currency_exponent
from shop.models import Customer, Order, OrderItem, Product

FIRST_NAMES = (
    "Anna", "Ben", "Chloé", "David", "Elif", "Farah", "Georg", "Hana", "Ivan", "Julia",
    "Kenji", "Lena", "Marco", "Nora", "Oskar", "Paula", "Quentin", "Rosa", "Sven", "Tomasz",
    "Ute", "Valentina", "Wei", "Yusuf", "Zoë", "Aiko", "Bilal", "Carmen", "Dmitri", "Emma",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "Schmidt", "Rossi", "García", "Dubois", "Nowak", "Jansen", "Yamamoto", "Kowalski",
    "Silva", "Novák", "Andersson", "O'Brien", "Hoffmann", "Moreau", "Ferrari", "Lindqvist",
    "Tanaka", "Al-Sabah", "Costa", "Fischer", "Weber", "Leroy", "Horvath", "Petrov",
)  # fmt: skip
CITIES = (
    ("Berlin", "DE", "+49 30"), ("Munich", "DE", "+49 89"), ("Paris", "FR", "+33 1"),
    ("Lyon", "FR", "+33 4"), ("Milan", "IT", "+39 02"), ("Madrid", "ES", "+34 91"),
    ("Warsaw", "PL", "+48 22"), ("Amsterdam", "NL", "+31 20"), ("Vienna", "AT", "+43 1"),
    ("Stockholm", "SE", "+46 8"), ("Tokyo", "JP", "+81 3"), ("Kuwait City", "KW", "+965"),
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Organic", "Compact", "Deluxe", "Everyday", "Travel", "Ceramic", "Wooden",
    "Linen", "Recycled", "Insulated", "Handmade", "Minimal", "Vintage", "Waterproof",
)  # fmt: skip
NOUNS = (
    "Mug", "Notebook", "Backpack", "Teapot", "Lamp", "Scarf", "Water Bottle", "Cutting Board",
    "Candle", "Tote Bag", "Desk Organizer", "Plant Pot", "Blanket", "Headphones", "Umbrella",
)  # fmt: skip
NOTES = (
    "Leave at the door", "Gift wrap, please", "Call before delivery", "Invoice to company",
    "Deliver after 5 pm", "Fragile",
)  # fmt: skip
# Roughly how many units of the currency one euro buys: prices look right in JPY or KWD.
RATES = {"JPY": 160, "KRW": 1450, "KWD": Decimal("0.33"), "BHD": Decimal("0.41"), "USD": 1.1}
STATUSES = ("new", "paid", "shipped", "cancelled")
STATUS_WEIGHTS = (15, 25, 50, 10)
QUANTITY_WEIGHTS = (60, 25, 8, 5, 2)  # 1..5 units of a product per line
HISTORY = timedelta(days=730)
SQLITE_MAX_PARAMS = 900


class Command(BaseCommand):
    help = "Create realistic customers, products and orders (exactly --items lines each)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, required=True, help="orders to create")
        parser.add_argument("--items", type=int, default=3, help="lines per order (default 3)")
        parser.add_argument(
            "--customers", type=int, help="customer pool (default: orders/10, 10 to 10,000)"
        )
        parser.add_argument(
            "--products", type=int, help="product catalogue (default: max(50, 2*items))"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
        parser.add_argument(
            "--end",
            type=date.fromisoformat,
            help="last day of the two-year history, YYYY-MM-DD (default today, UTC)",
        )
        parser.add_argument("--batch-size", type=int, default=2000, help="rows per INSERT batch")
        parser.add_argument(
            "--sync",
            action="store_true",
            help="queue the created orders for Voucherify (default: historical, not queued)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        orders, items = options["orders"], options["items"]
        batch_size = options["batch_size"]
        currency = options["currency"].strip().upper()
        try:
            exponent = currency_exponent(currency)
        except ValueError as exc:
            raise CommandError(f"--currency: {exc}") from None
        customers = options["customers"] or min(max(orders // 10, 10), 10_000)
        products = options["products"] or max(50, 2 * items)
        for name, value in (
            ("--orders", orders), ("--items", items), ("--customers", customers),
            ("--products", products), ("--batch-size", batch_size),
        ):  # fmt: skip
            if value < 1:
                raise CommandError(f"{name} must be at least 1")
        end_day = options["end"] or datetime.now(UTC).date()
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC) + timedelta(days=1)

        self.rng = random.Random(options["seed"])
        self.currency, self.quantum = currency, Decimal(1).scaleb(-exponent)
        started = time.perf_counter()
        with transaction.atomic():
            customer_pks, new_customers = self._customers(customers, batch_size)
            catalogue, new_products = self._products(products, batch_size)
            created, item_count, queued = self._orders(
                orders, items, customer_pks, catalogue, end, batch_size, options["sync"]
            )
        elapsed = time.perf_counter() - started

        self.stdout.write(
            f"Created {new_customers} customers ({customers - new_customers} reused), "
            f"{new_products} products ({products - new_products} reused), "
            f"{len(created)} orders {created[0]}..{created[-1]} with {item_count} items "
            f"in {currency}, created_at {(end - HISTORY):%Y-%m-%d}..{end_day:%Y-%m-%d}, "
            f"seed {options['seed']}, in {elapsed:.1f}s."
        )
        if options["sync"]:
            self.stdout.write(f"Queued {queued} orders for Voucherify.")
        else:
            self.stdout.write(
                "Not queued for Voucherify (bulk_create sends no signals): send them with "
                "voucherify_import, or seed with --sync."
            )

    # --- customers and products: get-or-create by their unique key ----------------------

    def _customers(self, count: int, batch_size: int) -> tuple[list[int], int]:
        rows = []
        for index in range(1, count + 1):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            city, country, prefix = self.rng.choice(CITIES)
            local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            rows.append(
                Customer(
                    name=f"{first} {last}",
                    email=f"{local}.{index}@example.com",
                    phone=f"{prefix} {self.rng.randrange(1_000_000, 9_999_999)}",
                    city=city,
                    country=country,
                )
            )
        found, created = self._get_or_create(Customer, "email", rows, batch_size)
        return [found[row.email][0] for row in rows], created

    def _products(self, count: int, batch_size: int) -> tuple[list[tuple[int, str, Decimal]], int]:
        rate = Decimal(str(RATES.get(self.currency, 1)))
        rows = []
        for index in range(1, count + 1):
            euros = Decimal(self.rng.randrange(199, 19_999)) / 100
            price = max((euros * rate).quantize(self.quantum), self.quantum)
            name = f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}"
            # One catalogue per currency: a line's price is always in its order's currency.
            sku = f"P{index:05d}-{self.currency}"
            rows.append(Product(sku=sku, name=name, price=price, currency=self.currency))
        # Reused products keep their stored price, so lines are priced from the database.
        found, created = self._get_or_create(Product, "sku", rows, batch_size, "price")
        return [(found[row.sku][0], row.sku, found[row.sku][1]) for row in rows], created

    def _get_or_create(
        self, model: Any, key: str, rows: list[Any], batch_size: int, *fields: str
    ) -> tuple[dict[str, tuple[Any, ...]], int]:
        """Insert the rows whose unique ``key`` is new; ``{key: (pk, *fields)}`` for all."""
        before = model.objects.count()
        model.objects.bulk_create(rows, batch_size=batch_size, ignore_conflicts=True)
        created = model.objects.count() - before
        keys = [getattr(row, key) for row in rows]
        found: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(keys), SQLITE_MAX_PARAMS):
            chunk = keys[start : start + SQLITE_MAX_PARAMS]
            for value, *rest in model.objects.filter(**{f"{key}__in": chunk}).values_list(
                key, "pk", *fields
            ):
                found[value] = tuple(rest)
        return found, created

    # --- orders and their items -------------------------------------------------------------

    def _next_number(self) -> int:
        last = (
            Order.objects.filter(number__regex=r"^SO-[0-9]+$")
            .order_by(Length("number").desc(), "-number")
            .values_list("number", flat=True)
            .first()
        )
        return int(last[3:]) + 1 if last else 1

    def _orders(
        self,
        count: int,
        items_per_order: int,
        customer_pks: list[int],
        catalogue: list[tuple[int, str, Decimal]],
        end: datetime,
        batch_size: int,
        sync: bool,
    ) -> tuple[list[str], int, int]:
        rng, quantum = self.rng, self.quantum
        span = int(HISTORY.total_seconds())
        first_number = self._next_number()
        returns_pks = connection.features.can_return_rows_from_bulk_insert
        unit_price = OrderItem._meta.get_field("unit_price")
        prepared = {pk: unit_price.get_db_prep_save(p, connection) for pk, _, p in catalogue}
        numbers: list[str] = []
        item_count = queued = 0
        for start in range(0, count, batch_size):
            size = min(batch_size, count - start)
            orders, lines = [], []
            for offset in range(size):
                number = f"SO-{first_number + start + offset:06d}"
                chosen = (
                    rng.sample(catalogue, items_per_order)
                    if items_per_order <= len(catalogue)
                    else rng.choices(catalogue, k=items_per_order)
                )
                quantities = rng.choices(range(1, 6), QUANTITY_WEIGHTS, k=items_per_order)
                order_lines = list(zip(chosen, quantities, strict=True))
                subtotal = sum(price * qty for (_, _, price), qty in order_lines)
                discount = Decimal(0)
                if rng.random() < 0.2:
                    discount = (subtotal * Decimal(rng.randrange(5, 16)) / 100).quantize(quantum)
                orders.append(
                    Order(
                        customer_id=rng.choice(customer_pks),
                        number=number,
                        status=rng.choices(STATUSES, STATUS_WEIGHTS)[0],
                        currency=self.currency,
                        discount=discount,
                        note=rng.choice(NOTES) if rng.random() < 0.1 else "",
                        created_at=end - timedelta(seconds=rng.randrange(1, span)),
                    )
                )
                lines.append(order_lines)
                numbers.append(number)
            Order.objects.bulk_create(orders, batch_size=batch_size)
            if not returns_pks:  # e.g. MySQL: look the new orders up by number
                by_number = dict(
                    Order.objects.filter(number__in=[o.number for o in orders]).values_list(
                        "number", "pk"
                    )
                )
                for order in orders:
                    order.pk = by_number[order.number]
            self._insert_items(
                (order.pk, product_pk, qty, prepared[product_pk])
                for order, placed in zip(orders, lines, strict=True)
                for (product_pk, _, _), qty in placed
            )
            item_count += size * items_per_order
            if sync:
                queued += self._enqueue(orders)
        return numbers, item_count, queued

    def _insert_items(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """One ``executemany``: order lines need no pks back, and skipping the ORM's
        per-value compilation makes the 3-lines-per-order seed about twice as fast."""
        meta, quote = OrderItem._meta, connection.ops.quote_name
        columns = ", ".join(
            quote(meta.get_field(name).column)
            for name in ("order", "product", "quantity", "unit_price")
        )
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s)"  # noqa: S608 - names from the model, values bound
        with connection.cursor() as cursor:
            cursor.executemany(sql, list(rows))

    def _enqueue(self, orders: list[Order]) -> int:
        # In the caller's transaction, like a save: outbox rows commit with the orders.
        try:
            from django_voucherify_orders import enqueue_sync
        except ImportError as exc:
            raise CommandError(
                f"--sync needs django_voucherify_orders.enqueue_sync, which this version "
                f"lacks: {exc}"
            ) from None
        return enqueue_sync(orders)
