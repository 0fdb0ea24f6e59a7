"""One business's night: its lock, its run row (one per business and local date), the writes, and
the counts it records (or, in a dry run, only counts)."""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection, transaction

from members.models import Business

from ..messages import campaign_messages_fix
from ..models import Campaign, EvaluationRun, SendOutcome
from .selection import _selection_ctes, campaigns_due
from .sql import _db_value
from .writes import _Night


@dataclass
class RunResult:
    run: EvaluationRun | None
    local_date: date
    stats: dict[int, dict[str, int]]
    dry_run: bool = False


def business_evaluate(
    *, business: Business, local_date: date, now: datetime, dry_run: bool = False
) -> RunResult | None:
    """Evaluate every due campaign of ``business`` for ``local_date``.

    Returns None when the date was already evaluated (or is being evaluated right now by
    another worker, which then wins). A dry run counts what the night would write, per campaign,
    and writes nothing. Whatever the number of campaigns and members, a night is a handful of
    statements: on PostgreSQL the run row, then one statement that selects the due members and
    writes their sends, rewards and deliveries (data-modifying WITH queries) and returns the
    counts; elsewhere (SQLite) the same pieces as four statements.
    """
    started = clock.monotonic()
    campaigns = campaigns_due(business=business, local_date=local_date)
    if dry_run:
        return RunResult(None, local_date, _dry_run_counts(business, campaigns, local_date), dry_run=True)

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Big but quick statements: JIT compiling them costs more than it saves. An
                # asynchronous commit is safe here: a night lost in a crash is lost whole (run row
                # included) and the next tick evaluates the date again; anything that builds on it
                # (the dispatcher) commits synchronously, which flushes this commit too.
                # Every table the night reads has the index it needs, so no sequential scan: on a
                # send table the planner has no statistics for yet (a first night), its default
                # estimates made it scan every send for every business.
                # One night of a business at a time: the night of D+1 reads the sends D wrote (its
                # spacing and frequency cap), so it waits for D to commit rather than select the
                # same members from a snapshot without them and collide with D's sends (which
                # raised NightConflict and lost the night). The lock ends with the transaction.
                cursor.execute(
                    "SELECT set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true), "
                    "set_config('enable_seqscan', 'off', true), "
                    "pg_advisory_xact_lock(CAST(%s AS integer), CAST(%s AS integer))",
                    [NIGHT_LOCK, business.pk % 2**31],
                )
        run = _run_start(business=business, local_date=local_date, now=now)
        if run is None:
            return None  # another evaluation has (or is writing) this date
        stats: dict[int, dict[str, int]] = {
            c.pk: {"selected": 0, "capped": 0, "control": 0, "sends": 0, "deliveries": 0, "rewards": 0}
            for c in campaigns
        }
        if campaigns:
            # Tonight's texts, fixed: an edit from now on takes effect from the next night.
            fixed = campaign_messages_fix(campaigns=campaigns, now=now)
            night = _Night(business=business, campaigns=campaigns, local_date=local_date, run=run, now=now,
                           messages=fixed)  # fmt: skip
            counts = night.write_one_statement() if connection.vendor == "postgresql" else night.write_in_steps()
            key = {SendOutcome.CAPPED: "capped", SendOutcome.CONTROL: "control", SendOutcome.SCHEDULED: "sends"}
            for campaign_id, _number, outcome, n in counts.sends:
                s = stats[campaign_id]
                s["selected"] += n
                s[key[outcome]] += n
            for campaign_id, n in counts.deliveries.items():
                stats[campaign_id]["deliveries"] = n
            for campaign_id, n in night.rewards_offered(counts.sends).items():
                stats[campaign_id]["rewards"] = n
        finished = {
            "campaigns": len(campaigns),
            "sends": sum(s["sends"] + s["control"] for s in stats.values()),
            "deliveries": sum(s["deliveries"] for s in stats.values()),
            "stats": {str(k): v for k, v in stats.items()},
            "finished_at": now,
            "duration_ms": int((clock.monotonic() - started) * 1000),
        }
        EvaluationRun.objects.filter(pk=run.pk).update(**finished)
        for name, value in finished.items():
            setattr(run, name, value)
    return RunResult(run, local_date, stats)


def _run_start(*, business: Business, local_date: date, now: datetime) -> EvaluationRun | None:
    """The run row of (business, local date), or None when another evaluation has it. A second
    evaluation waits (on PostgreSQL on the night's lock, elsewhere on the unique key) until the
    first commits, then does nothing (or goes ahead if the first rolled back): no savepoint, no
    exception."""
    table = EvaluationRun._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (business_id, local_date, started_at, duration_ms, campaigns, sends, deliveries, "  # noqa: S608
            "stats) VALUES (%s, %s, %s, 0, 0, 0, 0, %s) ON CONFLICT (business_id, local_date) DO NOTHING RETURNING id",
            [business.pk, _db_value(local_date), _db_value(now), "{}"],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return EvaluationRun(pk=row[0], business=business, local_date=local_date, started_at=now)


def _dry_run_counts(business: Business, campaigns: list[Campaign], local_date: date) -> dict[int, dict[str, int]]:
    stats = {c.pk: {"selected": 0, "capped": 0, "control": 0, "sends": 0} for c in campaigns}
    if not campaigns:
        return stats
    ctes, params = _selection_ctes(business=business, campaigns=campaigns, local_date=local_date)
    sql = (
        f"WITH {ctes} SELECT r.c_id, COUNT(*), "  # noqa: S608
        "SUM(CASE WHEN r.rn <> 1 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN r.rn = 1 AND r.bucket < r.control_lt THEN 1 ELSE 0 END) "
        "FROM due r GROUP BY r.c_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for campaign_id, selected, capped, control in cursor.fetchall():
            stats[campaign_id] = {
                "selected": selected,
                "capped": capped,
                "control": control,
                "sends": selected - capped - control,
            }
    return stats


# The first key of the nights' advisory locks (the second is the business id): "WBNT".
NIGHT_LOCK = 0x57424E54
