"""The benchmark's own database and broker, created before Django is set up."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg2
from psycopg2 import sql

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
BENCH_DB = "winback_bench"
DATABASE_URL = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/14"
META_TABLE = "bench_meta"


def say(*parts) -> None:
    """The benchmark's only output channel (stdout, flushed: it is watched while it runs)."""
    print(*parts, flush=True)  # noqa: T201


@contextmanager
def timed(label: str, *, quiet: bool = False):
    """``with timed("x") as t: …`` then ``t.seconds``."""

    class Timer:
        seconds = 0.0

    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start
        if not quiet:
            say(f"  {label}: {timer.seconds:.1f} s")


def loadavg() -> float:
    """The 1-minute load average: another process on the machine shows here."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def environment_set() -> None:
    """Point Django and Celery at the benchmark database and broker (before ``django.setup()``)."""
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "winback.settings")
    # DEBUG keeps every query in memory and wraps each cursor: not what production runs.
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"


def _connect(dbname: str):
    conn = psycopg2.connect(dbname=dbname, **PG)
    conn.autocommit = True
    return conn


def connect():
    """A connection of its own to the benchmark database (autocommit)."""
    return _connect(BENCH_DB)


def database_exists() -> bool:
    conn = _connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB])
            return cur.fetchone() is not None
    finally:
        conn.close()


def meta_read() -> dict | None:
    """The parameters of the dataset in ``winback_bench``, if a generation finished there."""
    if not database_exists():
        return None
    conn = _connect(BENCH_DB)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", [META_TABLE])
            if cur.fetchone()[0] is None:
                return None
            cur.execute(f"SELECT params FROM {META_TABLE} ORDER BY id DESC LIMIT 1")  # noqa: S608
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def database_create(*, fresh: bool) -> None:
    """Create ``winback_bench`` (dropping it first when ``fresh``)."""
    conn = _connect("postgres")
    try:
        with conn.cursor() as cur:
            if fresh:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    finally:
        conn.close()


def meta_write(cursor, params: dict) -> None:
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {META_TABLE} (id serial PRIMARY KEY, params jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())"
    )
    cursor.execute(f"INSERT INTO {META_TABLE} (params) VALUES (%s)", [json.dumps(params)])  # noqa: S608
