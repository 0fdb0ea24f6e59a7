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

import json
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django_scopes import scopes_disabled

from members.models import Business, Member, MemberStatus, WalletReward

from .models import NOT_COUNTED, Arm, Campaign, CampaignSend, CampaignStatus, EvaluationRun, SendOutcome
from .rules import conditions_q, reachable_any_q, reachable_q, reward_title

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


# --- the audience --------------------------------------------------------------------------------


def campaign_audience_queryset(
    campaign: Campaign, *, local_date: date, has_sends: bool | None = None, contact_rules: bool = True
) -> QuerySet:
    """Members due for ``campaign`` on ``local_date`` (saved or not), annotated with ``prior_sends``.

    The wizard's live count, the dry run and the night all use this one selection. Without
    ``contact_rules`` it leaves out max sends, spacing and the frequency cap: every lapsed member
    the campaign could ever reach.
    """
    business = campaign.business
    tz = business.tzinfo
    last_allowed = local_date - timedelta(days=campaign.inactivity_days)
    purchased_before = local_day_start(last_allowed + timedelta(days=1), tz)

    members = Member.objects.filter(
        business_id=business.pk, status=MemberStatus.ACTIVE, last_purchase_at__lt=purchased_before
    )
    if not contact_rules:
        has_sends = False
    elif has_sends is None:
        has_sends = bool(campaign.pk) and CampaignSend.objects.filter(campaign_id=campaign.pk).exists()
    if has_sends:
        sends = CampaignSend.objects.filter(campaign_id=campaign.pk, member_id=OuterRef("pk")).exclude(
            outcome__in=NOT_COUNTED
        )
        # Spacing and max sends as NOT EXISTS, which PostgreSQL runs as anti-joins. Counted send
        # numbers are always 1..k (cancelled and capped rows hold none), so "fewer than max
        # sends" is "no send numbered max_sends or more". The count itself is only computed for
        # the rows selected, as the new send's number.
        members = members.exclude(Exists(sends.filter(local_date__gt=last_allowed))).exclude(
            Exists(sends.filter(send_number__gte=campaign.max_sends))
        )
        members = members.annotate(
            prior_sends=Coalesce(Subquery(sends.order_by().values("member_id").annotate(n=Count("pk")).values("n")), 0)
        )
    else:
        members = members.annotate(prior_sends=Value(0, output_field=IntegerField()))

    members = members.filter(
        conditions_q(campaign.conditions, days_away_since=lambda n: local_day_start(local_date - timedelta(days=n), tz))
    )
    if campaign.channels:
        # (A draft without channels yet counts every lapsed member: the wizard's trigger step.)
        members = members.filter(reachable_any_q(list(campaign.channels)))
    if business.frequency_cap_days and contact_rules:
        recent = CampaignSend.objects.filter(
            business_id=business.pk,
            member_id=OuterRef("pk"),
            local_date__gt=local_date - timedelta(days=business.frequency_cap_days),
        ).exclude(outcome__in=NOT_COUNTED)
        members = members.exclude(Exists(recent))
    return members


@dataclass
class Audience:
    count: int
    members: list[Member]
    # Lapsed and reachable, but held back tonight by max sends, spacing or the frequency cap.
    held_back: int = 0
    # Members by how long they have been away: {"14–29 days": n, …}.
    away: dict[str, int] = field(default_factory=dict)


AWAY_BUCKETS = [(0, 29, "under 30 days"), (30, 59, "30–59 days"), (60, 89, "60–89 days"), (90, 179, "90–179 days"),
                (180, 364, "180–364 days"), (365, 100_000, "a year or more")]  # fmt: skip


