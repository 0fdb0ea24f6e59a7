"""SQL pieces the night's statements share: typed VALUES lists, parameters adapted for the
database, and what differs between PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import connection


def _false() -> str:
    return "FALSE" if connection.vendor == "postgresql" else "0"


def _values_sql(name: str, columns: list[tuple[str, str]], rows: list[list]) -> tuple[str, list]:
    """``name(columns) AS (VALUES …)`` for a WITH clause, typed on PostgreSQL (NULL columns too)."""
    typed = connection.vendor == "postgresql"
    row = "(" + ", ".join(f"CAST(%s AS {t})" if typed else "%s" for _, t in columns) + ")"
    params = [_db_value(v) for r in rows for v in r]
    sql = f"{name} ({', '.join(c for c, _ in columns)}) AS (VALUES {', '.join([row] * len(rows))})"
    return sql, params


def _db_value(value):
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, Decimal) and connection.vendor != "postgresql":
        return str(value)
    return value


def _epoch_to_timestamp_sql(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"to_timestamp({expr})"
    return f"datetime({expr}, 'unixepoch')"
