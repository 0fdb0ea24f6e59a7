"""Whom the night selects: the campaigns due on a local date and, in one statement for all of them,
the members due for each (the WITH-clause tables the night, the dry run, the funnel and the
wizard's live count all build on)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from members.models import CHANNELS, Business, Member, MemberStatus

from ..models import NOT_COUNTED, Campaign, CampaignSend, CampaignStatus
from ..rules import (
    CONDITION_SQL,
    FLAG_CONDITION_SQL,
    condition_values,
    conditions_sql,
    contact_missing_sql,
    reachable_sql,
)
from .dates import local_day_start
from .sql import _db_value, _false, _values_sql

# Deterministic A/B/control buckets from (campaign, member): the same arm across every send.
BUCKET_SQL = "((({member} * 2654435761) + ({campaign} * 40503)) %% 10007) %% 100"


def arm_bucket(*, campaign_id: int, member_id: int) -> int:
    """The bucket (0–99) the SQL above gives, for tests and previews."""
    return ((member_id * 2654435761 + campaign_id * 40503) % 10007) % 100


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


def campaigns_due(*, business: Business, local_date: date) -> list[Campaign]:
    """Active campaigns activated before the first instant of ``local_date``."""
    start = local_day_start(local_date, business.tzinfo)
    campaigns = list(
        Campaign.objects.filter(business=business, status=CampaignStatus.ACTIVE, activated_at__lt=start).order_by("pk")
    )
    for campaign in campaigns:
        campaign.business = business  # one Business object (and one tzinfo) for the whole night
    return campaigns
