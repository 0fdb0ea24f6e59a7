"""Database helpers below every app (no model imports): what several apps' set-based writes share."""

from __future__ import annotations

from django.db import connection


def rows_insert(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Multi-row INSERTs of plain tuples (values already adapted for the database), as few as the
    backend's parameter limit allows: no model instance per row."""
    if not rows:
        return
    ops = connection.ops
    head = (
        f"INSERT INTO {ops.quote_name(model._meta.db_table)} ({', '.join(ops.quote_name(c) for c in columns)}) VALUES "
    )
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    size = max(ops.bulk_batch_size(columns, rows), 1)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            cursor.execute(head + ", ".join([one] * len(part)), [value for row in part for value in row])
