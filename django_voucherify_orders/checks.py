"""Django system checks for the ``VOUCHERIFY_ORDERS`` setting (ids ``vo.E001`` ...).

Ids are stable: users silence them with ``SILENCED_SYSTEM_CHECKS``.

- vo.E001  the setting is missing or not a dict
- vo.E002  a required key is missing
- vo.E003  a key has an invalid value
- vo.E004  an unknown key (a typo, usually)
- vo.E005  ORDER_MODEL is not an installed model
- vo.E006  MAPPER cannot be imported or is not an OrderMapper subclass
- vo.E007  a TRIGGERS entry names no installed model, or no foreign key to the order model
- vo.E008  the routers put the outbox in another database than the order model
- vo.W001  API_URL is plain http to a host other than this machine
- vo.W002  LOG_HTTP_BODIES is on while DEBUG is False
- vo.W003  MAX_ATTEMPTS fails orders long before RETRY_FOR (a short outage loses changes)

A mapper adds its own with ``OrderMapper.check()`` (contrib.oscar: ``vo.E101`` ...).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Tags, Warning

from .conf import SETTING, VoucherifyOrdersSettings, check_settings


def register() -> None:
    """Called from AppConfig.ready()."""
    checks.register(check_voucherify_settings, Tags.compatibility)


def check_voucherify_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING, None)
    problems = check_settings(raw)
    messages: list[CheckMessage] = [
        Error(problem.message, hint=problem.hint, id=problem.check_id) for problem in problems
    ]
    if problems:
        return messages
    config = VoucherifyOrdersSettings.model_validate(raw)
    messages.extend(_sync_problems(config))
    if config.api_url_is_insecure:
        messages.append(
            Warning(
                f'{SETTING}["API_URL"] uses plain http to a remote host: '
                "the secret key would cross the network unencrypted.",
                hint="Use https:// (plain http is only meant for an emulator on localhost).",
                id="vo.W001",
            )
        )
    if config.log_http_bodies and not settings.DEBUG:
        messages.append(
            Warning(
                f'{SETTING}["LOG_HTTP_BODIES"] is on while DEBUG is False: every order sent to '
                "or read from Voucherify, with customers' names, emails and addresses, "
                "goes to your logs.",
                hint='Use "LOG_HTTP_BODIES": DEBUG, so that only a development machine logs '
                "bodies.",
                id="vo.W002",
            )
        )
    messages.extend(_retry_problems(config))
    return messages


def _retry_problems(config: VoucherifyOrdersSettings) -> list[CheckMessage]:
    """MAX_ATTEMPTS still works, but set to the old default it gives up after minutes."""
    if config.max_attempts is None:
        return []
    longest = sum(
        min(config.retry_backoff_max, config.retry_backoff_base * 2 ** (retry - 1))
        for retry in range(1, config.max_attempts)
    )  # the most the backoff waits between the first try and the last
    if longest * 2 >= config.retry_for:
        return []
    return [
        Warning(
            f'{SETTING}["MAX_ATTEMPTS"] = {config.max_attempts} fails an order after at most '
            f"{longest:.0f}s of transient failures, long before RETRY_FOR "
            f"({config.retry_for:.0f}s): an outage longer than that loses changes until "
            "someone retries the failed orders.",
            hint='Remove "MAX_ATTEMPTS" (it counts tries, the first included): '
            "transient failures are then retried for RETRY_FOR.",
            id="vo.W003",
        )
    ]


def _sync_problems(config: VoucherifyOrdersSettings) -> list[CheckMessage]:
    if not config.order_model:
        return []
    from django.apps import apps
    from django.utils.module_loading import import_string

    from .mapping import OrderMapper

    messages: list[CheckMessage] = []
    try:
        order_model = apps.get_model(config.order_model)
    except (LookupError, ValueError) as exc:
        messages.append(
            Error(
                f'{SETTING}["ORDER_MODEL"] = {config.order_model!r}: {exc}',
                hint='Use "app_label.ModelName" of an installed app, e.g. "shop.Order".',
                id="vo.E005",
            )
        )
        order_model = None
    try:
        mapper = import_string(config.mapper or "")
        if not (isinstance(mapper, type) and issubclass(mapper, OrderMapper)):
            raise ImportError(
                "it is not a subclass of django_voucherify_orders.mapping.OrderMapper"
            )
    except ImportError as exc:
        messages.append(
            Error(
                f'{SETTING}["MAPPER"] = {config.mapper!r} is not usable: {exc}',
                hint="Point it at your OrderMapper subclass, "
                'e.g. "shop.voucherify.ShopOrderMapper".',
                id="vo.E006",
            )
        )
    else:
        if order_model is not None:  # the mapper's own checks (contrib.oscar's status map)
            messages.extend(mapper(order_model).check())
    if order_model is not None:
        messages.extend(check_outbox_database(order_model))
    for label, field_name in config.triggers.items():
        problem = _trigger_problem(apps, label, field_name, order_model)
        if problem:
            messages.append(
                Error(
                    f'{SETTING}["TRIGGERS"][{label!r}] = {field_name!r}: {problem}',
                    hint="Map a related model to the name of its ForeignKey to the order, "
                    'e.g. {"shop.OrderItem": "order"}.',
                    id="vo.E007",
                )
            )
    return messages


def check_outbox_database(order_model: Any, routers: Any = None) -> list[CheckMessage]:
    """vo.E008: the outbox row is written in the order's transaction, so both must be in
    one database, and the pushes must read the outbox where it is written.

    ``routers`` is a ``django.db.router``-like object (default: Django's, built from
    ``DATABASE_ROUTERS``)."""
    from django.db import router as default_router

    from .models import OrderSync

    routers = routers or default_router
    orders_db = routers.db_for_write(order_model)
    outbox_db = routers.db_for_write(OrderSync)
    outbox_read_db = routers.db_for_read(OrderSync)
    problems = []
    if outbox_db != orders_db:
        problems.append(
            f"the outbox is written to database {outbox_db!r} and "
            f"{order_model._meta.label} to {orders_db!r}: an order and its outbox row "
            "would not be saved in one transaction, and a crash between the two loses "
            "the change"
        )
    if outbox_read_db != outbox_db:
        problems.append(
            f"the outbox is read from database {outbox_read_db!r} but written to "
            f"{outbox_db!r}: pushes would not see the orders marked changed"
        )
    if not problems and not routers.allow_migrate_model(outbox_db, OrderSync):
        problems.append(f"the routers do not let the outbox's tables be created in {outbox_db!r}")
    return [
        Error(
            f"{SETTING}: {problem}.",
            hint=f"In your DATABASE_ROUTERS, route the app label "
            f'"{OrderSync._meta.app_label}" like "{order_model._meta.app_label}" '
            f"(db_for_read, db_for_write and allow_migrate all answer {orders_db!r}).",
            id="vo.E008",
        )
        for problem in problems
    ]


def _trigger_problem(apps: Any, label: str, field_name: str, order_model: Any) -> str | None:
    from django.core.exceptions import FieldDoesNotExist

    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        return str(exc)
    try:
        field = model._meta.get_field(field_name)
    except FieldDoesNotExist:
        return f"{label} has no field {field_name!r}"
    if not field.many_to_one or (
        order_model is not None and field.related_model is not order_model
    ):
        target = order_model._meta.label if order_model is not None else "the order model"
        return f"{label}.{field_name} is not a ForeignKey to {target}"
    return None
