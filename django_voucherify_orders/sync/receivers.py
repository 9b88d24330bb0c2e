"""Saves and deletes of the order model and its TRIGGERS -> outbox marks.

The receivers are connected to those models only, and to every proxy and
multi-table child of them: a receiver connected without a sender would turn off
Django's fast deletes for every model of the project. They are connected again
when ``VOUCHERIFY_ORDERS`` changes (``override_settings`` included).

A trigger row remembers the order it was loaded with, so a line moved to another
order, or detached from it, marks the order it left as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import models, transaction
from django.db.models.signals import (
    ModelSignal,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_save,
)

from ..client import VoucherifyConfigurationError
from ..conf import SETTING, get_settings
from . import marks
from .publisher import paused_sync

__all__ = ["connect", "disconnect"]

#: Where a trigger instance keeps the order pk it was loaded with (or last saved with);
#: absent when the order field was deferred at load, or the instance predates connect().
LOADED_ORDER = "_voucherify_loaded_order"
_UNKNOWN = object()


@dataclass(frozen=True)
class Route:
    """How an instance of one model names its order: it is one (``field`` None), or a
    trigger whose foreign key ``field`` (column ``attname``) points at one."""

    field: str | None = None
    attname: str = ""


_routes: dict[type[models.Model], Route] = {}
_connected: list[tuple[ModelSignal, type[models.Model], str]] = []


# --- connecting -------------------------------------------------------------------------


def connect() -> None:
    """Connect the receivers to the order model, the triggers, and their proxies and
    children, as the current settings name them. Called again on settings changes."""
    from django.apps import apps

    disconnect()
    if not apps.models_ready:  # AppConfig.ready() connects once every model is loaded
        return
    _routes.update(_routes_for(apps.get_models()))
    for model, route in _routes.items():
        receivers: list[tuple[ModelSignal, Any]] = [
            (pre_save, _on_pre_save),
            (post_save, _on_save),
            (post_delete, _on_delete),
        ]
        if route.field is not None:
            receivers += [(post_init, _on_init), (pre_delete, _on_pre_delete)]
        for signal, receiver in receivers:
            uid = f"django_voucherify_orders.{receiver.__name__}"
            signal.connect(receiver, sender=model, dispatch_uid=uid)
            _connected.append((signal, model, uid))


def disconnect() -> None:
    """Disconnect every receiver ``connect()`` connected (benchmarks, tests)."""
    for signal, model, uid in _connected:
        signal.disconnect(sender=model, dispatch_uid=uid)
    _connected.clear()
    _routes.clear()


def _routes_for(all_models: Iterable[type[models.Model]]) -> dict[type[models.Model], Route]:
    """The route of each model that is, or inherits from, the order model or a trigger.

    Entries that name no model or field are left out: the system checks report them
    (vo.E005, vo.E007), and a save must not fail over the app's configuration.
    """
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    try:
        config = get_settings()
    except VoucherifyConfigurationError:  # the checks name the line to fix
        return {}
    if not config.order_model:
        return {}
    by_concrete: dict[type[models.Model], Route] = {}
    try:
        order_model = apps.get_model(config.order_model)._meta.concrete_model
    except (LookupError, ValueError):
        return {}
    assert order_model is not None
    by_concrete[order_model] = Route()
    for label, field_name in config.triggers.items():
        try:
            trigger = apps.get_model(label)
            field = trigger._meta.get_field(field_name)
        except (LookupError, ValueError, FieldDoesNotExist):
            continue
        assert trigger._meta.concrete_model is not None
        route = Route(field.name, field.attname)
        by_concrete.setdefault(trigger._meta.concrete_model, route)

    routes: dict[type[models.Model], Route] = {}
    for model in all_models:
        concrete = model._meta.concrete_model
        assert concrete is not None
        # A proxy routes as its concrete model; a multi-table child as its nearest
        # routed ancestor (Django sends the child's signals only, not its parents').
        for ancestor in [concrete, *concrete._meta.get_parent_list()]:
            if ancestor in by_concrete:
                routes[model] = by_concrete[ancestor]
                break
    return routes


def _on_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        connect()


setting_changed.connect(_on_settings_changed, dispatch_uid="django_voucherify_orders.routes")


# --- receivers --------------------------------------------------------------------------


def _on_init(sender: type, instance: Any, **kwargs: Any) -> None:
    route = _routes.get(sender)
    if route is not None and route.attname in instance.__dict__:
        instance.__dict__[LOADED_ORDER] = instance.__dict__[route.attname]


def _on_pre_save(
    sender: type,
    instance: Any,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    route = _routes.get(sender)
    if raw or route is None:
        return
    if route.field is not None:
        _learn_loaded_order(sender, instance, route, using)
    if transaction.get_connection(using).in_atomic_block:
        return  # post_save marks in the same transaction
    # Autocommit: the row's UPDATE commits before post_save runs, so a crash in between
    # would lose the change. Mark now (not publishing: post_save does, after the UPDATE);
    # a mark for a save that then fails is harmless, the push compares payload hashes.
    with paused_sync():
        if route.field is None:
            if not instance._state.adding:  # a new order: the sweep finds it has no row
                marks.mark_changed(instance.pk, using=using)
        else:
            for order_pk in _orders(*_moved(instance, route, update_fields)):
                marks.mark_changed(order_pk, using=using)


def _on_save(
    sender: type,
    instance: Any,
    created: bool = False,
    raw: bool = False,
    using: str | None = None,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    route = _routes.get(sender)
    if route is None:
        return
    if route.field is None:
        if not raw:  # loaddata: fixtures are not changes made by the shop
            from ..mapping import get_mapper

            source_id = get_mapper().source_id(instance)
            marks.mark_changed(instance.pk, source_id, created=created, using=using)
        return
    if created:
        instance.__dict__[LOADED_ORDER] = None  # the row was in no order before
    before, after = _moved(instance, route, update_fields)
    # The next save of this instance moves the row from the order it is in now.
    instance.__dict__[LOADED_ORDER] = after
    if not raw:
        for order_pk in _orders(before, after):
            marks.mark_changed(order_pk, using=using)


def _on_pre_delete(sender: type, instance: Any, **kwargs: Any) -> None:
    route = _routes.get(sender)
    if route is not None and route.attname not in instance.__dict__:
        getattr(instance, route.attname)  # deferred: after the DELETE it could not be read
        instance.__dict__.setdefault(LOADED_ORDER, instance.__dict__[route.attname])


def _on_delete(sender: type, instance: Any, using: str | None = None, **kwargs: Any) -> None:
    route = _routes.get(sender)
    if route is None:
        return
    if route.field is None:
        marks.mark_deleted(instance.pk, using=using)
    else:
        for order_pk in _orders(*_moved(instance, route, None)):
            marks.mark_changed(order_pk, using=using)


# --- the orders a trigger row leaves and joins ------------------------------------------


def _learn_loaded_order(sender: type, instance: Any, route: Route, using: str | None) -> None:
    """Read the stored order of a row whose order field was deferred at load and has
    been set since (one query; a field still deferred is not changed by this save)."""
    if instance._state.adding or instance.__dict__.get(LOADED_ORDER, _UNKNOWN) is not _UNKNOWN:
        return
    if route.attname not in instance.__dict__:
        return
    manager = sender._meta.concrete_model._base_manager  # type: ignore[attr-defined]
    stored = manager.using(using).filter(pk=instance.pk).values_list(route.attname, flat=True)
    instance.__dict__[LOADED_ORDER] = next(iter(stored), None)


def _moved(instance: Any, route: Route, update_fields: Any) -> tuple[Any, Any]:
    """The order pk the row was in (``_UNKNOWN`` if not known) and the one it is in now.

    A save whose ``update_fields`` leave the order field out does not move the row.
    """
    # A row being inserted was in no order, whatever it was constructed with.
    before = None if instance._state.adding else instance.__dict__.get(LOADED_ORDER, _UNKNOWN)
    writes_order = update_fields is None or not {route.field, route.attname}.isdisjoint(
        update_fields
    )
    if writes_order or before is _UNKNOWN:
        return before, getattr(instance, route.attname)
    return before, before


def _orders(before: Any, after: Any) -> list[Any]:
    """The orders to mark: the one left (first), the one joined; no None, no repeat."""
    return [pk for pk in dict.fromkeys((before, after)) if pk is not None and pk is not _UNKNOWN]
