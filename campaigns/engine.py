"""The nightly evaluation, as plain functions over set-based queries (no Celery here).

For each business, once per local date D, at local midnight (the first instant of D), every
campaign activated before that instant selects the members due on D:

* active, of the business, with a purchase;
* ``max(last purchase date, date of the last send of this campaign) <= D - inactivity_days``,
  dates in the business's time zone;
* fewer than ``max_sends`` sends of this campaign (cancelled and capped rows don't count);
* the campaign's conditions hold;
* reachable on at least one of its channels with consent;
* no campaign message within the business's frequency cap (``frequency_cap_days``).

Where several campaigns select one member the same night, the longest threshold wins and the
others record the member as capped. Sends, their rewards and their deliveries are written by a
handful of ``INSERT … SELECT`` statements per business, inside one transaction whose first write
is the unique ``EvaluationRun`` row: a second evaluation of the same date writes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import time as clock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.expressions import RawSQL
from django_scopes import scope, scopes_disabled

from members.models import CHANNELS, Business, Member, MemberStatus, WalletReward

from .messages import campaign_messages_fix, reward_words
from .models import (
    NOT_COUNTED,
    Arm,
    Campaign,
    CampaignSend,
    CampaignStatus,
    EvaluationFailure,
    EvaluationRun,
    SendOutcome,
)
from .pacing import UNCAPPED, SendCalendar
from .rules import (
    CONDITION_SQL,
    FLAG_CONDITION_SQL,
    condition_values,
    conditions_sql,
    contact_missing_sql,
    reachable_sql,
)

log = logging.getLogger(__name__)

# Deterministic A/B/control buckets from (campaign, member): the same arm across every send.
BUCKET_SQL = "((({member} * 2654435761) + ({campaign} * 40503)) %% 10007) %% 100"


def arm_bucket(*, campaign_id: int, member_id: int) -> int:
    """The bucket (0–99) the SQL above gives, for tests and previews."""
    return ((member_id * 2654435761 + campaign_id * 40503) % 10007) % 100


def local_day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, as UTC.

    Where DST begins at midnight (America/Santiago), 00:00 does not exist: a naive midnight
    with fold=0 takes the offset before the gap, which lands exactly on the instant the gap ends.
    """
    return datetime.combine(day, time(0)).replace(tzinfo=tz).astimezone(UTC)


