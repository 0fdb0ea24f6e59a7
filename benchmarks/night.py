"""The nightly evaluation: the engine's night against a hand-written ``INSERT … SELECT`` floor."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from statistics import median
from zoneinfo import ZoneInfo

from .db import say
from .timing import StepTimer, commits_timed
from .worker import broker_flush, worker_start, worker_stop, worker_wait_ready

SEND_TABLE = "campaigns_campaignsend"
FLOOR_TABLE = "bench_floor_send"
CUTOFF_TABLE = "bench_cutoff"


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz`` (SPEC §5), computed here independently of the engine."""
    return datetime.combine(day, dtime(0)).replace(tzinfo=tz).astimezone(UTC)


@dataclass
class NightPlan:
    """Each business with the local date D of its first benchmarked night."""

    businesses: list  # [(Business, date)]

    @property
    def dates(self) -> dict[int, date]:
        return {b.pk: d for b, d in self.businesses}


def plan_nights(real_now: datetime) -> NightPlan:
    """D = the coming local date of each business (its next local midnight): the deliveries of
    the night are then all in the future, so nothing is due before the dispatcher picks its sample."""
    from django_scopes import scopes_disabled

    from members.models import Business

    with scopes_disabled():
        businesses = list(Business.objects.filter(is_active=True).order_by("pk"))
    return NightPlan([(b, real_now.astimezone(b.tzinfo).date() + timedelta(days=1)) for b in businesses])


def pg_counters(cursor) -> tuple:
    cursor.execute(
        "SELECT pg_current_wal_lsn(), checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter"
    )
    return cursor.fetchone()


def pg_delta(cursor, before: tuple) -> dict:
    """WAL written, checkpoints and buffers written by backends themselves since ``before``
    (what a big INSERT costs beyond its rows on this server's settings)."""
    lsn, checkpoints, backend = before
    cursor.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s), checkpoints_timed + checkpoints_req - %s, "
        "buffers_backend - %s FROM pg_stat_bgwriter",
        [lsn, checkpoints, backend],
    )
    wal, checkpoints, backend = cursor.fetchone()
    return {"wal_mb": float(wal) / 2**20, "checkpoints": checkpoints, "backend_buffers": backend}


# --- the floor -----------------------------------------------------------------------------------


def cutoffs_load(cursor, plan: NightPlan) -> int:
    """One row per campaign due on D: its business, D, the purchase cutoff and its channels."""
    from django_scopes import scopes_disabled

    from campaigns.models import Campaign, CampaignStatus

    tz_of = {b.pk: b.tzinfo for b, _ in plan.businesses}
    dates = plan.dates
    rows = []
    with scopes_disabled():
        campaigns = Campaign.objects.filter(status=CampaignStatus.ACTIVE, business_id__in=list(dates)).values_list(
            "pk", "business_id", "inactivity_days", "channels", "activated_at", "conditions"
        )
        for pk, business_id, days, channels, activated_at, conditions in campaigns:
            tz, day = tz_of[business_id], dates[business_id]
            if activated_at is None or activated_at >= midnight(day, tz):
                continue
            if conditions:
                raise SystemExit(f"campaign {pk} has conditions: the floor query does not model them")
            cutoff = midnight(day - timedelta(days=days) + timedelta(days=1), tz)
            chans = set(channels or [])
            rows.append(
                (pk, business_id, cutoff, day, "sms" in chans, "email" in chans, "whatsapp" in chans, "push" in chans)
            )
    cursor.execute(f"DROP TABLE IF EXISTS {CUTOFF_TABLE}")
    cursor.execute(
        f"CREATE UNLOGGED TABLE {CUTOFF_TABLE} (campaign_id bigint PRIMARY KEY, business_id bigint, "
        "cutoff timestamptz, local_date date, sms bool, email bool, whatsapp bool, push bool)"
    )
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 8
    cursor.execute(
        f"INSERT INTO {CUTOFF_TABLE} SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], "  # noqa: S608
        "%s::date[], %s::bool[], %s::bool[], %s::bool[], %s::bool[])",
        [list(c) for c in cols],
    )
    cursor.execute(f"ANALYZE {CUTOFF_TABLE}")
    return len(rows)


