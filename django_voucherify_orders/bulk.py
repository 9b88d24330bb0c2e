"""Many-row inserts as one ``executemany``: one query per batch on every database.

``bulk_create`` splits its INSERT into chunks of 999 parameters on SQLite (a dozen
statements for 2000 sync rows), so an import's queries per batch would grow with the
batch size; and it builds a model instance per row. PostgreSQL and SQLite (3.24+) both
understand ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, models, router
from django.utils import timezone

__all__ = ["insert_rows"]


def insert_rows(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT one row per mapping of field name to value; other fields get their default.

    Defaults (and ``auto_now``/``auto_now_add`` times) are prepared once per call, not
    once per row; no primary keys are fetched back.
    """
    if not rows:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    if connection.vendor not in ("postgresql", "sqlite"):
        objs = [model(**row) for row in rows]
        model._default_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    now = timezone.now()
    defaults = {field.name: _prepare(field, _default(field, now), connection) for field in fields}
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(field)) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from model metadata and are quoted; values are parameters.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    given = {name for row in rows for name in row}
    prepared = [
        [
            _prepare(field, row[field.name], connection)
            if field.name in given and field.name in row
            else defaults[field.name]
            for field in fields
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _column(field: models.Field) -> str:
    # Concrete fields are exactly those with a column; this narrows the stubs' str | None.
    assert field.column is not None
    return field.column


def _default(field: models.Field, now: Any) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    return field.get_default()


def _prepare(field: models.Field, value: Any, connection: Any) -> Any:
    if field.is_relation and isinstance(value, models.Model):
        value = value.pk
    # SQL NULL, as bulk_create writes it (a JSONField would otherwise encode JSON null).
    return None if value is None else field.get_db_prep_save(value, connection)