def campaign_audience(campaign: Campaign, *, local_date: date, limit: int = 10) -> Audience:
    """How many members ``campaign`` would reach on ``local_date``, a page of them, how long they
    have been away, and how many more are held back. Four queries, whatever the number of members."""
    tz = campaign.business.tzinfo
    qs = campaign_audience_queryset(campaign, local_date=local_date)
    aggregates = {}
    for i, (lo, hi, _) in enumerate(AWAY_BUCKETS):
        newest = local_day_start(local_date - timedelta(days=lo - 1), tz)
        oldest = local_day_start(local_date - timedelta(days=hi), tz)
        aggregates[f"away_{i}"] = Count("pk", filter=Q(last_purchase_at__lt=newest, last_purchase_at__gte=oldest))
    counts = qs.aggregate(total=Count("pk"), **aggregates)
    away = {label: counts[f"away_{i}"] for i, (_, _, label) in enumerate(AWAY_BUCKETS) if counts[f"away_{i}"]}
    page = list(qs.order_by("-last_purchase_at", "pk")[:limit]) if limit else []
    lapsed = campaign_audience_queryset(campaign, local_date=local_date, contact_rules=False).count()
    return Audience(count=counts["total"], members=page, away=away, held_back=max(lapsed - counts["total"], 0))


# --- the night -----------------------------------------------------------------------------------


def campaigns_due(*, business: Business, local_date: date) -> list[Campaign]:
    """Active campaigns activated before the first instant of ``local_date``."""
    start = local_day_start(local_date, business.tzinfo)
    return list(
        Campaign.objects.filter(business=business, status=CampaignStatus.ACTIVE, activated_at__lt=start)
        .select_related("business")
        .order_by("pk")
    )