# The same due (campaign, member) pairs as a first night: active, lapsed past the campaign's
# cutoff, reachable with consent on one of its channels; ordered by member id (PERF.md).
FLOOR_SELECT = f"""
    SELECT k.business_id, k.campaign_id, m.id AS member_id, k.local_date
    FROM {CUTOFF_TABLE} k
    JOIN members_member m ON m.business_id = k.business_id AND m.last_purchase_at < k.cutoff
    WHERE m.status = 'active'
      AND ((k.sms AND m.consent_sms AND m.phone <> '')
        OR (k.whatsapp AND m.consent_whatsapp AND m.phone <> '')
        OR (k.email AND m.consent_email AND m.email <> '')
        OR (k.push AND m.consent_push
            AND EXISTS (SELECT 1 FROM notifications_pushsubscription s WHERE s.member_id = m.id)))
"""  # noqa: S608

FLOOR_INSERT = f"""
    INSERT INTO {FLOOR_TABLE} (business_id, campaign_id, member_id, run_id, send_number, arm, local_date,
        outcome, created_at)
    SELECT f.business_id, f.campaign_id, f.member_id, NULL, 1, 'a', f.local_date, 'scheduled', now()
    FROM ({FLOOR_SELECT}) f
    ORDER BY f.member_id
    ON CONFLICT DO NOTHING
"""  # noqa: S608


@dataclass
class FloorResult:
    label: str
    seconds: list[float]
    rows: int
    pg: list[dict] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.seconds)


