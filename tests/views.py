"""A view that changes an order, as a shop's checkout view would."""

from django.http import HttpRequest, HttpResponse
from shop.models import Order


def set_status(request: HttpRequest, pk: int) -> HttpResponse:
    order = Order.objects.get(pk=pk)
    order.status = request.GET["status"]
    order.save()
    order.items.update(quantity=5)  # a QuerySet.update: no signal, same transaction
    order.note = "changed by the view"
    order.save()
    if request.GET.get("fail"):
        raise RuntimeError("the view failed after saving")
    return HttpResponse("ok")
