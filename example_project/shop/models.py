"""A small shop: customers buy products in orders of items.

The shop keeps its own status vocabulary; ``shop.voucherify.ShopOrderMapper``
translates it to Voucherify's.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a 3-letter ISO 4217 code, e.g. EUR.")


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    phone = models.CharField(max_length=40, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True, help_text='e.g. "DE"')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal(0))]
    )
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=32, unique=True, help_text='e.g. "SO-000123"')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    discount = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
    )
    note = models.TextField(blank=True)
    # The date voucherify_import --since/--until filters on (OrderMapper.date_field).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal(0))]
    )

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id} @ {self.unit_price}"
