"""The dataset, generated in SQL (generate_series, INSERT … SELECT), deterministic per seed.

Shape (defaults): 1,000 businesses in ten time zones, without a frequency cap, every channel set
up; 1,000,000 members (skewed over the businesses) of whom ~88 % have a phone with SMS consent and
~60 % an email; ~10 visits per member over two years (≈90 % purchases), the last purchase drawn
from a mix of recent, lapsing and long-gone members so that thresholds 14/30/60/90 each select
plenty; five active campaigns per business, thresholds cycling 14/30/60/90.

Visits are written first (foreign-key triggers off for the load, secondary indexes built after),
then each member in one ``INSERT … SELECT`` with its denormalised fields aggregated from its visits:
no second pass over the members.
"""

from __future__ import annotations

import json
from datetime import datetime

from .db import say, timed

ZONES = [
    # (IANA zone, currency, country)
    ("Asia/Kuala_Lumpur", "MYR", "MY"),
    ("America/New_York", "USD", "US"),
    ("Europe/London", "GBP", "GB"),
    ("Pacific/Auckland", "NZD", "NZ"),
    ("America/Santiago", "CLP", "CL"),
    ("Asia/Singapore", "SGD", "SG"),
    ("Australia/Sydney", "AUD", "AU"),
    ("America/Los_Angeles", "USD", "US"),
    ("Europe/Berlin", "EUR", "DE"),
    ("Asia/Kolkata", "INR", "IN"),
]
THRESHOLDS = [14, 30, 60, 90]
CHANNEL_SETTINGS = {
    "sms": {"enabled": True, "sender": "+15550000000"},
    "email": {"enabled": True, "sender": "hello@bench.example"},
    "push": {"enabled": True},
    "whatsapp": {"enabled": True, "sender": "+15550000001", "template": "winback_v1"},
}
# Days since the last purchase: (cumulative share of members, lowest, highest). Tuned so that a
# first night selects about 2.46 M (campaign, member) pairs at the default size (PERF.md).
RECENCY = [(0.28, 0, 14), (0.40, 14, 30), (0.50, 30, 60), (0.56, 60, 90), (1.00, 90, 730)]
HISTORY_DAYS = 730
PARTS = 2  # connections loading at once: one per core of the benchmark machine


def _columns(model, values: dict[str, str]) -> tuple[str, str, dict]:
    """Every concrete column of ``model``: the SQL expression ``values`` gives, else the model's own
    default (auto_now fields: ``%(as_of)s``), so a field added later needs no change here."""
    from django.db import connection

    columns, expressions, params = [], [], {}
    unknown = set(values) - {f.column for f in model._meta.concrete_fields}
    if unknown:
        raise SystemExit(f"benchmarks: {model.__name__} has no column {', '.join(sorted(unknown))}")
    for f in model._meta.concrete_fields:
        if f.column in values:
            expr = values[f.column]
        elif f.primary_key:
            continue  # the identity
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            expr = "%(as_of)s"
        elif f.has_default() or f.null or f.empty_strings_allowed:
            key = f"default_{f.column}"
            params[key] = f.get_db_prep_save(f.get_default(), connection)
            expr = f"%({key})s::{f.cast_db_type(connection)}"
        else:
            raise SystemExit(f"benchmarks: no value for {model.__name__}.{f.name} (no default)")
        columns.append(f.column)
        expressions.append(expr)
    return ", ".join(columns), ", ".join(expressions), params


SESSION_SETUP = [
    "SET work_mem = '512MB'",
    "SET maintenance_work_mem = '1GB'",
    "SET synchronous_commit = off",
    # Foreign-key triggers off for the load (superuser): the rows are consistent by construction.
    "SET session_replication_role = replica",
]


def _parallel(jobs: list[tuple[str, dict | None]], *, workers: int = 2) -> int:
    """Run statements on ``workers`` connections of their own at once (one per core); returns
    the rows they wrote. Each job may start with its own ``SELECT setseed(…)``."""
    from concurrent.futures import ThreadPoolExecutor

    from .db import connect

    def run(job: tuple[str, dict | None]) -> int:
        conn = connect()
        try:
            with conn.cursor() as cur:
                for statement in SESSION_SETUP:
                    cur.execute(statement)
                rows = 0
                for part in job[0].split(";\n"):  # a job may be a few statements
                    cur.execute(part, job[1])
                    rows = max(cur.rowcount, rows)
                return rows
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(run, jobs))


