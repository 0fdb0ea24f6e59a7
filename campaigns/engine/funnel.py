"""The audience of one campaign on one night as a funnel: where each lapsed member goes (the first
rule that leaves them out, or messaged), a page of them, and how long they have been away."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import connection
from django.db.models.expressions import RawSQL

from members.models import CHANNELS, Member

from ..models import Arm, Campaign
from .dates import local_day_start
from .selection import _selection_ctes, campaigns_due
from .sql import _db_value

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
