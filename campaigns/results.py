"""Results that prove the money: attribution, per-arm figures, lift with significance.

A send counts as **won back** when its member makes a purchase within the campaign's attribution
window after the send's night (``created_at``, the evaluation instant); control hold-outs are
measured the same way from the night they were held out, so both arms share one clock. Revenue is
the amount of those purchases. Everything is computed by aggregate queries over the ledger as it
stands, so backdated or imported purchases count as soon as they are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import ngettext

from members.models import RewardKind, RewardStatus, Visit, VisitKind, WalletReward

from .models import NOT_COUNTED, Arm, Campaign, CampaignSend
from .stats import AHEAD, BEHIND, COLLECTING, Comparison, compare


def _purchases_within(days: int) -> QuerySet:
    """Purchases of the outer send's member inside its attribution window: after the night's
    instant, up to ``days`` later (inclusive). The one definition of "came back"."""
    window_end = ExpressionWrapper(OuterRef("created_at") + Value(timedelta(days=days)), output_field=DateTimeField())
    return Visit.objects.filter(
        member_id=OuterRef("member_id"),
        kind=VisitKind.PURCHASE,
        occurred_at__gt=OuterRef("created_at"),
        occurred_at__lte=window_end,
    )


MONEY = DecimalField(max_digits=14, decimal_places=2)


def _earlier_window(days: int) -> QuerySet:
    """Inside a purchase subquery of ``_purchases_within``: a counted earlier send of the same
    campaign to the same member whose window also holds the purchase. A purchase is the revenue
    of the first send whose window holds it, so a second message sent before the first's window
    closed does not count it again."""
    return CampaignSend.objects.filter(
        campaign_id=OuterRef(OuterRef("campaign_id")),
        member_id=OuterRef("member_id"),
        created_at__lt=OuterRef(OuterRef("created_at")),
        created_at__gte=ExpressionWrapper(
            OuterRef("occurred_at") - Value(timedelta(days=days)), output_field=DateTimeField()
        ),  # fmt: skip
    ).exclude(outcome__in=NOT_COUNTED)


def _attributed(sends: QuerySet, days: int) -> QuerySet:
    purchases = _purchases_within(days)
    revenue = (
        purchases.filter(~Exists(_earlier_window(days)))
        .order_by()
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return sends.exclude(outcome__in=NOT_COUNTED).annotate(
        won=Exists(purchases),
        revenue=Coalesce(Subquery(revenue, output_field=MONEY), Value(Decimal("0")), output_field=MONEY),
    )


def attributed_sends(campaign: Campaign) -> QuerySet:
    """The campaign's sends (control included, capped and cancelled not), each annotated with
    ``won`` and ``revenue`` from purchases inside the attribution window."""
    return _attributed(CampaignSend.objects.filter(campaign_id=campaign.pk), campaign.attribution_days)


@dataclass
class ArmOutcome:
    """Members of one arm of one campaign: how many were picked, how many came back, what they spent."""

    members: int = 0
    sends: int = 0
    won: int = 0
    revenue: Decimal = Decimal("0")
    waiting: int = 0  # picked, not back yet, and their window still open: the figures can grow


def campaign_outcomes(*, campaigns: list[Campaign], since: datetime | None = None) -> dict[int, dict[str, ArmOutcome]]:
    """**Won back**, the one function every surface reads (page, API, list card, dashboard).

    Per campaign and arm: the members picked on a night (``since`` it, if given) — every counted
    send, whether its message went out, came back before it or is still scheduled, and the control
    group's hold-outs alike: the two arms are compared as they were assigned, so a member who
    returned before the message counts in the campaign's arm as their twin counts in the control's
    (dropping them would bias the campaign down) — and of them the members who made a purchase
    within the attribution window after one of their nights, with that revenue. One query per
    distinct attribution window, whatever the number of campaigns or members."""
    outcomes: dict[int, dict[str, ArmOutcome]] = {c.pk: {arm: ArmOutcome() for arm in Arm.values} for c in campaigns}
    now = timezone.now()
    for days in sorted({c.attribution_days for c in campaigns}):
        sends = CampaignSend.objects.filter(campaign_id__in=[c.pk for c in campaigns if c.attribution_days == days])
        if since is not None:
            sends = sends.filter(created_at__gte=since)
        rows = (
            _attributed(sends, days)
            .order_by()
            .values("campaign_id", "arm")
            .annotate(
                members_n=Count("member_id", distinct=True),
                sends_n=Count("pk"),
                won_n=Count("member_id", distinct=True, filter=Q(won=True)),
                revenue_sum=Sum("revenue"),
                waiting_n=Count(
                    "member_id", distinct=True, filter=Q(won=False, created_at__gt=now - timedelta(days=days))
                ),
            )
        )
        for r in rows:
            outcomes[r["campaign_id"]][r["arm"]] = ArmOutcome(
                r["members_n"], r["sends_n"], r["won_n"], r["revenue_sum"] or Decimal("0"), r["waiting_n"]
            )
    return outcomes


def won_back_total(*, campaigns: list[Campaign], since: datetime) -> ArmOutcome:
    """Across ``campaigns``: the members messaged (arms A and B) since ``since`` who came back,
    each member once, and the purchases inside their windows, each purchase once, however many
    campaigns claim them (the dashboard's figure; each campaign's own is ``campaign_outcomes``).
    One query."""
    claimed = Q(pk__in=[])
    for days in sorted({c.attribution_days for c in campaigns}):
        treated = (
            CampaignSend.objects.filter(
                campaign_id__in=[c.pk for c in campaigns if c.attribution_days == days],
                arm__in=[Arm.A, Arm.B],
                member_id=OuterRef("member_id"),
                created_at__lt=OuterRef("occurred_at"),
                created_at__gte=ExpressionWrapper(
                    OuterRef("occurred_at") - Value(timedelta(days=days)), output_field=DateTimeField()
                ),  # fmt: skip
            )
            .filter(created_at__gte=since)
            .exclude(outcome__in=NOT_COUNTED)
        )
        claimed |= Q(Exists(treated))
    figures = Visit.objects.filter(claimed, kind=VisitKind.PURCHASE, occurred_at__gt=since).aggregate(
        won=Count("member_id", distinct=True), revenue=Sum("amount")
    )
    return ArmOutcome(won=figures["won"] or 0, revenue=figures["revenue"] or Decimal("0"))


def campaign_treatment(outcome: dict[str, ArmOutcome]) -> ArmOutcome:
    """The campaign's arms together (A and B), against the control group. Arms are deterministic
    per member, so members add up."""
    a, b = outcome[Arm.A], outcome[Arm.B]
    return ArmOutcome(a.members + b.members, a.sends + b.sends, a.won + b.won, a.revenue + b.revenue,
                      a.waiting + b.waiting)  # fmt: skip


@dataclass
class ArmFigures:
    arm: str
    members: int = 0
    sends: int = 0
    reached: int = 0  # sends with at least one delivery that went out (treatment only)
    opened: int = 0
    won: int = 0  # members who came back (campaign_outcomes)
    revenue: Decimal = Decimal("0")
    waiting: int = 0  # not back yet, inside their window (campaign_outcomes)

    @property
    def win_rate(self) -> float:
        return self.won / self.members if self.members else 0.0

    @property
    def open_rate(self) -> float:
        return self.opened / self.reached if self.reached else 0.0


@dataclass
class Results:
    campaign: Campaign
    arms: dict[str, ArmFigures]
    total: ArmFigures
    treatment: ArmFigures
    by_night: list[dict]
    deliveries: dict[str, dict[str, int]]
    rewards: dict[str, int]
    ab: Comparison | None  # variant B against variant A
    lift: Comparison | None  # the campaign (A and B) against the control group
    lift_by_arm: dict[str, Comparison] = field(default_factory=dict)  # each variant against the control
    channels: list[str] = field(default_factory=list)

    def funnel(self) -> list[tuple[str, int]]:
        return [("Sent", self.treatment.reached), ("Opened", self.treatment.opened), ("Came back", self.treatment.won)]

    @property
    def started(self) -> bool:
        """A message has gone out: before that, nothing is said about lift."""
        return self.treatment.reached > 0

    @property
    def state(self) -> str | None:
        return self.lift.state if self.lift and self.started else None

    @property
    def summary(self) -> str:
        return results_summary(self)


def campaign_results(campaign: Campaign) -> Results:
    """Every figure of a campaign, in five aggregate queries whatever its size."""
    from notifications.models import Delivery, DeliveryStatus

    outcome = campaign_outcomes(campaigns=[campaign])[campaign.pk]
    went_out = Delivery.objects.filter(
        send_id=OuterRef("pk"), status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED]
    )
    counted = CampaignSend.objects.filter(campaign_id=campaign.pk).exclude(outcome__in=NOT_COUNTED)
    arms = {arm: ArmFigures(arm) for arm in Arm.values}
    for row in (
        counted.annotate(reached=Exists(went_out))
        .order_by()
        .values("arm")
        .annotate(
            reached_n=Count("pk", filter=Q(reached=True)), opened_n=Count("pk", filter=Q(opened_at__isnull=False))
        )
    ):
        arms[row["arm"]].reached, arms[row["arm"]].opened = row["reached_n"], row["opened_n"]
    for arm, o in outcome.items():
        arms[arm].members, arms[arm].sends, arms[arm].won, arms[arm].revenue = o.members, o.sends, o.won, o.revenue
        arms[arm].waiting = o.waiting

    def combine(name: str, parts: list[ArmFigures]) -> ArmFigures:
        return ArmFigures(
            name,
            sum(p.members for p in parts),
            sum(p.sends for p in parts),
            sum(p.reached for p in parts),
            sum(p.opened for p in parts),
            sum(p.won for p in parts),
            sum((p.revenue for p in parts), Decimal("0")),
            sum(p.waiting for p in parts),
        )

    treatment = combine("treatment", [arms[Arm.A], arms[Arm.B]])
    total = combine("all", list(arms.values()))

    sends = attributed_sends(campaign).annotate(reached=Exists(went_out))
    by_night = list(
        sends.order_by()
        .values("local_date")
        .annotate(
            sends=Count("pk", filter=~Q(arm=Arm.CONTROL)),
            control=Count("pk", filter=Q(arm=Arm.CONTROL)),
            reached=Count("pk", filter=Q(reached=True)),
            won=Count("pk", filter=Q(won=True) & ~Q(arm=Arm.CONTROL)),
            revenue=Sum("revenue", filter=~Q(arm=Arm.CONTROL)),
        )
        .order_by("local_date")
    )
    deliveries: dict[str, dict[str, int]] = {}
    for row in (
        Delivery.objects.filter(campaign_id=campaign.pk).values("channel", "status").annotate(n=Count("pk")).order_by()
    ):
        deliveries.setdefault(row["channel"], {})[row["status"]] = row["n"]
    credited = [RewardKind.BONUS_STAMPS, RewardKind.BONUS_POINTS]
    rewards = WalletReward.objects.filter(send__campaign_id=campaign.pk).aggregate(
        offered=Count("pk"),
        claimed=Count("pk", filter=Q(claimed_at__isnull=False)),
        redeemed=Count("pk", filter=Q(status=RewardStatus.REDEEMED) & ~Q(kind__in=credited)),
        credited=Count("pk", filter=Q(status=RewardStatus.REDEEMED, kind__in=credited)),
        expired=Count("pk", filter=Q(status=RewardStatus.EXPIRED)),
    )

    def against(b: ArmFigures, a: ArmFigures) -> Comparison:
        return compare(won_b=b.won, n_b=b.members, won_a=a.won, n_a=a.members, revenue_b=b.revenue)

    a, b, control = arms[Arm.A], arms[Arm.B], arms[Arm.CONTROL]
    ab = against(b, a) if campaign.ab_enabled or b.members else None
    lift, lift_by_arm = None, {}
    if campaign.control_share or control.members:
        lift = against(treatment, control)
        if ab is not None:
            lift_by_arm = {"a": against(a, control), "b": against(b, control)}
    return Results(campaign, arms, total, treatment, by_night, deliveries, rewards, ab, lift, lift_by_arm,
                   channels=list(campaign.channels))  # fmt: skip


# --- the plain sentence --------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> str:
    """``MYR 1,254``: whole units in sentences (the figures and the export keep the cents)."""
    whole = Decimal(amount).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return f"{currency} {whole:,}".strip()


def _percent(won: int, n: int) -> str:
    return f"{round(100 * won / n) if n else 0}\u00a0%"  # (no line break before the sign)


def _members_between(low: float, high: float) -> str:
    """ "between 22 and 56 more", "between 3 and 10 fewer", "between 3 fewer and 16 more"."""
    lo, hi = round(low), round(high)
    if lo >= 0:
        return f"between {lo} and {hi} more"
    if hi <= 0:
        return f"between {-hi} and {-lo} fewer"
    return f"between {-lo} fewer and {hi} more"


def chance(probability: float | None) -> str:
    """A posterior probability as people say it: never "100 %" nor "0 %" from a sample."""
    if probability is None:
        return "not known yet"
    if probability > 0.99:
        return "over 99\u00a0%"
    if probability < 0.01:
        return "under 1\u00a0%"
    return f"{round(100 * probability)}\u00a0%"


def _about_members(x: float) -> str:
    n = round(x)
    return f"about {n} more" if n > 0 else f"about {-n} fewer" if n < 0 else "about none"


def _money_signed(amount: Decimal, currency: str) -> str:
    return f"{money(abs(amount), currency)} {'less' if amount < 0 else 'more'}"


def _money_between(low: Decimal, high: Decimal, currency: str) -> str:
    if low >= 0:
        return f"between {money(low, currency)} and {money(high, currency)} more"
    if high <= 0:
        return f"between {money(-high, currency)} and {money(-low, currency)} less"
    return f"between {money(-low, currency)} less and {money(high, currency)} more"


def _points(x: float) -> str:
    return f"{100 * x:+.1f} points".replace("-", "−")


def comparison_rows(results: Results) -> list[dict]:
    """The disclosure's detail, one block per comparison, in words and the business's currency."""
    currency = results.campaign.business.currency
    rows = []
    named = [("lift", "The campaign against the control group", results.lift, "messaged", "held back", "the campaign")]
    named += [(f"lift-{arm}", f"Variant {arm.upper()} against the control group", c, f"sent {arm.upper()}",
               "held back", f"variant {arm.upper()}") for arm, c in results.lift_by_arm.items()]  # fmt: skip
    named += [("ab", "Variant B against variant A", results.ab, "sent B", "sent A", "variant B")]
    for key, title, c, b, a, who in named:
        if c is None:
            continue
        rows.append({
            "key": key, "title": title, "c": c, "b": b, "a": a, "who": who,
            "rate_a": _percent(c.won_a, c.n_a), "rate_b": _percent(c.won_b, c.n_b),
            "difference": _points(c.difference), "interval": f"{_points(c.ci_low)} to {_points(c.ci_high)}",
            "chance": chance(c.probability), "extra": _about_members(c.incremental),
            "extra_range": _members_between(c.incremental_low, c.incremental_high),
            "worth": _money_signed(c.incremental_revenue, currency),
            "worth_range": _money_between(c.incremental_revenue_low, c.incremental_revenue_high, currency),
        })  # fmt: skip
    return rows


def results_summary(results: Results) -> str:
    """The one sentence a café owner reads first: who came back, against whom, and what the
    campaign probably brought — worded by the state, never claiming more than the interval."""
    campaign, t = results.campaign, results.treatment
    currency = campaign.business.currency
    days = campaign.attribution_days
    if not results.started:
        if t.members:
            return ngettext(
                "%(n)d member has been picked; nothing has gone out yet, so there is nothing to measure.",
                "%(n)d members have been picked; nothing has gone out yet, so there is nothing to measure.",
                t.members,
            ) % {"n": t.members}
        return "Nothing has gone out yet: results appear after the first messages are sent."
    first = ngettext(
        "%(won)d of %(n)d member picked for a message came back within %(days)d days (%(rate)s)",
        "%(won)d of %(n)d members picked for a message came back within %(days)d days (%(rate)s)",
        t.members,
    ) % {"won": t.won, "n": t.members, "days": days, "rate": _percent(t.won, t.members)}
    waiting = t.waiting + results.arms[Arm.CONTROL].waiting
    still = (
        " "
        + ngettext(
            "For %(n)d member picked in the last %(days)d days the window is still open, so these figures can still grow.",
            "For %(n)d members picked in the last %(days)d days the window is still open, so these figures can still grow.",
            waiting,
        )
        % {"n": waiting, "days": days}
        if waiting
        else ""
    )
    lift = results.lift
    if lift is None:
        return f"{first}. Without a control group there is no telling how many would have come back anyway.{still}"
    c = results.arms[Arm.CONTROL]
    held = ngettext(
        "of the %(n)d held back, %(won)d came back (%(rate)s)",
        "of the %(n)d held back, %(won)d came back (%(rate)s)",
        c.members,
    ) % {"n": c.members, "won": c.won, "rate": _percent(c.won, c.members)}
    opening = f"{first}; {held}.{still}"
    extra = round(lift.incremental)
    worth = money(lift.incremental_revenue, currency)
    if lift.state == COLLECTING:
        if lift.needed_a or lift.needed_b:
            parts = []
            if lift.needed_a:
                parts.append(ngettext("%(n)d more member held back", "%(n)d more members held back",
                                      lift.needed_a) % {"n": lift.needed_a})  # fmt: skip
            if lift.needed_b:
                parts.append(ngettext("%(n)d more member messaged", "%(n)d more members messaged",
                                      lift.needed_b) % {"n": lift.needed_b})  # fmt: skip
            need = " and ".join(parts)
        else:
            need = ngettext("%(n)d more member to come back", "%(n)d more members to come back",
                            lift.needed_returns) % {"n": lift.needed_returns}  # fmt: skip
        return f"{opening} Too early to say what the campaign brought: that needs at least {need}."
    if lift.state == AHEAD:
        return f"{opening} " + ngettext(
            "The campaign probably brought back about %(n)d extra customer (%(range)s than without it), worth about %(worth)s.",
            "The campaign probably brought back about %(n)d extra customers (%(range)s than without it), worth about %(worth)s.",
            extra,
        ) % {"n": extra, "range": _members_between(lift.incremental_low, lift.incremental_high), "worth": worth}
    if lift.state == BEHIND:
        fewer = -extra
        return f"{opening} " + ngettext(
            "Fewer came back than without the campaign: about %(n)d member fewer (%(range)s). Try another message or reward.",
            "Fewer came back than without the campaign: about %(n)d members fewer (%(range)s). Try another message or reward.",
            fewer,
        ) % {"n": fewer, "range": _members_between(lift.incremental_low, lift.incremental_high)}
    return (
        f"{opening} The difference could still be chance: the campaign brought back "
        f"{_members_between(lift.incremental_low, lift.incremental_high)} members than would have come back without it."
    )


def campaign_sends_export(campaign: Campaign) -> QuerySet:
    """Rows for the CSV export: one per send with its outcome and attribution."""
    return (
        attributed_sends(campaign)
        .select_related("member")
        .annotate(deliveries_sent=Count("deliveries", filter=Q(deliveries__status__in=["sent", "delivered", "opened"])))
        .order_by("local_date", "member_id")
    )


# --- the dashboard -------------------------------------------------------------------------------


def business_dashboard(*, business, now: datetime) -> dict:
    """Members, active / lapsing / lapsed by threshold, this month's messages by channel (SMS and
    WhatsApp billable: a bill is monthly), and wins and revenue from the campaigns' sends of the
    last 30 days (a rolling window: on the 1st of a month "this month" would show nothing won)."""
    from members.models import Member, MemberStatus
    from notifications.models import Delivery, DeliveryStatus

    from .engine import local_day_start

    tz = business.tzinfo
    today = now.astimezone(tz).date()

    def since(days: int) -> datetime:
        return local_day_start(today - timedelta(days=days - 1), tz)

    members = Member.objects.filter(status=MemberStatus.ACTIVE).aggregate(
        total=Count("pk"),
        never=Count("pk", filter=Q(last_purchase_at__isnull=True)),
        active=Count("pk", filter=Q(last_purchase_at__gte=since(14))),
        d14=Count("pk", filter=Q(last_purchase_at__lt=since(14), last_purchase_at__gte=since(30))),
        d30=Count("pk", filter=Q(last_purchase_at__lt=since(30), last_purchase_at__gte=since(60))),
        d60=Count("pk", filter=Q(last_purchase_at__lt=since(60), last_purchase_at__gte=since(90))),
        d90=Count("pk", filter=Q(last_purchase_at__lt=since(90))),
    )
    month_start = local_day_start(date(today.year, today.month, 1), tz)
    out = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED]
    messages = dict(
        Delivery.objects.filter(sent_at__gte=month_start, status__in=out)
        .values("channel")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("channel", "n")
    )
    campaigns = list(
        Campaign.objects.filter(business=business).exclude(status="draft").only("pk", "status", "attribution_days")
    )
    # Won back, last 30 days (a "this month" figure reads 0 on the 1st): members messaged since
    # then who came back, by the campaigns' one definition, each member and purchase once.
    wins_since = since(30)
    won = won_back_total(campaigns=campaigns, since=wins_since) if campaigns else ArmOutcome()
    wins, revenue = won.won, won.revenue
    return {
        "members": members,
        # Not "messages": that name is Django's flash messages in every template's context.
        "sent_by_channel": messages,
        "billable": messages.get("sms", 0) + messages.get("whatsapp", 0),
        "wins": wins,
        "revenue": revenue,
        "month_start": month_start,
        "wins_since": wins_since,
        "active_campaigns": sum(1 for c in campaigns if c.status == "active") if campaigns else 0,
    }