def _drop_secondary_indexes(cursor, table: str) -> list[str]:
    """Drop every index of ``table`` but its primary key; return the DDL that recreates them."""
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,
               pg_get_constraintdef(c.oid)
        FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
        """,
        [table],
    )
    recreate = []
    for index, indexdef, constraint, constraintdef in cursor.fetchall():
        if constraint:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            recreate.append(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraintdef}')
        else:
            cursor.execute(f"DROP INDEX {index}")
            recreate.append(indexdef)
    return recreate


def generate(
    cursor,
    *,
    members: int,
    businesses: int,
    campaigns_per_business: int,
    visits_per_member: float,
    as_of: datetime,
    seed: float = 0.42,
) -> dict:
    """Fill an empty, migrated database. Returns row counts and timings."""
    out: dict = {}
    for statement in SESSION_SETUP:
        cursor.execute(statement)
    cursor.execute("SELECT setseed(%s)", [seed])

    from campaigns.models import Campaign
    from members.models import Business, Member, Visit

    with timed("businesses") as t:
        cols, exprs, params = _columns(
            Business,
            {
                "id": "i",
                "name": "'Bench café ' || i",
                "slug": "'bench-' || i",
                "timezone": "(%(zones)s::text[])[1 + (i - 1) %% %(nz)s]",
                "currency": "(%(currencies)s::text[])[1 + (i - 1) %% %(nz)s]",
                "country": "(%(countries)s::text[])[1 + (i - 1) %% %(nz)s]",
                "frequency_cap_days": "0",
                "channel_settings": "%(channels)s::jsonb",
                "is_active": "true",
                "created_at": "%(as_of)s - interval '800 days'",
            },
        )
        params.update(
            zones=[z for z, _, _ in ZONES],
            currencies=[c for _, c, _ in ZONES],
            countries=[c for _, _, c in ZONES],
            nz=len(ZONES),
            channels=json.dumps(CHANNEL_SETTINGS),
            as_of=as_of,
            businesses=businesses,
        )
        cursor.execute(
            f"INSERT INTO members_business ({cols}) SELECT {exprs} FROM generate_series(1, %(businesses)s) i",  # noqa: S608
            params,
        )
    out["businesses_s"] = t.seconds

    with timed("member plan (unlogged scratch table)") as t:
        recency_case = " ".join(
            f"WHEN u7 < {share} THEN {lo} + u8 * {hi - lo}" for share, lo, hi in RECENCY
        )  # the last bucket catches the rest
        cursor.execute("DROP TABLE IF EXISTS bench_plan")
        cursor.execute(
            """
            CREATE UNLOGGED TABLE bench_plan (
                id bigint, business_id bigint, joined_at timestamptz, last_at timestamptz, span interval,
                n int, phone bool, email bool, sms_ok bool, email_ok bool, whatsapp_ok bool, erased bool)
            """
        )
        # OFFSET 0 keeps each level a separate plan node: every random() is drawn once per row.
        cursor.execute(
            f"""
            INSERT INTO bench_plan
            SELECT id, business_id,
                CASE WHEN n = 0 THEN %(as_of)s - u9 * interval '{HISTORY_DAYS} days'
                     ELSE last_at - span END,
                last_at, span, n, phone, email, sms_ok, email_ok, whatsapp_ok, erased
            FROM (
                SELECT i AS id,
                    LEAST(%(businesses)s, 1 + floor(%(businesses)s * power(u1, 1.2)))::bigint AS business_id,
                    %(as_of)s - days_away * interval '1 day' AS last_at,
                    ({HISTORY_DAYS} - days_away) * u9 * interval '1 day' AS span,
                    CASE WHEN u6 < 0.02 THEN 0
                         ELSE LEAST(400, 1 + floor(-ln(1 - u10) * (%(visits)s - 0.5)))::int END AS n,
                    u3 < 0.88 AS phone, u4 < 0.60 AS email, u5 < 0.97 AS sms_ok, u11 < 0.85 AS email_ok,
                    u12 < 0.30 AS whatsapp_ok, u2 < 0.005 AS erased, u9
                FROM (
                    SELECT i, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12,
                        CASE {recency_case} END AS days_away
                    FROM (
                        SELECT i, random() u1, random() u2, random() u3, random() u4, random() u5, random() u6,
                            random() u7, random() u8, random() u9, random() u10, random() u11, random() u12
                        FROM generate_series(1, %(members)s) i OFFSET 0
                    ) r OFFSET 0
                ) d
            ) p
            """,
            {"as_of": as_of, "businesses": businesses, "members": members, "visits": visits_per_member},
        )
    out["plan_s"] = t.seconds

    with timed(f"visits (INSERT … SELECT on {PARTS} connections, secondary indexes dropped)") as t:
        recreate_visits = _drop_secondary_indexes(cursor, "members_visit")
        cols, exprs, params = _columns(
            Visit,
            {
                "business_id": "p.business_id",
                "member_id": "p.id",
                "kind": "v.kind",
                "stamps_delta": "CASE WHEN v.kind = 'purchase' THEN 1 ELSE 0 END",
                "points_delta": "CASE WHEN v.kind = 'purchase' THEN floor(v.amount)::int ELSE 0 END",
                "amount": "CASE WHEN v.kind = 'purchase' THEN v.amount END",
                "occurred_at": "v.at",
                "recorded_at": "v.at",
                "source": "'stamp_page'",
            },
        )
        params["as_of"] = as_of
        sql = f"""
            SELECT setseed(%(seed)s);
            INSERT INTO members_visit ({cols})
            SELECT {exprs}
            FROM bench_plan p
            CROSS JOIN LATERAL (
                SELECT CASE WHEN j = 1 OR w1 < 0.889 THEN 'purchase'
                            WHEN w1 < 0.95 THEN 'balance_check' ELSE 'redemption' END AS kind,
                       round((4 + w2 * 56)::numeric, 2) AS amount,
                       CASE WHEN j = 1 THEN p.last_at ELSE p.last_at - p.span * w3 END AS at
                FROM (SELECT j, random() w1, random() w2, random() w3 FROM generate_series(1, p.n) j OFFSET 0) g
            ) v
            WHERE p.id %% %(parts)s = %(part)s
            """  # noqa: S608
        jobs = [(sql, {**params, "parts": PARTS, "part": k, "seed": seed / (k + 2)}) for k in range(PARTS)]
        out["visits"] = _parallel(jobs, workers=PARTS)
    out["visits_s"] = t.seconds

    with timed(f"members (denormalised fields aggregated from the visits, {PARTS} connections)") as t:
        recreate_members = _drop_secondary_indexes(cursor, "members_member")
        cols, exprs, params = _columns(
            Member,
            {
                "id": "p.id",
                "business_id": "p.business_id",
                "first_name": "CASE WHEN p.erased THEN '' ELSE 'Member' END",
                "last_name": "CASE WHEN p.erased THEN '' ELSE 'No' || p.id END",
                "phone": "CASE WHEN p.phone AND NOT p.erased THEN '+1555' || lpad(p.id::text, 7, '0') ELSE '' END",
                "email": "CASE WHEN p.email AND NOT p.erased THEN 'member' || p.id || '@bench.example' ELSE '' END",
                "card_code": "'B' || p.id",
                "joined_on": "(p.joined_at AT TIME ZONE 'UTC')::date",
                "timezone": "''",
                "status": "CASE WHEN p.erased THEN 'erased' ELSE 'active' END",
                "stamps_balance": "coalesce(a.stamps, 0)",
                "points_balance": "coalesce(a.points, 0)",
                "consent_push": "false",
                "consent_sms": "p.phone AND p.sms_ok AND NOT p.erased",
                "consent_whatsapp": "p.phone AND p.whatsapp_ok AND NOT p.erased",
                "consent_email": "p.email AND p.email_ok AND NOT p.erased",
                "last_purchase_at": "a.last_purchase_at",
                "last_visit_at": "a.last_visit_at",
                "purchase_count": "coalesce(a.purchases, 0)",
                "visit_count": "coalesce(a.visits, 0)",
                "total_spent": "coalesce(a.spent, 0)",
                "created_at": "p.joined_at",
                "erased_at": "CASE WHEN p.erased THEN p.last_at END",
            },
        )
        params["as_of"] = as_of
        sql = f"""
            INSERT INTO members_member ({cols})
            SELECT {exprs}
            FROM bench_plan p
            LEFT JOIN (
                SELECT member_id,
                    max(occurred_at) FILTER (WHERE kind = 'purchase') AS last_purchase_at,
                    max(occurred_at) AS last_visit_at,
                    count(*) FILTER (WHERE kind = 'purchase') AS purchases,
                    count(*) AS visits,
                    sum(amount) AS spent,
                    sum(stamps_delta) AS stamps,
                    sum(points_delta) AS points
                FROM members_visit WHERE member_id %% %(parts)s = %(part)s GROUP BY member_id
            ) a ON a.member_id = p.id
            WHERE p.id %% %(parts)s = %(part)s
            ORDER BY p.id
            """  # noqa: S608
        jobs = [(sql, {**params, "parts": PARTS, "part": k}) for k in range(PARTS)]
        out["members"] = _parallel(jobs, workers=PARTS)
    out["members_s"] = t.seconds

    with timed("campaigns") as t:
        cols, exprs, params = _columns(
            Campaign,
            {
                "id": "g + 1",
                "business_id": "1 + g / %(per)s",
                "name": "'Back after ' || t || ' days #' || (g %% %(per)s + 1)",
                "status": "'active'",
                "activated_at": "%(as_of)s - interval '60 days'",
                "inactivity_days": "t",
                "max_sends": "1 + g %% 3",
                "title": "'We miss you, {first_name}'",
                "body": "'It has been {days_away} days: come back to {business} this week!'",
                "channels": 'CASE WHEN g %% 5 = 2 THEN \'["sms", "email"]\' ELSE \'["sms"]\' END::jsonb',
                "pacing": "'{}'::jsonb",
                "send_at": "'09:00'::time",
                "created_at": "%(as_of)s - interval '61 days'",
                "updated_at": "%(as_of)s - interval '60 days'",
            },
        )
        params.update(
            per=campaigns_per_business,
            as_of=as_of,
            total=businesses * campaigns_per_business,
            thresholds=THRESHOLDS,
            nt=len(THRESHOLDS),
        )
        cursor.execute(
            f"""
            INSERT INTO campaigns_campaign ({cols})
            SELECT {exprs}
            FROM generate_series(0, %(total)s - 1) g,
                LATERAL (SELECT (%(thresholds)s::int[])[1 + g %% %(nt)s] AS t) x
            """,  # noqa: S608
            params,
        )
        out["campaigns"] = cursor.rowcount
    out["campaigns_s"] = t.seconds

    cursor.execute("SET session_replication_role = DEFAULT")
    with timed(f"secondary indexes of visits and members ({PARTS} connections)") as t:
        _parallel([(ddl, None) for ddl in recreate_visits + recreate_members], workers=PARTS)
    out["indexes_s"] = t.seconds
    for table in ("members_business", "members_member", "members_visit", "campaigns_campaign"):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"  # noqa: S608
        )
    cursor.execute("DROP TABLE bench_plan")
    with timed("VACUUM ANALYZE (visibility map for index-only scans, planner statistics)") as t:
        for table in ("members_business", "members_member", "members_visit", "campaigns_campaign"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    out["vacuum_s"] = t.seconds
    cursor.execute("RESET work_mem")
    cursor.execute("RESET maintenance_work_mem")
    cursor.execute("RESET synchronous_commit")
    cursor.execute("SELECT count(*) FILTER (WHERE kind = 'purchase') FROM members_visit")
    out["purchases"] = cursor.fetchone()[0]
    say(
        f"  generated {businesses:,} businesses, {out['members']:,} "
        f"members, {out['visits']:,} visits ({out['purchases'] / max(out['visits'], 1):.0%} purchases), "
        f"{out['campaigns']:,} campaigns"
    )
    return out


def sizes(cursor) -> dict:
    """Row counts of the dataset as it is now (for reused data and the report)."""
    counts = {}
    for key, table in (
        ("businesses", "members_business"),
        ("members", "members_member"),
        ("visits", "members_visit"),
        ("campaigns", "campaigns_campaign"),
    ):
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        counts[key] = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FILTER (WHERE kind = 'purchase') FROM members_visit")
    counts["purchases"] = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FILTER (WHERE phone <> '' AND consent_sms), count(*) FILTER (WHERE email <> ''), "
        "count(*) FILTER (WHERE last_purchase_at IS NULL) FROM members_member"
    )
    counts["sms_reachable"], counts["with_email"], counts["never_purchased"] = cursor.fetchone()
    cursor.execute("SELECT count(DISTINCT timezone) FROM members_business")
    counts["time_zones"] = cursor.fetchone()[0]
    return counts
