"""Statements timed per step: ``StepTimer`` (a ``connection.execute_wrapper``) sums the time and the
statements of each step of ``business_evaluate`` (``classify``), ``commits_timed`` adds COMMIT."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from contextlib import contextmanager

_TABLE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


def classify(sql: str) -> str:
    """Which step of ``business_evaluate`` a statement belongs to."""
    head = sql.lstrip()[:12].upper()
    if head.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
        return "savepoints"
    match = _TABLE.match(sql)
    if match:
        verb, table = match.group(1).split()[0].upper(), match.group(2)
        return {
            ("INSERT", "campaigns_evaluationrun"): "run row (the date's lock)",
            ("INSERT", "campaigns_campaignsend"): "sends: INSERT … SELECT (selection + write)",
            ("INSERT", "members_walletreward"): "rewards: INSERT … SELECT",
            ("INSERT", "notifications_delivery"): "deliveries: INSERT … SELECT",
            ("UPDATE", "campaigns_evaluationrun"): "run row (finish)",
        }.get((verb, table), f"other {verb.lower()} {table}")
    flat = " ".join(sql.split())
    if flat.startswith("WITH c (") and "INSERT INTO" in flat:
        return "the night's statement: selection, sends, rewards, deliveries (PostgreSQL)"
    if 'FROM "campaigns_campaign" INNER JOIN' in flat or 'FROM "campaigns_campaign" WHERE' in flat:
        return "campaigns due"
    if 'SELECT DISTINCT "campaigns_campaignsend"."campaign_id"' in flat:
        return "which campaigns have sends"
    if "campaigns_campaignsend" in flat and "GROUP BY" in flat:
        return "per-campaign stats"
    if "notifications_delivery" in flat and "COUNT(" in flat.upper():
        return "pacing backlog count"
    return "other selects"


class StepTimer:
    """``connection.execute_wrapper`` that sums time and statements per step."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.slowest: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            step = classify(sql)
            self.seconds[step] += elapsed
            self.calls[step] += 1

    def add(self, step: str, seconds: float) -> None:
        self.seconds[step] += seconds
        self.calls[step] += 1


@contextmanager
def commits_timed(timer: StepTimer):
    """Time COMMIT too (deferred constraint checks run there); it is no ``execute``."""
    from django.db import connections

    conn = connections["default"]
    original = conn._commit

    def _commit():
        start = time.perf_counter()
        try:
            return original()
        finally:
            timer.add("COMMIT (deferred FK checks)", time.perf_counter() - start)

    conn._commit = _commit
    try:
        yield
    finally:
        del conn._commit
