"""Many-row inserts as one ``executemany``: one query per batch on every database.

``bulk_create`` splits its INSERT into chunks of 999 parameters on SQLite (a dozen
statements for 2000 sync rows), so an import's queries per batch would grow with the
batch size. PostgreSQL and SQLite (3.24+) both understand ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router

__all__ = ["insert_rows"]


def insert_rows(objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """INSERT ``objs`` (all of one model) without fetching primary keys back."""
    if not objs:
        return
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor not in ("postgresql", "sqlite"):
        model._default_manager.using(alias).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from model metadata and are quoted; values are parameters.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    rows = [
        [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
