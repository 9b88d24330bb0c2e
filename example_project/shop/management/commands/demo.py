"""``manage.py demo``: the whole live flow of django-voucherify-orders, end to end.

Without a broker (the default) it starts the Voucherify emulator's HTTP server in this
process, and pushes run in-process right after each commit. With CELERY_BROKER_URL set,
start `python -m django_voucherify_orders.emulator` and a worker first; the demo then
waits for the worker's pushes.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test import override_settings

from django_voucherify_orders import paused_sync
from django_voucherify_orders.client import NotFound, VoucherifyClient
from django_voucherify_orders.conf import get_settings
from django_voucherify_orders.models import OrderSync, SyncAttempt, SyncState
from shop.models import Customer, Order, OrderItem, Product
from shop.voucherify import STATUS_MAP


class Command(BaseCommand):
    help = "Run the live order sync flow against the Voucherify emulator and show both sides."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--emulator-url",
            help="Use a running emulator (e.g. http://127.0.0.1:8787) instead of starting one. "
            "Implied by CELERY_BROKER_URL: a worker must reach the same emulator.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        eager = settings.CELERY_TASK_ALWAYS_EAGER
        with ExitStack() as stack:
            url = options["emulator_url"] or (None if eager else get_settings().api_url)
            if url is None:
                from django_voucherify_orders.emulator import Emulator

                config = get_settings()
                emulator = Emulator(config.app_id, config.secret_key.get_secret_value())
                url = stack.enter_context(emulator.serve("127.0.0.1", 0)).url
                stack.enter_context(
                    override_settings(
                        VOUCHERIFY_ORDERS={**settings.VOUCHERIFY_ORDERS, "API_URL": url}
                    )
                )
            call_command("migrate", verbosity=0)
            where = "in this process after each commit" if eager else "on the Celery worker"
            self.say(f"Voucherify emulator: {url}; pushes run {where}")
            ok = Flow(self, eager).run()
        if not ok:
            raise CommandError("Voucherify does not hold what the shop holds (see the table)")

    def say(self, text: str, style: Any = None) -> None:
        self.stdout.write(style(text) if style else text)


class Flow:
    def __init__(self, command: Command, eager: bool) -> None:
        self.command = command
        self.eager = eager
        config = get_settings()
        self.client = VoucherifyClient(
            config.app_id, config.secret_key.get_secret_value(), config.api_url
        )
        self.run_id = time.strftime("%H%M%S")
        self.calls_before = SyncAttempt.objects.count()

    def step(self, title: str) -> None:
        self.command.say(f"\n== {title}", self.command.style.MIGRATE_HEADING)

    def run(self) -> bool:
        shop = self.shop()
        self.step("1. Checkout: three orders, each saved with its items in one transaction")
        orders = [
            self.checkout(shop["ada"], [(shop["mug"], 2), (shop["tea"], 1)]),
            self.checkout(shop["bo"], [(shop["tea"], 3)]),
            self.checkout(shop["ada"], [(shop["lamp"], 1)]),
        ]
        a, b, c = orders
        self.table(orders)

        self.step("2. Payments arrive for the first two; the third is cancelled")
        for order, status in ((a, "paid"), (b, "paid"), (c, "cancelled")):
            order.status = status
            order.save()
        self.table(orders)

        self.step("3. The first order ships; the second gets one more item, the first loses one")
        a.status = "shipped"
        a.save()
        OrderItem.objects.create(
            order=b, product=shop["mug"], quantity=1, unit_price=Decimal("12.50")
        )
        a.items.filter(product=shop["tea"]).delete()
        self.table(orders)

        self.step(
            "4. A change in a transaction that rolls back (payment declined): nothing is sent"
        )
        calls = self.calls()
        try:
            with transaction.atomic():
                b.status = "cancelled"
                b.save()
                raise RuntimeError("payment provider declined the refund")
        except RuntimeError as exc:
            self.command.say(f"   rolled back: {exc}; API calls made: {self.calls() - calls}")
        b.refresh_from_db()

        self.step("5. A burst of 20 saves to one order in one transaction: one push")
        calls = self.calls()
        with transaction.atomic():
            for n in range(20):
                b.note = f"packing note, revision {n}"
                b.save()
        self.wait()
        self.command.say(f"   API calls for 20 saves: {self.calls() - calls}")
        calls = self.calls()
        b.save()
        self.wait()
        self.command.say(f"   API calls for a save that changes nothing: {self.calls() - calls}")

        self.step(
            "6. A bulk price fix inside paused_sync(): marked, then caught up by voucherify_sync"
        )
        with paused_sync():
            OrderItem.objects.filter(order=c).update(unit_price=Decimal("39.00"))
            from django_voucherify_orders import enqueue_sync

            enqueue_sync(Order.objects.filter(pk=c.pk))  # QuerySet.update sends no signals
        self.command.say(
            f"   pending now: {OrderSync.objects.filter(state=SyncState.PENDING).count()}"
        )
        call_command("voucherify_sync", inline=True, stdout=self.command.stdout)

        self.step("Local shop and Voucherify, side by side")
        ok = self.table(orders, final=True)
        self.command.say(
            f"\n{self.calls() - self.calls_before} API calls for {len(orders)} orders; "
            + ("everything matches." if ok else "MISMATCH."),
            self.command.style.SUCCESS if ok else self.command.style.ERROR,
        )
        return ok

    # --- helpers --------------------------------------------------------------------------

    def shop(self) -> dict[str, Any]:
        def customer(name: str, email: str, city: str) -> Customer:
            return Customer.objects.get_or_create(
                email=email, defaults={"name": name, "city": city, "country": "DE"}
            )[0]

        def product(sku: str, name: str, price: str) -> Product:
            return Product.objects.get_or_create(
                sku=sku, defaults={"name": name, "price": Decimal(price)}
            )[0]

        return {
            "ada": customer("Ada Lovelace", "ada@example.com", "London"),
            "bo": customer("Bo Svensson", "bo@example.com", "Malmö"),
            "mug": product("DEMO-MUG", "Ceramic Mug", "12.50"),
            "tea": product("DEMO-TEA", "Green Tea", "8.00"),
            "lamp": product("DEMO-LAMP", "Desk Lamp", "45.00"),
        }

    def checkout(self, customer: Customer, lines: list[tuple[Product, int]]) -> Order:
        with transaction.atomic():
            number = f"DEMO-{self.run_id}-{Order.objects.count() + 1}"
            order = Order.objects.create(customer=customer, number=number, currency="EUR")
            for product, quantity in lines:
                OrderItem.objects.create(
                    order=order, product=product, quantity=quantity, unit_price=product.price
                )
        return order

    def calls(self) -> int:
        return SyncAttempt.objects.count()

    def wait(self, timeout: float = 30.0) -> None:
        """Eager pushes are done at commit; a worker's take a moment."""
        if self.eager:
            return
        deadline = time.monotonic() + timeout
        while OrderSync.objects.filter(state=SyncState.PENDING).exists():
            if time.monotonic() > deadline:
                raise CommandError("the worker did not push within 30 s; is it running?")
            time.sleep(0.2)
        time.sleep(0.5)

    def table(self, orders: list[Order], final: bool = False) -> bool:
        self.wait()
        say = self.command.say
        say(f"   {'order':<18} {'local':<10} {'amount':>8} | {'Voucherify':<10} {'amount':>8} "
            f"{'items':>5} | sync")  # fmt: skip
        ok = True
        for order in orders:
            order.refresh_from_db()
            items = list(order.items.all())
            local_amount = sum(int(i.unit_price * 100) * i.quantity for i in items)
            row = OrderSync.objects.filter(pk=str(order.pk)).first()
            try:
                remote = self.client.get_order(str(order.pk))
                remote_status, remote_amount, remote_items = (
                    remote.status, remote.amount, len(remote.items)
                )  # fmt: skip
            except NotFound:
                remote_status, remote_amount, remote_items = "-", None, 0
            match = remote_status == STATUS_MAP[order.status] and remote_amount == local_amount
            ok = ok and match and remote_items == len(items)
            say(f"   {order.number:<18} {order.status:<10} {local_amount:>8} | "
                f"{remote_status:<10} {remote_amount or '-':>8} {remote_items:>5} | "
                f"{row.state if row else '-'}{'' if match else '  <- differs'}")  # fmt: skip
        return ok