def _selection_sql(*, business: Business, campaigns: list[Campaign], local_date: date) -> tuple[str, list]:
    """One SELECT over every campaign's audience with each row's rank (1: this campaign wins)."""
    parts, params = [], []
    sends_exist = set(
        CampaignSend.objects.filter(campaign_id__in=[c.pk for c in campaigns])
        .values_list("campaign_id", flat=True)
        .distinct()
    )
    for campaign in campaigns:
        control_lt = campaign.control_share
        b_lt = control_lt + ((100 - control_lt) * campaign.ab_share_b // 100 if campaign.ab_enabled else 0)
        qs = (
            campaign_audience_queryset(campaign, local_date=local_date, has_sends=campaign.pk in sends_exist)
            .annotate(
                m_id=F("pk"),
                c_id=Value(campaign.pk, output_field=IntegerField()),
                send_number=F("prior_sends") + 1,
                threshold=Value(campaign.inactivity_days, output_field=IntegerField()),
                control_lt=Value(control_lt, output_field=IntegerField()),
                b_lt=Value(b_lt, output_field=IntegerField()),
            )
            .order_by()
            .values("m_id", "c_id", "send_number", "threshold", "control_lt", "b_lt")
        )
        sql, p = qs.query.sql_with_params()
        parts.append(sql)
        params.extend(p)
    union = " UNION ALL ".join(parts)
    bucket = BUCKET_SQL.format(member="u.m_id", campaign="u.c_id")
    rank = (
        "ROW_NUMBER() OVER (PARTITION BY u.m_id ORDER BY u.threshold DESC, u.c_id)"
        if business.frequency_cap_days
        else "1"
    )
    sql = f"SELECT u.*, {bucket} AS bucket, {rank} AS rn FROM ({union}) u"  # noqa: S608 - built from ORM SQL
    return sql, params


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
    and writes nothing.
    """
    started = clock.monotonic()
    campaigns = campaigns_due(business=business, local_date=local_date)
    if dry_run:
        return RunResult(None, local_date, _dry_run_counts(business, campaigns, local_date), dry_run=True)

    with transaction.atomic():
        if connection.vendor == "postgresql":
            # These statements are big but quick: JIT compiling them costs more than it saves.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        try:
            with transaction.atomic():
                run = EvaluationRun.objects.create(business=business, local_date=local_date, started_at=now)
        except IntegrityError:
            return None  # another evaluation has (or is writing) this date
        stats: dict[int, dict[str, int]] = {
            c.pk: {"selected": 0, "capped": 0, "control": 0, "sends": 0, "deliveries": 0, "rewards": 0}
            for c in campaigns
        }
        if campaigns:
            _insert_sends(business=business, campaigns=campaigns, local_date=local_date, run=run, now=now)
            for campaign_id, outcome, n in (
                CampaignSend.objects.filter(run=run).values_list("campaign_id", "outcome").annotate(n=Count("pk"))
            ):
                s = stats[campaign_id]
                s["selected"] += n
                key = {SendOutcome.CAPPED: "capped", SendOutcome.CONTROL: "control", SendOutcome.SCHEDULED: "sends"}
                s[key[outcome]] += n
            for campaign in campaigns:
                if stats[campaign.pk]["sends"]:
                    stats[campaign.pk]["rewards"] = _insert_rewards(
                        campaign=campaign, run=run, local_date=local_date, now=now
                    )
                    stats[campaign.pk]["deliveries"] = _insert_deliveries(
                        campaign=campaign, run=run, local_date=local_date, now=now, sends=stats[campaign.pk]["sends"]
                    )
        run.campaigns = len(campaigns)
        run.sends = sum(s["sends"] + s["control"] for s in stats.values())
        run.deliveries = sum(s["deliveries"] for s in stats.values())
        run.stats = {str(k): v for k, v in stats.items()}
        run.finished_at = now
        run.duration_ms = int((clock.monotonic() - started) * 1000)
        run.save()
    return RunResult(run, local_date, stats)


def _dry_run_counts(business: Business, campaigns: list[Campaign], local_date: date) -> dict[int, dict[str, int]]:
    stats = {c.pk: {"selected": 0, "capped": 0, "control": 0, "sends": 0} for c in campaigns}
    if not campaigns:
        return stats
    selection, params = _selection_sql(business=business, campaigns=campaigns, local_date=local_date)
    sql = (
        "SELECT r.c_id, COUNT(*), "
        "SUM(CASE WHEN r.rn <> 1 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN r.rn = 1 AND r.bucket < r.control_lt THEN 1 ELSE 0 END) "
        f"FROM ({selection}) r GROUP BY r.c_id"  # noqa: S608
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


def _insert_sends(
    *, business: Business, campaigns: list[Campaign], local_date: date, run: EvaluationRun, now: datetime
):
    selection, params = _selection_sql(business=business, campaigns=campaigns, local_date=local_date)
    table = CampaignSend._meta.db_table
    sql = (
        f"INSERT INTO {table} (business_id, campaign_id, member_id, run_id, send_number, arm, local_date, outcome, "  # noqa: S608
        "created_at) "
        "SELECT %s, r.c_id, r.m_id, %s, r.send_number, "
        f"CASE WHEN r.bucket < r.control_lt THEN '{Arm.CONTROL}' WHEN r.bucket < r.b_lt THEN '{Arm.B}' "
        f"ELSE '{Arm.A}' END, %s, "
        f"CASE WHEN r.rn <> 1 THEN '{SendOutcome.CAPPED}' WHEN r.bucket < r.control_lt THEN '{SendOutcome.CONTROL}' "
        f"ELSE '{SendOutcome.SCHEDULED}' END, %s "
        f"FROM ({selection}) r WHERE 1 = 1 ORDER BY r.m_id ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        # Parameters in the order of their placeholders: the INSERT's head, then the selection.
        cursor.execute(
            sql, [business.pk, run.pk, connection.ops.adapt_datefield_value(local_date), _db_datetime(now), *params]
        )


def _db_datetime(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _insert_rewards(*, campaign: Campaign, run: EvaluationRun, local_date: date, now: datetime) -> int:
    """Offer each new send's reward with it (SPEC §6): claimed later, exactly once."""
    total = 0
    tz = campaign.business.tzinfo
    table, sends = WalletReward._meta.db_table, CampaignSend._meta.db_table
    for number in range(1, campaign.max_sends + 1):
        reward = campaign.step(number)["reward"]
        if not reward:
            continue
        expires = local_day_start(local_date + timedelta(days=reward["expiry_days"] + 1), tz)
        sql = (
            f"INSERT INTO {table} (business_id, member_id, send_id, kind, title, details, status, offered_at, "  # noqa: S608
            "expires_at, created_at) "
            f"SELECT s.business_id, s.member_id, s.id, %s, %s, %s, 'offered', %s, %s, %s FROM {sends} s "
            f"WHERE s.run_id = %s AND s.campaign_id = %s AND s.send_number = %s AND s.outcome = '{SendOutcome.SCHEDULED}' "
            "ON CONFLICT DO NOTHING"
        )
        title = reward_title(reward, currency=campaign.business.currency)
        params = [reward["kind"], title[:140], json.dumps(reward), _db_datetime(now), _db_datetime(expires),
                  _db_datetime(now), run.pk, campaign.pk, number]  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            total += cursor.rowcount
    return total


def send_days(*, campaign: Campaign, local_date: date, count: int) -> list[datetime]:
    """The send-at instant of each allowed day from ``local_date`` on (weekends skipped when
    excluded), as many as ``count`` days."""
    tz = campaign.business.tzinfo
    days, day = [], local_date
    while len(days) < count:
        if campaign.include_weekends or day.weekday() < 5:
            days.append(local_moment(day, campaign.send_at, tz))
        day += timedelta(days=1)
    return days


def _epoch_to_timestamp_sql(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"to_timestamp({expr})"
    return f"datetime({expr}, 'unixepoch')"


def _insert_deliveries(*, campaign: Campaign, run: EvaluationRun, local_date: date, now: datetime, sends: int) -> int:
    """One delivery per new send and reachable channel, at the send-at time of the night,
    staggered by the channel's interval and spilling to the next allowed day at its daily cap."""
    from notifications.models import Delivery, DeliveryStatus

    total = 0
    for channel in campaign.channels:
        pacing = (campaign.pacing or {}).get(channel, {})
        interval = int(pacing.get("interval_seconds") or 0)
        cap = int(pacing.get("daily_cap") or 0)
        first_day = send_days(campaign=campaign, local_date=local_date, count=1)[0]
        backlog = 0
        if cap:
            # Yesterday's spill already fills the first slots of today.
            backlog = Delivery.objects.filter(
                campaign_id=campaign.pk,
                channel=channel,
                status=DeliveryStatus.SCHEDULED,
                scheduled_at__gte=first_day,
            ).count()
        per_day = cap or (sends + backlog + 1)
        days = send_days(campaign=campaign, local_date=local_date, count=(backlog + sends) // per_day + 1)
        calendar = " UNION ALL ".join(
            f"SELECT {i} AS idx, {int(d.timestamp())} AS start_epoch" for i, d in enumerate(days)
        )
        rows = (
            CampaignSend.objects.filter(run=run, campaign_id=campaign.pk, outcome=SendOutcome.SCHEDULED)
            .filter(reachable_q(channel, prefix="member__"))
            .annotate(k=Window(RowNumber(), order_by=F("member_id").asc()))
            .order_by()
            .values("id", "business_id", "campaign_id", "member_id", "k")
        )
        rows_sql, rows_params = rows.query.sql_with_params()
        slot = f"(s.k - 1 + {backlog})"
        when = _epoch_to_timestamp_sql(f"d.start_epoch + ({slot} %% {per_day}) * {interval}")
        table = Delivery._meta.db_table
        sql = (
            f"INSERT INTO {table} (business_id, send_id, campaign_id, member_id, channel, status, scheduled_at, "  # noqa: S608
            "attempts, claim_token, provider_id, last_error, created_at, updated_at) "
            f"SELECT s.business_id, s.id, s.campaign_id, s.member_id, %s, 'scheduled', {when}, 0, '', '', '', %s, %s "
            f"FROM ({rows_sql}) s JOIN ({calendar}) d ON d.idx = {slot} / {per_day} "
            "WHERE 1 = 1 ON CONFLICT DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [channel, _db_datetime(now), _db_datetime(now), *rows_params])
            total += cursor.rowcount
    return total


# --- the tick ------------------------------------------------------------------------------------


def evaluations_due(*, now: datetime) -> list[tuple[int, date]]:
    """(business id, local date) pairs whose local date has no evaluation yet.

    Every tick asks again, so a tick missed during downtime is caught up by the next one; the
    unique run per (business, local date) keeps two ticks from evaluating a date twice.
    """
    with scopes_disabled():  # the one cross-tenant fan-out of the night
        businesses = list(Business.objects.filter(is_active=True).values_list("pk", "timezone"))
        wanted = {(pk, local_date_of(now, ZoneInfo(tz))) for pk, tz in businesses}
        dates = {d for _, d in wanted}
        done = set(EvaluationRun.objects.filter(local_date__in=dates).values_list("business_id", "local_date"))
    return sorted(wanted - done)
