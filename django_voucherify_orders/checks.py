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
- vo.E009  the mapper's date_field or status_field is not a field of the order model
- vo.E010  EXPORT_STORAGE names no key of STORAGES
- vo.W001  API_URL is plain http to a host other than this machine
- vo.W002  LOG_HTTP_BODIES is on while DEBUG is False
- vo.W003  MAX_ATTEMPTS fails orders long before RETRY_FOR (a short outage loses changes)
- vo.W004  a per-process cache (local memory, dummy) while Celery workers run elsewhere
- vo.W005  the export storage is the public media storage, or a directory under MEDIA_ROOT

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
    messages.extend(_cache_problems())
    messages.extend(_export_storage_problems(config))
    return messages


# Caches that each process keeps for itself: nothing written there reaches a worker.
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _cache_problems() -> list[CheckMessage]:
    """The rate limiter, the queued-push markers, the 401 pause and the health page's
    figures are shared through the default cache: per process, each worker has its own."""
    from celery import current_app

    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    conf = current_app.conf
    in_process = conf.task_always_eager or str(conf.broker_url or "").startswith("memory://")
    if backend not in PER_PROCESS_CACHES or in_process:
        return []
    return [
        Warning(
            f"The default cache is {backend}, which each process keeps for itself, while "
            "Celery workers run in other processes: they would not share the rate limit, "
            "the queued-push markers, the pause after a 401 or the health page's figures.",
            hint="Use a cache every process reaches (Redis, Memcached, the database) as "
            'CACHES["default"].',
            id="vo.W004",
        )
    ]


def _export_storage_problems(config: VoucherifyOrdersSettings) -> list[CheckMessage]:
    from .export_storage import is_public, storage_alias

    alias = config.export_storage
    if alias is not None and alias not in settings.STORAGES:
        return [
            Error(
                f'{SETTING}["EXPORT_STORAGE"] = {alias!r} is not a key of STORAGES.',
                hint=f"Add STORAGES[{alias!r}] (a private storage), or remove the key.",
                id="vo.E010",
            )
        ]
    why = is_public(storage_alias())
    if not why:
        return []
    return [
        Warning(
            f"Export CSVs (every order's customer, amounts and metadata) are stored where "
            f"the public may reach them: {why}.",
            hint='Name a private storage: STORAGES["voucherify_exports"] = {"BACKEND": '
            '"django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": '
            '"/var/lib/myshop/voucherify-exports"}}.',
            id="vo.W005",
        )
    ]


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
    mapper: Any = None
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
        if isinstance(mapper, type) and issubclass(mapper, OrderMapper):
            messages.extend(_mapper_field_problems(mapper, order_model, config.mapper or ""))
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


def _mapper_field_problems(mapper: type[Any], order_model: Any, path: str) -> list[CheckMessage]:
    """vo.E009: the fields the import's --since/--until and --status filter on."""
    messages: list[CheckMessage] = []
    for attribute in ("date_field", "status_field"):
        lookup = getattr(mapper, attribute)
        problem = _lookup_problem(order_model, lookup)
        if problem:
            messages.append(
                Error(
                    f"{path}.{attribute} = {lookup!r}: {order_model._meta.label} {problem}.",
                    hint=f"Set {attribute} on your mapper to a field of "
                    f"{order_model._meta.label} (a lookup across relations, "
                    '"payment__date", works too).',
                    id="vo.E009",
                )
            )
    return messages


def _lookup_problem(model: Any, lookup: str) -> str | None:
    from django.core.exceptions import FieldDoesNotExist

    *relations, last = lookup.split("__")
    for name in relations:
        try:
            model = model._meta.get_field(name).related_model
        except FieldDoesNotExist:
            return f"has no field {name!r}"
        if model is None:
            return f"cannot follow {lookup!r} past {name!r}, which is not a relation"
    try:
        model._meta.get_field(last)
    except FieldDoesNotExist:
        return f"has no field {last!r}" if not relations else f"has no {lookup!r}"
    return None


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
