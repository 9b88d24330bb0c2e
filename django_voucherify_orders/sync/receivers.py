"""post_save / post_delete of the order model and its TRIGGERS -> an outbox mark.

The receivers are connected to every model once and look the sender up in the
current settings, so ``override_settings`` of ORDER_MODEL or TRIGGERS works and
a project without ORDER_MODEL pays one dictionary lookup per save.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from ..conf import VoucherifyOrdersSettings, get_settings

_routes_cache: tuple[VoucherifyOrdersSettings, dict[str, str | None]] | None = None


def _routes() -> dict[str, str | None]:
    """Model label -> None for the order model, or the trigger's order field attname."""
    global _routes_cache
    config = get_settings()
    if _routes_cache is not None and _routes_cache[0] is config:
        return _routes_cache[1]
    from django.apps import apps

    routes: dict[str, str | None] = {}
    if config.order_model:
        routes[apps.get_model(config.order_model)._meta.label] = None
        for label, field_name in config.triggers.items():
            model = apps.get_model(label)
            routes[model._meta.label] = model._meta.get_field(field_name).attname
    _routes_cache = (config, routes)
    return routes


def _route(sender: type) -> tuple[bool, str | None]:
    routes = _routes()
    label = sender._meta.label  # type: ignore[attr-defined]
    if label in routes:
        return True, routes[label]
    return False, None


def on_save(sender: type, instance: Any, created: bool = False, raw: bool = False,
            using: str | None = None, **kwargs: Any) -> None:  # fmt: skip
    if raw:  # loaddata: fixtures are not changes made by the shop
        return
    known, order_attname = _route(sender)
    if not known:
        return
    from ..mapping import get_mapper
    from .marks import mark_changed

    if order_attname is None:
        mark_changed(instance.pk, get_mapper().source_id(instance), created=created, using=using)
    elif (order_pk := getattr(instance, order_attname)) is not None:
        mark_changed(order_pk, using=using)


def on_delete(sender: type, instance: Any, using: str | None = None, **kwargs: Any) -> None:
    known, order_attname = _route(sender)
    if not known:
        return
    from .marks import mark_changed, mark_deleted

    if order_attname is None:
        mark_deleted(instance.pk, using=using)
    elif (order_pk := getattr(instance, order_attname)) is not None:
        mark_changed(order_pk, using=using)


def connect() -> None:
    post_save.connect(on_save, dispatch_uid="django_voucherify_orders.on_save")
    post_delete.connect(on_delete, dispatch_uid="django_voucherify_orders.on_delete")
