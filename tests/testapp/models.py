"""Ways a project reaches the shop's orders other than through ``shop.Order`` itself."""

from __future__ import annotations

from django.db import models
from shop.models import Order, OrderItem


class OrderProxy(Order):
    """A proxy, e.g. one with its own admin or manager."""

    class Meta:
        proxy = True


class GiftOrder(Order):
    """A multi-table child: Django sends its signals only, not its parent's."""

    message = models.CharField(max_length=200, blank=True)


class OrderItemProxy(OrderItem):
    class Meta:
        proxy = True


class GiftWrapItem(OrderItem):
    paper = models.CharField(max_length=40, default="red")


class Note(models.Model):
    """A trigger whose order is optional: a note can be detached from its order."""

    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="notes"
    )
    text = models.CharField(max_length=200)

    class Meta:
        ordering = ["pk"]


class Widget(models.Model):
    """Nothing to do with orders: deleting widgets must stay a fast delete."""

    name = models.CharField(max_length=40)
