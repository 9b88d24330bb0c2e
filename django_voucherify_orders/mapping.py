"""OrderMapper: how a shop's order becomes Voucherify's order payload.

Subclass it, point ``VOUCHERIFY_ORDERS["MAPPER"]`` at the subclass, and implement
``to_voucherify``. Everything else has a sensible default.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar, overload

from django.apps import apps
from django.core.checks import CheckMessage
from django.core.exceptions import ValidationError as FieldValueError
from django.db import models
from django.utils.module_loading import import_string
from pydantic import BaseModel, ValidationError

from .client import VoucherifyConfigurationError
from .client.schemas import OrderCreate, validation_problems
from .conf import VoucherifyOrdersSettings, get_settings

Payload = TypeVar("Payload", bound=BaseModel)

__all__ = [
    "InvalidField",
    "MappingError",
    "OrderMapper",
    "currency_exponent",
    "format_minor_units",
    "get_mapper",
    "to_minor_units",
]

# ISO 4217 minor-unit exponents that are not 2. Every other currency has cents.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        [
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (JPY 0, USD 2, KWD 3)."""
    code = currency.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    return _EXPONENTS.get(code, 2)


def to_minor_units(amount: Decimal | int | str, currency: str) -> int:
    """``Decimal("12.345")`` KWD -> ``12345``; ``Decimal("19.99")`` USD -> ``1999``.

    Rounds half up (commercial rounding: 0.005 USD becomes 1 cent) when the amount
    has more digits than the currency. Floats are refused: 0.1 + 0.2 is not 0.3.
    """
    if isinstance(amount, float):
        raise TypeError("pass money as Decimal, int or str, not float")
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{amount!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(currency_exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_minor_units(amount: int, currency: str) -> str:
    """``1999, "EUR"`` -> ``"19.99 EUR"``; ``1500, "JPY"`` -> ``"1500 JPY"`` (for people)."""
    exponent = currency_exponent(currency)
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f} {currency.strip().upper()}"


def _as_value(field: Any, text: str) -> Any:
    """``text`` as a value of ``field`` (an int pk from "17"), or None if it cannot be."""
    try:
        return field.to_python(text)
    except (FieldValueError, ValueError, TypeError):
        return None


class MappingError(ValueError):
    """The mapper produced something Voucherify would refuse, or raised; names order and field."""

    def __init__(self, order_pk: Any, source_id: str | None, problems: list[tuple[str, str]]):
        self.order_pk = order_pk
        self.source_id = source_id
        self.problems = problems
        listed = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(f"order {order_pk} (source_id {source_id!r}): {listed}")


class InvalidField(ValueError):
    """Raise from ``to_voucherify`` to reject an order, naming the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class OrderMapper:
    """Maps one local order to an :class:`~.client.schemas.OrderCreate` payload.

    Override :meth:`get_queryset` with the ``select_related``/``prefetch_related``
    that :meth:`to_voucherify` needs, so that pushing or importing N orders costs a
    fixed number of queries.
    """

    #: Prepended to the primary key to make the source_id, e.g. "shop-".
    source_id_prefix: str = ""
    #: The order field used by ``voucherify_import --since/--until``.
    date_field: str = "created_at"
    #: The order field used by ``voucherify_import --status`` (your values, not Voucherify's).
    status_field: str = "status"
    #: The order field whose value, after ``source_id_prefix``, is the source_id (as the
    #: default ``source_id()`` uses the pk): lets the commands' ``--ids`` take source ids
    #: too. Set it when you override ``source_id()`` (e.g. ``"number"``), or None.
    source_id_field: str | None = "pk"
    #: The metadata key holding the order's ISO 4217 currency, if the mapper sends one:
    #: Voucherify's order has no currency, so the admin reads it there to show amounts.
    currency_metadata_key: str | None = "currency"

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model

    def get_queryset(self) -> models.QuerySet[Any]:
        return self.model._default_manager.all()

    def source_id(self, order: Any) -> str:
        """Voucherify's ``source_id`` for ``order``: the upsert key; it must never change."""
        return f"{self.source_id_prefix}{order.pk}"

    def ready(self, order: Any) -> bool:
        """Whether live sync may push ``order`` now (default: always).

        Voucherify keeps the order data it stored first for a ``source_id`` when vouchers
        are validated or redeemed with it: return False to hold an order back until it is
        placed. A held order's row is ``skipped`` without an HTTP call; the next change to
        the order (or a trigger) pushes it once this says True. Asked only until
        Voucherify holds the order (pushed or imported): later changes are always pushed.
        Decide from the order and what ``get_queryset`` loads with it, and only from
        tracked data.
        """
        return True

    def check(self) -> list[CheckMessage]:
        """System check messages about this mapper's configuration (run by ``manage.py check``)."""
        return []

    def orders_named(self, ids: Iterable[str]) -> models.Q:
        """A filter for the orders that ``ids`` name, each by primary key or by source_id
        (through ``source_id_field``, and the source_ids live sync has recorded)."""
        from .models import OrderSync

        ids = list(ids)
        pk_field = self.model._meta.pk
        recorded = OrderSync.objects.filter(source_id__in=ids).values_list("order_pk", flat=True)
        pks = [_as_value(pk_field, key) for key in [*ids, *recorded]]
        named = models.Q(pk__in=[pk for pk in pks if pk is not None])
        if self.source_id_field:
            field = (
                pk_field
                if self.source_id_field == "pk"
                else self.model._meta.get_field(self.source_id_field)
            )
            prefix = self.source_id_prefix
            values = [_as_value(field, key[len(prefix) :]) for key in ids if key.startswith(prefix)]
            lookup = f"{self.source_id_field}__in"
            named |= models.Q(**{lookup: [value for value in values if value is not None]})
        return named

    def to_voucherify(self, order: Any) -> OrderCreate | dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement to_voucherify(order)")

    @overload
    def build(self, order: Any) -> OrderCreate: ...
    @overload
    def build(self, order: Any, model: type[Payload]) -> Payload: ...
    def build(self, order: Any, model: type[BaseModel] = OrderCreate) -> BaseModel:
        """The validated payload, with ``source_id`` set; raises :class:`MappingError`.

        ``model`` is ``OrderCreate`` for live pushes and ``OrderImport`` for imports.
        """
        try:
            source_id = self.source_id(order)
        except Exception as exc:  # user code too: a bug fails this order, never the worker
            raised = f"{type(exc).__name__}: {_described(exc)}"
            raise MappingError(order.pk, None, [("source_id", raised)]) from exc
        try:
            payload = self.to_voucherify(order)
            if isinstance(payload, BaseModel):
                payload = payload.model_dump(exclude_unset=True)
            if not isinstance(payload, dict):
                raise TypeError(f"to_voucherify returned {type(payload).__name__}, not a dict")
            return model.model_validate({**payload, "source_id": source_id})
        except ValidationError as exc:
            raise MappingError(order.pk, source_id, validation_problems(exc)) from None
        except InvalidField as exc:
            raise MappingError(order.pk, source_id, [(exc.field, exc.message)]) from None
        except Exception as exc:  # a bug in user code fails this order, never the worker
            problem = (type(exc).__name__, _described(exc))
            raise MappingError(order.pk, source_id, [problem]) from exc


def _described(exc: Exception) -> str:
    return str(exc) or repr(exc)


_mappers = threading.local()


def get_order_model(config: VoucherifyOrdersSettings | None = None) -> type[models.Model]:
    config = config or get_settings()
    if not config.order_model:
        raise VoucherifyConfigurationError(
            'VOUCHERIFY_ORDERS["ORDER_MODEL"] is not set; add for example:\n'
            '    "ORDER_MODEL": "shop.Order",'
        )
    try:
        return apps.get_model(config.order_model)
    except (LookupError, ValueError) as exc:
        raise VoucherifyConfigurationError(
            f'VOUCHERIFY_ORDERS["ORDER_MODEL"] = {config.order_model!r}: {exc}'
        ) from None


def get_mapper() -> OrderMapper:
    """The configured mapper, instantiated once per settings object and thread."""
    config = get_settings()
    cached = getattr(_mappers, "entry", None)
    if cached is not None and cached[0] is config:
        return cached[1]
    try:
        mapper_class = import_string(config.mapper or "")
    except ImportError as exc:
        raise VoucherifyConfigurationError(
            f'VOUCHERIFY_ORDERS["MAPPER"] = {config.mapper!r} cannot be imported: {exc}'
        ) from None
    if not (isinstance(mapper_class, type) and issubclass(mapper_class, OrderMapper)):
        raise VoucherifyConfigurationError(
            f'VOUCHERIFY_ORDERS["MAPPER"] = {config.mapper!r} is not an OrderMapper subclass'
        )
    mapper = mapper_class(get_order_model(config))
    _mappers.entry = (config, mapper)
    return mapper