def floor_table_create(cursor, variant: str) -> None:
    """A scratch copy of the send table: same columns, defaults, identity, checks and indexes
    (``LIKE … INCLUDING ALL`` copies no foreign key).

    ``fk``: plus the deferred ``business_id`` foreign key the real table has.
    ``lean``: minus the single-column indexes Django adds to every ForeignKey (redundant here)."""
    cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
    cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (LIKE {SEND_TABLE} INCLUDING ALL)")
    if variant == "fk":
        cursor.execute(
            f"ALTER TABLE {FLOOR_TABLE} ADD FOREIGN KEY (business_id) REFERENCES members_business (id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
    elif variant == "lean":
        cursor.execute(
            """
            SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT i.indisunique AND i.indnatts = 1
            """,
            [FLOOR_TABLE],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


def selection_measure(cursor) -> tuple[float, int]:
    """The selection alone (no write): how much of the floor is reading."""
    start = time.perf_counter()
    cursor.execute(f"SELECT count(*) FROM ({FLOOR_SELECT}) f")  # noqa: S608
    rows = cursor.fetchone()[0]
    return time.perf_counter() - start, rows


def floor_measure(cursor, *, runs: int, variant: str = "same", label: str = "") -> FloorResult:
    """Time the single ``INSERT … SELECT`` (autocommit: the commit, and any deferred check, is
    inside the time) ``runs`` times on an empty scratch table."""
    floor_table_create(cursor, variant)
    seconds, rows, pg = [], 0, []
    for i in range(runs):
        if i:
            cursor.execute(f"TRUNCATE {FLOOR_TABLE} RESTART IDENTITY")
        cursor.execute("CHECKPOINT")
        before = pg_counters(cursor)
        start = time.perf_counter()
        cursor.execute(FLOOR_INSERT)
        rows = cursor.rowcount
        seconds.append(time.perf_counter() - start)
        pg.append(pg_delta(cursor, before))
        say(
            f"    floor [{label or variant}] run {i + 1}/{runs}: {seconds[-1]:.2f} s, {rows:,} rows, "
            f"WAL {pg[-1]['wal_mb']:,.0f} MB, {pg[-1]['checkpoints']} checkpoints"
        )
    cursor.execute(f"DROP TABLE {FLOOR_TABLE}")
    return FloorResult(label or variant, seconds, rows, pg)


def floor_compare(cursor) -> tuple[int, int]:
    """(pairs the floor selects and the engine's first night lacks, and the reverse)."""
    cursor.execute(
        f"SELECT count(*) FROM (SELECT campaign_id, member_id FROM ({FLOOR_SELECT}) f "  # noqa: S608
        f"EXCEPT SELECT campaign_id, member_id FROM {SEND_TABLE}) x"
    )
    missing = cursor.fetchone()[0]
    cursor.execute(
        f"SELECT count(*) FROM (SELECT campaign_id, member_id FROM {SEND_TABLE} "  # noqa: S608
        f"EXCEPT SELECT campaign_id, member_id FROM ({FLOOR_SELECT}) f) x"
    )
    extra = cursor.fetchone()[0]
    return missing, extra


# --- the engine ----------------------------------------------------------------------------------


@dataclass
class NightResult:
    label: str
    seconds: float
    businesses: int
    evaluated: int
    selected: int = 0
    sends: int = 0
    capped: int = 0
    control: int = 0
    deliveries: int = 0
    rewards: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    slowest: list[tuple[float, int, str, int]] = field(default_factory=list)  # (s, business id, tz, selected)
    pg: dict = field(default_factory=dict)

    def add(self, stats: dict) -> None:
        """One business's run figures (``EvaluationRun.stats``: per campaign)."""
        self.evaluated += 1
        for s in stats.values():
            for name in ("selected", "sends", "capped", "control", "deliveries", "rewards"):
                setattr(self, name, getattr(self, name) + s.get(name, 0))


def night_run(plan: NightPlan, *, offset_days: int, label: str, progress_every: int = 100) -> NightResult:
    """Evaluate every business for D + ``offset_days``, in its scope, one after the other."""
    from django.db import connection

    from campaigns.engine import business_evaluate
    from winback.tenancy import business_scope

    timer = StepTimer()
    result = NightResult(label=label, seconds=0.0, businesses=len(plan.businesses), evaluated=0)
    per_business = []
    with connection.cursor() as cursor:
        before = pg_counters(cursor)
    with connection.execute_wrapper(timer), commits_timed(timer):
        start = time.perf_counter()
        for i, (business, first_date) in enumerate(plan.businesses, 1):
            day = first_date + timedelta(days=offset_days)
            now = midnight(day, business.tzinfo) + timedelta(minutes=1)  # the tick just after local midnight
            b_start = time.perf_counter()
            with business_scope(business):
                run = business_evaluate(business=business, local_date=day, now=now)
            elapsed = time.perf_counter() - b_start
            if run is not None:
                result.add(run.stats)
                per_business.append(
                    (elapsed, business.pk, business.timezone, sum(s.get("selected", 0) for s in run.stats.values()))
                )
            if progress_every and i % progress_every == 0:
                say(
                    f"    {label}: {i}/{len(plan.businesses)} businesses, {time.perf_counter() - start:.1f} s, "
                    f"{result.sends:,} sends"
                )
        result.seconds = time.perf_counter() - start
    with connection.cursor() as cursor:
        result.pg = pg_delta(cursor, before)
    result.steps = dict(sorted(timer.seconds.items(), key=lambda kv: -kv[1]))
    result.calls = dict(timer.calls)
    accounted = sum(timer.seconds.values())
    result.steps["Python and ORM (not SQL)"] = max(result.seconds - accounted, 0.0)
    result.slowest = sorted(per_business, reverse=True)[:5]
    return result


def engine_rows(cursor) -> int:
    cursor.execute(f"SELECT count(*) FROM {SEND_TABLE}")  # noqa: S608
    return cursor.fetchone()[0]


NIGHT_TABLES = [
    "campaigns_campaignsend",
    "campaigns_evaluationrun",
    "notifications_delivery",
    "notifications_deliveryevent",
    "notifications_recordedmessage",
    "members_walletreward",
]


def night_tables_reset(cursor) -> None:
    """Empty every table a night or the dispatcher writes, so each run starts from the same state."""
    cursor.execute(f"TRUNCATE {', '.join(NIGHT_TABLES)} RESTART IDENTITY")


def night_tables_vacuum(cursor) -> None:
    for table in NIGHT_TABLES:
        cursor.execute(f"VACUUM (ANALYZE) {table}")


def night_remove(cursor, plan: NightPlan, *, offset_days: int) -> None:
    """Delete what the night D + ``offset_days`` wrote (runs, sends, rewards, deliveries), so the
    same night can be timed again another way."""
    pairs = [(b.pk, d + timedelta(days=offset_days)) for b, d in plan.businesses]
    cursor.execute("CREATE TEMP TABLE bench_night_pairs (business_id bigint, local_date date)")
    cursor.executemany("INSERT INTO bench_night_pairs VALUES (%s, %s)", pairs)
    sends = "SELECT s.id FROM campaigns_campaignsend s JOIN bench_night_pairs p USING (business_id, local_date)"
    cursor.execute(f"DELETE FROM notifications_delivery WHERE send_id IN ({sends})")  # noqa: S608
    cursor.execute(f"DELETE FROM members_walletreward WHERE send_id IN ({sends})")  # noqa: S608
    cursor.execute(
        "DELETE FROM campaigns_campaignsend s USING bench_night_pairs p "
        "WHERE s.business_id = p.business_id AND s.local_date = p.local_date"
    )
    cursor.execute(
        "DELETE FROM campaigns_evaluationrun r USING bench_night_pairs p "
        "WHERE r.business_id = p.business_id AND r.local_date = p.local_date"
    )
    cursor.execute("DROP TABLE bench_night_pairs")


def night_run_celery(plan: NightPlan, *, offset_days: int, label: str, concurrency: int = 2) -> NightResult:
    """The night as the product runs it: the tick's tasks (batches of businesses) on a real
    Celery worker with ``concurrency`` processes (Redis broker). Timed from the first task sent
    until every business has its run row committed."""
    import tempfile

    from django.db import connection, transaction

    from campaigns.tasks import evaluations_enqueue

    result = NightResult(label=label, seconds=0.0, businesses=len(plan.businesses), evaluated=0)
    broker_flush()
    with tempfile.NamedTemporaryFile(prefix="winback-bench-night-", suffix=".log", delete=False) as log:
        log_path = log.name
    proc = worker_start(concurrency=concurrency, log_path=log_path)
    try:
        worker_wait_ready(proc)
        with connection.cursor() as cursor:
            before = pg_counters(cursor)
        pairs = [(b.pk, d + timedelta(days=offset_days)) for b, d in plan.businesses]
        wanted = dict(pairs)
        match = (
            "FROM campaigns_evaluationrun r JOIN unnest(%s::bigint[], %s::date[]) AS p(b, d) "
            "ON r.business_id = p.b AND r.local_date = p.d"
        )
        arrays = [[pk for pk, _ in pairs], [day for _, day in pairs]]
        start = time.perf_counter()
        evaluations_enqueue(pairs)  # as the tick does
        done = 0
        while done < len(pairs):
            time.sleep(0.1)
            if proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {proc.returncode} (log {log_path})")
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) {match}", arrays)  # noqa: S608
                done = cursor.fetchone()[0]
            if time.perf_counter() - start > 900:
                raise RuntimeError(f"the night did not finish in 15 minutes (log {log_path})")
        result.seconds = time.perf_counter() - start
        with connection.cursor() as cursor:
            result.pg = pg_delta(cursor, before)
            cursor.execute(f"SELECT r.business_id, r.local_date, r.stats {match}", arrays)  # noqa: S608
            for business_id, local_date, stats in cursor.fetchall():
                if wanted.get(business_id) != local_date:
                    continue
                result.add(json.loads(stats) if isinstance(stats, str) else stats or {})
    finally:
        worker_stop(proc)
    result.steps = {f"Celery worker, {concurrency} processes (log {log_path})": result.seconds}
    return result