def local_date_of(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``tz`` as UTC (a time inside a DST gap moves past the gap)."""
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


# --- the selection --------------------------------------------------------------------------------
#
# One statement selects the members due for every campaign of a business: the campaigns ride in
# as a VALUES list (their thresholds as instants, their conditions as nullable columns), each
# member row is joined to the campaigns it has lapsed for, and the business's sends are
# aggregated once per (campaign, member) for max sends and spacing. The wizard's live count, the
# dry run and the night all use it, so the preview always equals what the night selects.

# (column, PostgreSQL type) of the campaigns' VALUES rows, before the conditions' columns.
_CAMPAIGN_COLUMNS = [
    ("cid", "bigint"),
    ("threshold", "integer"),
    ("cutoff", "timestamp with time zone"),  # purchased before this instant: lapsed on D
    ("last_allowed", "date"),  # the last send date that leaves the member due again on D
    ("max_sends", "integer"),
    ("control_lt", "integer"),  # bucket < control_lt: control; < b_lt: arm B; else arm A
    ("b_lt", "integer"),
    ("any_channel", "boolean"),  # a draft without channels yet counts every lapsed member
    *((f"ch_{channel}", "boolean") for channel in CHANNELS),
    *((name, sql_type) for name, (_, _, sql_type) in CONDITION_SQL.items()),
    *((name, "boolean") for name in FLAG_CONDITION_SQL),
]


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


def _lapsed_before(campaign: Campaign, *, local_date: date) -> datetime:
    """Members who last purchased before this instant have lapsed for ``campaign`` on ``local_date``."""
    last_allowed = local_date - timedelta(days=campaign.inactivity_days)
    return local_day_start(last_allowed + timedelta(days=1), campaign.business.tzinfo)


def _campaign_row(campaign: Campaign, *, local_date: date) -> list:
    tz = campaign.business.tzinfo
    last_allowed = local_date - timedelta(days=campaign.inactivity_days)
    control_lt = campaign.control_share
    b_lt = control_lt + ((100 - control_lt) * campaign.ab_share_b // 100 if campaign.ab_enabled else 0)
    channels = set(campaign.channels or [])
    conditions = condition_values(
        campaign.conditions, days_away_since=lambda n: local_day_start(local_date - timedelta(days=n), tz)
    )
    return [
        campaign.pk or 0,
        campaign.inactivity_days,
        _lapsed_before(campaign, local_date=local_date),
        last_allowed,
        campaign.max_sends,
        control_lt,
        b_lt,
        bool(channels),
        *(channel in channels for channel in CHANNELS),
        *(conditions[name] for name in CONDITION_SQL),
        *(conditions[name] for name in FLAG_CONDITION_SQL),
    ]


def _selection_ctes(
    *,
    business: Business,
    campaigns: list[Campaign],
    local_date: date,
    contact_rules: bool = True,
    reach: bool = False,
    name: str = "due",
    funnel: bool = False,
) -> tuple[str, list]:
    """WITH-clause tables ending in ``name`` (``due``): one row per (member, campaign) due on ``local_date``,
    with the send number, the arm bucket and ``rn`` (1: this campaign wins the member tonight);
    with ``reach``, also ``r_<channel>``: whether the member is reachable on each channel.

    Without ``contact_rules`` it leaves out max sends, spacing and the frequency cap: every lapsed
    member the campaigns could ever reach.

    With ``funnel``, ``name`` holds every (lapsed member, campaign) row, not only the due ones, with
    each rule as a 0/1 column (``ok_cond``, ``ok_max``, ``ok_spacing``, ``ok_fcap``, ``ok_reach``),
    ``rn`` (meaningful where every rule holds) and, per channel, ``r_<channel>`` and ``nc_<channel>``
    (no address on it): the same rules, so the funnel's last stage is the night's selection, and
    each member left out has the rule that did it.
    """
    rows = [_campaign_row(c, local_date=local_date) for c in campaigns]
    values, params = _values_sql("c", _CAMPAIGN_COLUMNS, rows)
    ctes = [values]
    sends = CampaignSend._meta.db_table
    not_counted = ", ".join(f"'{o}'" for o in NOT_COUNTED)
    # Only what these campaigns use: the statement stays small to plan and to run.
    first_condition = len(_CAMPAIGN_COLUMNS) - len(CONDITION_SQL) - len(FLAG_CONDITION_SQL)
    used = {
        name
        for row in rows
        for (name, _), v in zip(_CAMPAIGN_COLUMNS[first_condition:], row[first_condition:], strict=True)
        if v is not None and v is not False  # (0 is a condition: at most 0 visits)
    }
    columns = sorted({col for name, (col, _, _) in CONDITION_SQL.items() if name in used} - {"last_purchase_at"}
                     | {col for name, col in FLAG_CONDITION_SQL.items() if name in used})  # fmt: skip
    channels = [ch for ch in CHANNELS if any(ch in (c.channels or []) for c in campaigns)]
    # The business's lapsed members, read once (not once per campaign), with their reachability.
    members = Member._meta.db_table
    ctes.append(
        "lapsed AS MATERIALIZED (SELECT m.id, m.last_purchase_at"  # noqa: S608
        + "".join(f", m.{col}" for col in columns)
        + "".join(f", {reachable_sql(ch)} AS r_{ch}" for ch in channels)
        + ("".join(f", {contact_missing_sql(ch)} AS nc_{ch}" for ch in channels) if funnel else "")
        + f" FROM {members} m WHERE m.business_id = %s AND m.status = '{MemberStatus.ACTIVE}' "
        "AND m.last_purchase_at < %s)"
    )
    params += [business.pk, _db_value(max(_lapsed_before(c, local_date=local_date) for c in campaigns))]
    reachable = " OR ".join(f"(c.ch_{ch} AND m.r_{ch})" for ch in channels)
    where = [
        conditions_sql(member="m", values="c", names=used),
        f"(NOT c.any_channel OR {reachable})" if channels else "1 = 1",
    ]
    checks = {"ok_cond": where[0], "ok_reach": where[1]}
    where_params: list = []
    joins = ""
    send_number = "1"
    if contact_rules:
        ctes.append(
            f"sent AS (SELECT s.campaign_id, s.member_id, COUNT(*) AS n, MAX(s.local_date) AS last_date "  # noqa: S608
            f"FROM {sends} s WHERE s.campaign_id IN (SELECT cid FROM c) "
            f"AND s.outcome NOT IN ({not_counted}) GROUP BY s.campaign_id, s.member_id)"
        )
        joins = "LEFT JOIN sent x ON x.campaign_id = c.cid AND x.member_id = m.id"
        send_number = "COALESCE(x.n, 0) + 1"
        # Counted send numbers are always 1..k (cancelled and capped rows hold none).
        where.append("(x.n IS NULL OR (x.n < c.max_sends AND x.last_date <= c.last_allowed))")
        checks["ok_max"] = "(x.n IS NULL OR x.n < c.max_sends)"
        checks["ok_spacing"] = "(x.n IS NULL OR x.last_date <= c.last_allowed)"
        if business.frequency_cap_days:
            where.append(
                f"NOT EXISTS (SELECT 1 FROM {sends} f WHERE f.business_id = %s AND f.member_id = m.id "  # noqa: S608
                f"AND f.local_date > %s AND f.outcome NOT IN ({not_counted}))"
            )
            checks["ok_fcap"] = where[-1]
            where_params += [business.pk, _db_value(local_date - timedelta(days=business.frequency_cap_days))]
    bucket = BUCKET_SQL.format(member="m.id", campaign="c.cid")
    ranked = bool(business.frequency_cap_days and len(campaigns) > 1)

    def rank(member: str, campaign: str, threshold: str) -> str:
        return f"ROW_NUMBER() OVER (PARTITION BY {member} ORDER BY {threshold} DESC, {campaign})" if ranked else "1"

    if funnel:
        # Every rule as a 0/1 column, in the WHERE's order (its parameters follow the same order).
        ok = "".join(f", CASE WHEN {sql} THEN 1 ELSE 0 END AS {col}" for col, sql in checks.items())
        ok += "".join(f", 1 AS {col}" for col in ("ok_max", "ok_spacing", "ok_fcap") if col not in checks)
        per_channel = "".join(
            f", CASE WHEN m.r_{ch} THEN 1 ELSE 0 END AS r_{ch}, CASE WHEN m.nc_{ch} THEN 1 ELSE 0 END AS nc_{ch}"
            if ch in channels
            else f", 0 AS r_{ch}, 0 AS nc_{ch}"
            for ch in CHANNELS
        )
        ctes.append(
            f"cand AS (SELECT m.id AS m_id, c.cid AS c_id, {send_number} AS send_number, c.threshold, "  # noqa: S608
            f"c.control_lt, c.b_lt, {bucket} AS bucket, m.last_purchase_at{ok}{per_channel} "
            f"FROM lapsed m JOIN c ON m.last_purchase_at < c.cutoff {joins})"
        )
        # The night ranks only the rows that pass every rule: partitioned by passing too, the same
        # numbers in one pass (no join back from the passing rows, which PostgreSQL would loop).
        passed = " AND ".join(f"k.{col} = 1" for col in ("ok_cond", "ok_reach", "ok_max", "ok_spacing", "ok_fcap"))
        rank_sql = (
            f"ROW_NUMBER() OVER (PARTITION BY k.m_id, CASE WHEN {passed} THEN 1 ELSE 0 END "
            "ORDER BY k.threshold DESC, k.c_id)"
            if ranked
            else "1"
        )
        ctes.append(f"{name} AS (SELECT k.*, {rank_sql} AS rn FROM cand k)")
        return ", ".join(ctes), params + where_params
    flags = "".join(f", m.r_{ch}" if ch in channels else f", {_false()} AS r_{ch}" for ch in CHANNELS) if reach else ""
    ctes.append(
        f"{name} AS (SELECT m.id AS m_id, c.cid AS c_id, {send_number} AS send_number, c.threshold, "  # noqa: S608
        f"c.control_lt, c.b_lt, {bucket} AS bucket, {rank('m.id', 'c.cid', 'c.threshold')} AS rn{flags} "
        f"FROM lapsed m JOIN c ON m.last_purchase_at < c.cutoff {joins} WHERE {' AND '.join(where)})"
    )
    return ", ".join(ctes), params + where_params


def campaign_audience_queryset(campaign: Campaign, *, local_date: date, contact_rules: bool = True) -> QuerySet:
    """Members due for ``campaign`` on ``local_date`` (saved or not): the night's own selection.

    Without ``contact_rules`` it leaves out max sends, spacing and the frequency cap: every lapsed
    member the campaign could ever reach.
    """
    ctes, params = _selection_ctes(
        business=campaign.business, campaigns=[campaign], local_date=local_date, contact_rules=contact_rules
    )
    return Member.objects.filter(
        business_id=campaign.business_id, pk__in=RawSQL(f"WITH {ctes} SELECT due.m_id FROM due", params)
    )


# The funnel's stages, in the order they are shown: each member lapsed for the campaign lands in
# exactly one, the first rule it fails (so the counts add up to the lapsed members).
FUNNEL_STAGES = [
    ("conditions", "not matching the campaign's conditions"),
    ("max_sends", "already sent this campaign the maximum number of times"),
    ("spacing", "messaged by this campaign within its inactivity period (spacing)"),
    ("frequency_cap", "messaged by a campaign within the frequency cap"),
    ("other_campaign", "messaged by another campaign tonight (frequency cap: the longest threshold wins)"),
    ("unreachable", "not reachable on the chosen channels"),
    ("control", "held out as the control group (nothing sent, to measure the lift)"),
]

_STAGE_SQL = (
    "CASE WHEN k.ok_cond = 0 THEN 'conditions' WHEN k.ok_max = 0 THEN 'max_sends' "
    "WHEN k.ok_spacing = 0 THEN 'spacing' WHEN k.ok_fcap = 0 THEN 'frequency_cap' "
    "WHEN k.ok_reach = 0 THEN 'unreachable' WHEN k.rn <> 1 THEN 'other_campaign' "
    "WHEN k.bucket < k.control_lt THEN 'control' ELSE 'messaged' END"
)
_ARM_SQL = (
    f"CASE WHEN k.bucket < k.control_lt THEN '{Arm.CONTROL}' WHEN k.bucket < k.b_lt THEN '{Arm.B}' ELSE '{Arm.A}' END"
)


@dataclass
class Funnel:
    """Where the members lapsed for a campaign go on one night: ``stages`` (see FUNNEL_STAGES) by
    count, the unreachable by chosen channel and reason, and the messaged by channel."""

    inactivity_days: int
    channels: list[str]
    lapsed: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    # {"sms": {"no_contact": 3, "no_consent": 2}, …}: the unreachable, each counted on every chosen channel.
    unreachable_by: dict[str, dict[str, int]] = field(default_factory=dict)
    # Messaged members reachable on each chosen channel: one delivery each there.
    reach: dict[str, int] = field(default_factory=dict)

    @property
    def messaged(self) -> int:
        return self.stages.get("messaged", 0)

    def steps(self) -> list[dict]:
        """The stages in order with their counts and what is left after each (zeros left out,
        but never the last: messaged, with 0 too)."""
        left, out = self.lapsed, []
        for key, label in FUNNEL_STAGES:
            n = self.stages.get(key, 0)
            if n:
                left -= n
                out.append({"key": key, "label": label, "count": n, "left": left,
                            "reasons": self.unreachable_by if key == "unreachable" else {}})  # fmt: skip
        return out


@dataclass
class Audience:
    count: int  # messaged tonight: the control group held out, like the night's "sends"
    members: list[Member]
    funnel: Funnel
    # Messaged members by how long they have been away: {"30–59 days": n, …}.
    away: dict[str, int] = field(default_factory=dict)


AWAY_BUCKETS = [(0, 29, "under 30 days"), (30, 59, "30–59 days"), (60, 89, "60–89 days"), (90, 179, "90–179 days"),
                (180, 364, "180–364 days"), (365, 100_000, "a year or more")]  # fmt: skip


def night_campaigns(campaign: Campaign, *, local_date: date) -> list[Campaign]:
    """The campaigns the night of ``local_date`` evaluates, with ``campaign`` as it is being edited
    (saved or not, a draft as if active) in place of its saved self: it competes with the others
    for the frequency cap as it would that night. One query."""
    others = [c for c in campaigns_due(business=campaign.business, local_date=local_date) if c.pk != campaign.pk]
    return [*others, campaign]


def _funnel_sql(campaign: Campaign, *, local_date: date, campaigns: list[Campaign] | None = None) -> tuple[str, list]:
    """``WITH … st AS (…)``: one row per member lapsed for ``campaign`` on ``local_date``, with its
    ``stage``, ``arm``, ``send_number``, ``last_purchase_at`` and per channel ``r_``/``nc_``.
    ``campaigns``: the night's (``night_campaigns``), when the caller has them already."""
    if campaigns is None:
        campaigns = night_campaigns(campaign, local_date=local_date)
    ctes, params = _selection_ctes(business=campaign.business, campaigns=campaigns, local_date=local_date,
                                   funnel=True, name="ranked")  # fmt: skip
    per_channel = "".join(f", k.r_{ch}, k.nc_{ch}" for ch in CHANNELS)
    sql = (
        f"WITH {ctes}, st AS (SELECT k.m_id, k.send_number, k.last_purchase_at, {_STAGE_SQL} AS stage, "
        f"{_ARM_SQL} AS arm{per_channel} FROM ranked k WHERE k.c_id = %s) "
    )
    return sql, [*params, campaign.pk or 0]


def campaign_funnel(
    campaign: Campaign, *, local_date: date, campaigns: list[Campaign] | None = None
) -> tuple[Funnel, dict[str, int]]:
    """The audience of ``campaign`` on ``local_date`` as a funnel, from the night's own selection
    (its last stage is what the dry run and the night write as "sends"), and the messaged by how
    long they have been away. Two queries whatever the number of members."""
    tz = campaign.business.tzinfo
    sql, params = _funnel_sql(campaign, local_date=local_date, campaigns=campaigns)
    columns = [f"SUM(st.r_{ch}), SUM(st.nc_{ch})" for ch in CHANNELS]
    away_params: list = []
    for lo, hi, _ in AWAY_BUCKETS:
        columns.append("SUM(CASE WHEN st.last_purchase_at < %s AND st.last_purchase_at >= %s THEN 1 ELSE 0 END)")
        away_params += [_db_value(local_day_start(local_date - timedelta(days=lo - 1), tz)),
                        _db_value(local_day_start(local_date - timedelta(days=hi), tz))]  # fmt: skip
    query = f"{sql}SELECT st.stage, COUNT(*), {', '.join(columns)} FROM st GROUP BY st.stage"
    with connection.cursor() as cursor:
        cursor.execute(query, params + away_params)
        rows = cursor.fetchall()
    channels = [ch for ch in CHANNELS if ch in (campaign.channels or [])]
    funnel = Funnel(inactivity_days=campaign.inactivity_days, channels=channels)
    away: dict[str, int] = {}
    for stage, n, *sums in rows:
        funnel.lapsed += n
        funnel.stages[stage] = n
        by_channel = {ch: (int(sums[2 * i] or 0), int(sums[2 * i + 1] or 0)) for i, ch in enumerate(CHANNELS)}
        if stage == "unreachable":
            funnel.unreachable_by = {ch: {"no_contact": by_channel[ch][1], "no_consent": n - by_channel[ch][1]}
                                     for ch in channels}  # fmt: skip
        if stage == "messaged":
            funnel.reach = {ch: by_channel[ch][0] for ch in channels}
            buckets = sums[2 * len(CHANNELS) :]
            away = {label: int(k or 0) for (_, _, label), k in zip(AWAY_BUCKETS, buckets, strict=True) if k}
    return funnel, away


def campaign_funnel_rows(
    campaign: Campaign, *, local_date: date, offset: int = 0, limit: int = 50, campaigns: list[Campaign] | None = None
) -> list[dict]:
    """A page of the funnel's members: messaged first, then each stage held back (in FUNNEL_STAGES'
    order), by member id; each row's ``stage``, ``arm``, ``send_number`` and reachable ``channels``.
    One query (the members' rows are the caller's one more)."""
    sql, params = _funnel_sql(campaign, local_date=local_date, campaigns=campaigns)
    order = " ".join(f"WHEN '{key}' THEN {i + 1}" for i, (key, _) in enumerate(FUNNEL_STAGES))
    flags = ", ".join(f"st.r_{ch}" for ch in CHANNELS)
    query = (
        f"{sql}SELECT st.m_id, st.stage, st.arm, st.send_number, st.last_purchase_at, {flags} FROM st "
        f"ORDER BY CASE st.stage WHEN 'messaged' THEN 0 {order} END, st.m_id LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [*params, int(limit), int(offset)])
        rows = cursor.fetchall()
    chosen = campaign.channels or []
    return [
        {"member_id": m_id, "stage": stage, "arm": arm, "send_number": number,
         "channels": [ch for ch, r in zip(CHANNELS, flags, strict=True) if r and ch in chosen]}
        for m_id, stage, arm, number, _last, *flags in rows
    ]  # fmt: skip


def campaign_audience(campaign: Campaign, *, local_date: date, limit: int = 10) -> Audience:
    """Whom ``campaign`` would message on ``local_date`` (the control group held out), as a
    funnel, a page of them, and how long they have been away. Three queries, whatever the number
    of members."""
    campaigns = night_campaigns(campaign, local_date=local_date)
    funnel, away = campaign_funnel(campaign, local_date=local_date, campaigns=campaigns)
    page = []
    if limit and funnel.messaged:
        sql, params = _funnel_sql(campaign, local_date=local_date, campaigns=campaigns)
        messaged = RawSQL(f"{sql}SELECT st.m_id FROM st WHERE st.stage = 'messaged'", params)
        page = list(Member.objects.filter(pk__in=messaged).order_by("-last_purchase_at", "pk")[:limit])
    return Audience(count=funnel.messaged, members=page, funnel=funnel, away=away)


# --- the night -----------------------------------------------------------------------------------


def campaigns_due(*, business: Business, local_date: date) -> list[Campaign]:
    """Active campaigns activated before the first instant of ``local_date``."""
    start = local_day_start(local_date, business.tzinfo)
    campaigns = list(
        Campaign.objects.filter(business=business, status=CampaignStatus.ACTIVE, activated_at__lt=start).order_by("pk")
    )
    for campaign in campaigns:
        campaign.business = business  # one Business object (and one tzinfo) for the whole night
    return campaigns


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


class NightConflict(Exception):
    """The night's sends collided with sends written meanwhile by something other than a night of
    the same business (nights of one business take turns on NIGHT_LOCK): rolled back whole, the
    next tick evaluates the date again."""


_SEQUENCES: dict[str, str] = {}


def _send_sequence() -> str:
    table = CampaignSend._meta.db_table
    if table not in _SEQUENCES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            _SEQUENCES[table] = cursor.fetchone()[0]
    return _SEQUENCES[table]


@dataclass
class _Counts:
    sends: list[tuple[int, int, str, int]]  # (campaign, send number, outcome, rows)
    deliveries: dict[int, int]


@dataclass
class _Night:
    """The writes of one business's night, built from shared SQL pieces."""

    business: Business
    campaigns: list[Campaign]
    local_date: date
    run: EvaluationRun
    now: datetime
    messages: dict[int, int] = field(default_factory=dict)  # campaign id → its CampaignMessage id tonight

    # -- the pieces

    ARM_SQL = (
        f"CASE WHEN r.bucket < r.control_lt THEN '{Arm.CONTROL}' WHEN r.bucket < r.b_lt THEN '{Arm.B}' "
        f"ELSE '{Arm.A}' END"
    )
    OUTCOME_SQL = (
        f"CASE WHEN r.rn <> 1 THEN '{SendOutcome.CAPPED}' WHEN r.bucket < r.control_lt "
        f"THEN '{SendOutcome.CONTROL}' ELSE '{SendOutcome.SCHEDULED}' END"
    )

    def sends_select(self, *, with_ids: bool = False) -> tuple[str, list]:
        """The SELECT that feeds the send INSERT from the ``due`` rows (``with_ids``: the rows
        carry ``send_id`` and ``outcome`` already)."""
        sql = (
            f"SELECT {'r.send_id, ' if with_ids else ''}%s, r.c_id, r.m_id, %s, r.send_number, {self.ARM_SQL}, %s, "
            f"{'r.outcome' if with_ids else self.OUTCOME_SQL}, %s, {self.message_sql()} "
            "FROM due r WHERE 1 = 1 ORDER BY r.m_id ON CONFLICT DO NOTHING"
        )
        return sql, [self.business.pk, self.run.pk, _db_value(self.local_date), _db_value(self.now)]

    SENDS_HEAD = (
        f"INSERT INTO {CampaignSend._meta.db_table} (business_id, campaign_id, member_id, run_id, send_number, "
        "arm, local_date, outcome, created_at, message_id) "
    )

    def message_sql(self) -> str:
        """Each send's ``message_id``: a constant per campaign (ids from the database, as literals)."""
        if not self.messages:
            return "NULL"
        return f"CASE r.c_id {' '.join(f'WHEN {int(c)} THEN {int(m)}' for c, m in self.messages.items())} END"

    def reward_rows(self) -> list[list]:
        rows = []
        for campaign in self.campaigns:
            tz = campaign.business.tzinfo
            for number in range(1, campaign.max_sends + 1):
                reward = campaign.step(number)["reward"]
                if reward:
                    expires = local_day_start(self.local_date + timedelta(days=reward["expiry_days"] + 1), tz)
                    title = reward_words(reward, currency=campaign.business.currency)[:140]
                    rows.append([campaign.pk, number, reward["kind"], title, json.dumps(reward), expires])
        return rows

    def rewards_values(self, rows: list[list]) -> tuple[str, list]:
        columns = [("cid", "bigint"), ("send_number", "integer"), ("kind", "varchar"), ("title", "varchar"),
                   ("details", "jsonb"), ("expires_at", "timestamp with time zone")]  # fmt: skip
        return _values_sql("rw", columns, rows)

    def rewards_insert(self, source: str, *, ctes: str = "") -> tuple[str, list]:
        """Offer each new send's reward with it (SPEC §6): claimed later, exactly once. ``ctes``:
        WITH tables of this statement's own (when they are not in an outer WITH)."""
        sql = (
            f"INSERT INTO {WalletReward._meta.db_table} (business_id, member_id, send_id, kind, title, details, "  # noqa: S608
            f"status, offered_at, expires_at, created_at) {f'WITH {ctes} ' if ctes else ''}"
            "SELECT s.business_id, s.member_id, s.id, rw.kind, rw.title, rw.details, 'offered', %s, rw.expires_at, %s "
            f"FROM {source} s JOIN rw ON rw.cid = s.campaign_id AND rw.send_number = s.send_number "
            f"WHERE s.outcome = '{SendOutcome.SCHEDULED}' ON CONFLICT DO NOTHING"
        )
        return sql, [_db_value(self.now), _db_value(self.now)]

    def rewards_offered(self, sends: list[tuple[int, int, str, int]]) -> dict[int, int]:
        """Rewards written: one per new scheduled send whose step carries one (new send ids, so no
        conflict can have skipped any)."""
        with_reward = {(cid, number) for cid, number, *_ in self.reward_rows()}
        offered: Counter = Counter()
        for campaign_id, number, outcome, n in sends:
            if outcome == SendOutcome.SCHEDULED and (campaign_id, number) in with_reward:
                offered[campaign_id] += n
        return dict(offered)

    def calendars(self) -> dict[tuple[int, str], SendCalendar]:
        """Each (campaign, channel)'s allowed days from tonight's send-at on.

        In the business's time zone: a member with a zone of their own (few) is paced with the
        others, and the dispatcher's send-time re-check defers them, paced again, if that falls in
        their quiet hours. Per-member zones here would need time zone rules in SQL, which SQLite
        has not, and the night's two paths must stay equal.
        """
        tz = self.business.tzinfo
        return {
            (campaign.pk, channel): SendCalendar.for_channel(
                campaign=campaign, channel=channel, tz=tz, start=self.first_send_start(campaign),
                opens_at=campaign.send_at,
            )
            for campaign in self.campaigns
            for channel in campaign.channels
        }  # fmt: skip

    def first_send_start(self, campaign: Campaign) -> datetime:
        """Tonight's send-at instant; for a date caught up on a later local date (after downtime),
        ``now``: the calendar then opens on the next allowed day whose send-at is still ahead, so
        a missed night's messages go out at the usual time of day, not at once at 02:00 (nor in
        one burst at 08:00). A night evaluated late on its own date keeps its send-at (what is
        past goes out at once), as before."""
        tz = self.business.tzinfo
        start = local_moment(self.local_date, campaign.send_at, tz)
        return self.now if local_date_of(self.now, tz) > self.local_date and start < self.now else start

    def pacing_ctes(self) -> tuple[str, list]:
        """``p`` (campaign, channel, interval, slots a day, backlog) and ``cal`` (each allowed day's
        opening instant, as many days as the daily cap or the 21:00 close of SMS and WhatsApp can
        need)."""
        calendars = self.calendars()
        bounded = {key: cal for key, cal in calendars.items() if cal.per_day != UNCAPPED}
        backlog, bound = self._capped_counts(bounded) if bounded else ({}, {})
        pacing_rows, calendar_rows = [], []
        for (campaign_id, channel), cal in calendars.items():
            waiting = backlog.get((campaign_id, channel), 0)
            pacing_rows.append([campaign_id, channel, cal.step, cal.per_day, waiting])
            # At most every lapsed member gets a send tonight: enough days for them all.
            days = cal.days_for(waiting + bound.get(campaign_id, 0)) if cal.per_day != UNCAPPED else 1
            calendar_rows += [[campaign_id, channel, i, int(cal.day(i)[0].timestamp())] for i in range(days)]
        if not pacing_rows:
            pacing_rows = [[0, "", 0, UNCAPPED, 0]]  # campaigns without channels: no delivery
            calendar_rows = [[0, "", 0, 0]]
        pacing_sql, pacing_params = _values_sql(
            "p", [("cid", "bigint"), ("channel", "varchar"), ("step", "integer"), ("per_day", "integer"),
                  ("backlog", "integer")], pacing_rows)  # fmt: skip
        calendar_sql, calendar_params = _values_sql(
            "cal",
            [("cid", "bigint"), ("channel", "varchar"), ("idx", "integer"), ("start_epoch", "bigint")],
            calendar_rows,
        )
        return f"{pacing_sql}, {calendar_sql}", pacing_params + calendar_params

    def _capped_counts(self, bounded: dict[tuple[int, str], SendCalendar]) -> tuple[dict, dict]:
        """For channels with a limit a day (a cap, or 21:00): deliveries still scheduled on or after
        the local start of tonight's first send day (yesterday's spill and deferrals fill today's
        first slots), and per campaign how many members have lapsed at all (the most sends tonight
        can write)."""
        from notifications.models import Delivery, DeliveryStatus

        tz = self.business.tzinfo
        wanted = functools.reduce(
            operator.or_,
            [
                Q(campaign_id=campaign_id, channel=channel,
                  scheduled_at__gte=local_day_start(local_date_of(cal.day(0)[0], tz), tz))
                for (campaign_id, channel), cal in bounded.items()
            ],
        )  # fmt: skip
        backlog = {
            (campaign_id, channel): n
            for campaign_id, channel, n in Delivery.objects.filter(
                wanted, business_id=self.business.pk, status=DeliveryStatus.SCHEDULED
            )
            .values_list("campaign_id", "channel")
            .annotate(n=Count("pk"))
            .order_by()
        }
        campaigns = {c.pk: c for c in self.campaigns if any(key[0] == c.pk for key in bounded)}
        lapsed = Member.objects.filter(business_id=self.business.pk, status=MemberStatus.ACTIVE).aggregate(
            **{
                f"c{pk}": Count("pk", filter=Q(last_purchase_at__lt=_lapsed_before(c, local_date=self.local_date)))
                for pk, c in campaigns.items()
            }
        )
        return backlog, {pk: lapsed[f"c{pk}"] for pk in campaigns}

    def deliveries_insert(self, source: str, *, ctes: str = "") -> str | None:
        """One delivery per new scheduled send and reachable channel, at the night's send-at time,
        staggered by the channel's interval, spilling to the next allowed day at its daily cap (for
        SMS and WhatsApp also at 21:00, and from 08:00 at the earliest: ``calendars``).
        ``source`` (a WITH table) yields (id, business_id, campaign_id, member_id, outcome,
        r_<channel>…). Each channel is its own part, numbered in member order only where paced."""
        from notifications.models import Delivery

        parts = []
        for channel in CHANNELS:
            used = [c for c in self.campaigns if channel in (c.channels or [])]
            if not used:
                continue
            paced = any(
                int(((c.pacing or {}).get(channel) or {}).get(key) or 0)
                for c in used
                for key in ("interval_seconds", "daily_cap")
            )
            k = "ROW_NUMBER() OVER (PARTITION BY q.campaign_id ORDER BY q.member_id)" if paced else "1"
            parts.append(
                "SELECT q.id, q.business_id, q.campaign_id, q.member_id, p.channel, p.step, p.per_day, p.backlog, "  # noqa: S608
                f"{k} AS k FROM {source} q JOIN p ON p.cid = q.campaign_id AND p.channel = '{channel}' "
                f"WHERE q.outcome = '{SendOutcome.SCHEDULED}' AND q.r_{channel}"
            )
        if not parts:
            return None  # (only campaigns without channels)
        slot = "(s.k - 1 + s.backlog)"
        when = _epoch_to_timestamp_sql(f"d.start_epoch + ({slot} %% s.per_day) * s.step")
        return (
            f"INSERT INTO {Delivery._meta.db_table} (business_id, send_id, campaign_id, member_id, channel, status, "  # noqa: S608
            f"scheduled_at, attempts, claim_token, provider_id, last_error, created_at, updated_at) "
            f"{f'WITH {ctes} ' if ctes else ''}"
            f"SELECT s.business_id, s.id, s.campaign_id, s.member_id, s.channel, 'scheduled', {when}, 0, '', '', '', "
            f"%s, %s FROM ({' UNION ALL '.join(parts)}) s "
            f"JOIN cal d ON d.cid = s.campaign_id AND d.channel = s.channel AND d.idx = {slot} / s.per_day "
            "WHERE 1 = 1 ON CONFLICT DO NOTHING"
        )

    # -- the two ways of writing them

    def write_one_statement(self) -> _Counts:
        """PostgreSQL: select, write sends, rewards and deliveries, and count, in one statement.

        The due rows take their send ids from the sequence up front, so the rewards and the
        deliveries are written from the same rows as the sends, with no join back to them.
        """
        selection, params = _selection_ctes(
            business=self.business, campaigns=self.campaigns, local_date=self.local_date, reach=True, name="picked"
        )
        sends_sql, sends_params = self.sends_select(with_ids=True)
        pacing_sql, pacing_params = self.pacing_ctes()
        reward_rows = self.reward_rows()
        flags = ", ".join(f"r.r_{ch}" for ch in CHANNELS)
        ctes = [
            selection,
            # A volatile nextval(): PostgreSQL computes this once, whatever reads it.
            f"due AS (SELECT r.*, nextval('{_send_sequence()}') AS send_id, {self.OUTCOME_SQL} AS outcome "
            "FROM picked r)",
            f"fresh AS (SELECT r.send_id AS id, {int(self.business.pk)} AS business_id, r.c_id AS campaign_id, "
            f"r.m_id AS member_id, r.send_number, r.outcome, {flags} FROM due r)",
            f"ins AS ({self.SENDS_HEAD.replace('(business_id', '(id, business_id')}{sends_sql} "
            "RETURNING campaign_id, send_number, outcome)",
            pacing_sql,
        ]
        params += sends_params + pacing_params
        deliveries = self.deliveries_insert("fresh")
        if deliveries:
            ctes.append(f"dl AS ({deliveries} RETURNING campaign_id)")
            params += [_db_value(self.now), _db_value(self.now)]
        else:
            ctes.append("dl AS (SELECT cid AS campaign_id FROM p WHERE 1 = 0)")
        if reward_rows:
            rewards_values, rewards_params = self.rewards_values(reward_rows)
            rewards_sql, rewards_insert_params = self.rewards_insert("fresh")
            ctes += [rewards_values, f"rwi AS ({rewards_sql} RETURNING 1)"]
            params += rewards_params + rewards_insert_params
        sql = (
            f"WITH {', '.join(ctes)} "
            "SELECT campaign_id, send_number, outcome, COUNT(*) FROM ins GROUP BY campaign_id, send_number, outcome "
            "UNION ALL SELECT campaign_id, -1, '', COUNT(*) FROM dl GROUP BY campaign_id "
            "UNION ALL SELECT 0, -2, '', COUNT(*) FROM due"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        sends = [r for r in rows if r[1] > 0]
        due = next(n for _, number, _, n in rows if number == -2)
        if sum(n for *_, n in sends) != due:
            # A send conflicted with one written meanwhile (only another evaluation of this
            # business at the same moment can do that): its deliveries would point nowhere.
            raise NightConflict(f"business {self.business.pk}, {self.local_date}: {due} due, fewer sends written")
        return _Counts(sends=sends, deliveries={campaign_id: n for campaign_id, number, _, n in rows if number == -1})

    def write_in_steps(self) -> _Counts:
        """Elsewhere (SQLite has no data-modifying WITH): sends, their counts, rewards, deliveries."""
        selection, params = _selection_ctes(
            business=self.business, campaigns=self.campaigns, local_date=self.local_date
        )
        sends_sql, sends_params = self.sends_select()
        sends_table = CampaignSend._meta.db_table
        new_sends = f"(SELECT * FROM {sends_table} WHERE business_id = %s AND run_id = %s)"
        with connection.cursor() as cursor:
            cursor.execute(f"{self.SENDS_HEAD}WITH {selection} {sends_sql}", params + sends_params)
            cursor.execute(
                f"SELECT campaign_id, send_number, outcome, COUNT(*) FROM {new_sends} x "  # noqa: S608
                "GROUP BY campaign_id, send_number, outcome",
                [self.business.pk, self.run.pk],
            )
            sends = cursor.fetchall()
            reward_rows = self.reward_rows()
            if reward_rows:
                rewards_values, rewards_params = self.rewards_values(reward_rows)
                rewards_sql, rewards_insert_params = self.rewards_insert(new_sends, ctes=rewards_values)
                cursor.execute(rewards_sql, rewards_params + rewards_insert_params + [self.business.pk, self.run.pk])
            pacing_sql, pacing_params = self.pacing_ctes()
            flags = ", ".join(f"{reachable_sql(ch)} AS r_{ch}" for ch in CHANNELS)
            fresh = (
                f"fresh AS (SELECT cs.id, cs.business_id, cs.campaign_id, cs.member_id, cs.outcome, {flags} "  # noqa: S608
                f"FROM {sends_table} cs JOIN {Member._meta.db_table} m ON m.id = cs.member_id "
                "WHERE cs.business_id = %s AND cs.run_id = %s)"
            )
            deliveries: Counter = Counter()
            insert = self.deliveries_insert("fresh", ctes=f"{pacing_sql}, {fresh}")
            if insert:
                cursor.execute(
                    f"{insert} RETURNING campaign_id",
                    pacing_params + [self.business.pk, self.run.pk, _db_value(self.now), _db_value(self.now)],
                )
                deliveries.update(campaign_id for (campaign_id,) in cursor.fetchall())
        return _Counts(sends=sends, deliveries=dict(deliveries))


def _epoch_to_timestamp_sql(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"to_timestamp({expr})"
    return f"datetime({expr}, 'unixepoch')"


# --- the tick ------------------------------------------------------------------------------------

# Whole local dates missed (the beat down across midnights) are still evaluated this many days
# back from today; older ones are lost: a message for a week-old night would be news no longer.
CATCH_UP_DAYS = 3

# A failing business is retried after 5 minutes (the tick's own period), then 10, 20, … up to 4 h.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=4)


def evaluations_due(*, now: datetime) -> list[tuple[int, date]]:
    """(business id, local date) pairs to evaluate, by business and, within one, oldest date first.

    For each active business not backing off after a failure: every local date after its last
    run, up to today, but from at most ``CATCH_UP_DAYS`` before today and not before the date the
    business was created. So a tick missed during downtime — even whole dates — is caught up by
    the next one, and the unique run per (business, local date) keeps two ticks from evaluating a
    date twice. Why these bounds:

    * after the last run, never a gap before it: spacing and the frequency cap read the nights
      in date order, so an older date evaluated after a newer one would message members the
      newer night already judged;
    * not before the business existed: a business created today has had no night before today
      (its campaigns, activated today, are evaluated from tomorrow anyway, SPEC §5);
    * up to today, which the creation bound never excludes (a clock behind ``created_at`` must
      not stop a business's nights).

    Two queries whatever the history: the businesses (with their failure row, if any), and their
    last runs within the window, read from the index leading with the date (``run_local_date``).
    """
    with scopes_disabled():  # the one cross-tenant fan-out of the night
        businesses = list(
            Business.objects.filter(is_active=True)
            .exclude(evaluation_failure__retry_at__gt=now)  # backing off: left alone until then
            .values_list("pk", "timezone", "created_at")
        )
        if not businesses:
            return []
        today = {pk: local_date_of(now, ZoneInfo(tz)) for pk, tz, _ in businesses}
        window = min(today.values()) - timedelta(days=CATCH_UP_DAYS)
        last = dict(
            EvaluationRun.objects.filter(local_date__gte=window)
            .values("business_id")
            .annotate(last=Max("local_date"))
            .values_list("business_id", "last")
            .order_by()
        )
    due = []
    for pk, tz, created_at in businesses:
        first = max(
            today[pk] - timedelta(days=CATCH_UP_DAYS),
            min(local_date_of(created_at, ZoneInfo(tz)), today[pk]),
            last[pk] + timedelta(days=1) if pk in last else date.min,
        )
        due += [(pk, first + timedelta(days=k)) for k in range((today[pk] - first).days + 1)]
    return sorted(due)


@dataclass
class NightOutcome:
    business_id: int
    local_date: date
    result: RunResult | None = None  # None: already evaluated (or failed)
    error: str = ""


def nights_evaluate(
    *, pairs: list[tuple[int, date]], now_fn: Callable[[], datetime], dry_run: bool = False
) -> list[NightOutcome]:
    """Evaluate (business id, local date) pairs, each business in its own scope, its dates oldest
    first, each date its own run (and transaction).

    One business's failure leaves the others evaluated. It is recorded (``EvaluationFailure``:
    count, error, next retry with backoff) and ends that business's dates for now: a later date
    evaluated after a failed one would leave the failed one behind for good (the catch-up never
    goes back before the last run). A business that succeeds again has its failure cleared.
    A dry run writes nothing, failures included.
    """
    outcomes: list[NightOutcome] = []
    succeeded: list[int] = []
    by_business: dict[int, list[date]] = {}
    for business_id, local_date in pairs:
        by_business.setdefault(int(business_id), []).append(local_date)
    for business_id, dates in by_business.items():
        with scope(business=business_id):
            business = Business.objects.filter(pk=business_id).first()
            if business is None:
                continue  # deleted since the tick
            for local_date in sorted(dates):
                outcome = NightOutcome(business_id, local_date)
                outcomes.append(outcome)
                now = now_fn()
                try:
                    outcome.result = business_evaluate(
                        business=business, local_date=local_date, now=now, dry_run=dry_run
                    )
                except Exception as exc:
                    log.exception("evaluation of business %s for %s failed", business_id, local_date)
                    outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
                    if not dry_run:
                        _failure_record(business=business, local_date=local_date, error=outcome.error, now=now)
                    break
            else:
                succeeded.append(business_id)
    if succeeded and not dry_run:
        # One statement for the batch (not one per business a night): a business that succeeds
        # again has its failure cleared.
        with scopes_disabled():
            EvaluationFailure.objects.filter(business_id__in=succeeded).delete()
    return outcomes


def _failure_record(*, business: Business, local_date: date, error: str, now: datetime) -> None:
    try:
        evaluation_failure_record(business=business, local_date=local_date, error=error, now=now)
    except Exception:
        # The database itself failing: the next business of the batch may still get through.
        log.exception("could not record the failure of business %s", business.pk)


def retry_delay(failures: int) -> timedelta:
    """How long the tick leaves a business alone after ``failures`` failures in a row."""
    return min(RETRY_FIRST * 2 ** min(failures - 1, 20), RETRY_MAX)


def evaluation_failure_record(*, business: Business, local_date: date, error: str, now: datetime) -> EvaluationFailure:
    """Count one more failure of ``business`` and push its next retry out (after the night's own
    transaction rolled back). Two workers failing at once count twice: the row is locked."""
    with transaction.atomic():
        failure, created = EvaluationFailure.objects.select_for_update().get_or_create(
            business=business,
            defaults={"local_date": local_date, "error": error, "first_failed_at": now, "failed_at": now,
                      "retry_at": now + retry_delay(1)},
        )  # fmt: skip
        if not created:
            failure.failures += 1
            failure.local_date, failure.error, failure.failed_at = local_date, error, now
            failure.retry_at = now + retry_delay(failure.failures)
            failure.save(update_fields=["failures", "local_date", "error", "failed_at", "retry_at"])
    return failure
