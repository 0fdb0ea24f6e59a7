"""Results that prove the money: attribution, per-arm figures, lift with significance.

A send counts as **won back** when its member makes a purchase within the campaign's attribution
window after the send's night (``created_at``, the evaluation instant); control hold-outs are
measured the same way from the night they were held out, so both arms share one clock. Revenue is
the amount of those purchases. Everything is computed by aggregate queries over the ledger as it
stands, so backdated or imported purchases count as soon as they are recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from members.models import RewardKind, RewardStatus, Visit, VisitKind, WalletReward

from .models import NOT_COUNTED, Arm, Campaign, CampaignSend, SendOutcome

Z95 = 1.959963984540054


def attributed_sends(campaign: Campaign) -> QuerySet:
    """The campaign's sends (control included, capped and cancelled not), each annotated with
    ``won`` and ``revenue`` from purchases inside the attribution window."""
    window_end = ExpressionWrapper(
        OuterRef("created_at") + Value(timedelta(days=campaign.attribution_days)), output_field=DateTimeField()
    )
    purchases = Visit.objects.filter(
        member_id=OuterRef("member_id"),
        kind=VisitKind.PURCHASE,
        occurred_at__gt=OuterRef("created_at"),
        occurred_at__lte=window_end,
    )
    revenue = purchases.order_by().values("member_id").annotate(total=Sum("amount")).values("total")
    money = DecimalField(max_digits=14, decimal_places=2)
    return (
        CampaignSend.objects.filter(campaign_id=campaign.pk)
        .exclude(outcome__in=NOT_COUNTED)
        .annotate(
            won=Exists(purchases),
            revenue=Coalesce(Subquery(revenue, output_field=money), Value(Decimal("0")), output_field=money),
        )
    )


@dataclass
class ArmFigures:
    arm: str
    members: int = 0
    sends: int = 0
    reached: int = 0  # sends with at least one delivery that went out (treatment only)
    opened: int = 0
    won: int = 0
    revenue: Decimal = Decimal("0")

    @property
    def win_rate(self) -> float:
        return self.won / self.sends if self.sends else 0.0

    @property
    def open_rate(self) -> float:
        return self.opened / self.reached if self.reached else 0.0


@dataclass
class Comparison:
    """The difference of two win-back rates (b − a) with a 95 % Wald interval and the two-sided
    p-value of the pooled two-proportion z-test."""

    label_a: str
    label_b: str
    rate_a: float
    rate_b: float
    n_a: int
    n_b: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float | None

    @property
    def sentence(self) -> str:
        if self.n_a == 0 or self.n_b == 0:
            return f"Not enough data yet to compare {self.label_b} with {self.label_a}."
        points = abs(self.difference) * 100
        more = "more" if self.difference >= 0 else "fewer"
        chance = (
            "this is unlikely to be chance"
            if self.p_value is not None and self.p_value < 0.05
            else "this could still be chance"
        )
        return f"{self.label_b} brought back {points:.1f} points {more} members than {self.label_a}; {chance}."


def two_proportions(*, won_a: int, n_a: int, won_b: int, n_b: int, label_a: str, label_b: str) -> Comparison:
    rate_a = won_a / n_a if n_a else 0.0
    rate_b = won_b / n_b if n_b else 0.0
    difference = rate_b - rate_a
    if not n_a or not n_b:
        return Comparison(label_a, label_b, rate_a, rate_b, n_a, n_b, difference, 0.0, 0.0, None)
    se = math.sqrt(rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b)
    pooled = (won_a + won_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_pooled == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        z = difference / se_pooled
        p_value = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(label_a, label_b, rate_a, rate_b, n_a, n_b, difference, difference - Z95 * se,
                      difference + Z95 * se, p_value)  # fmt: skip


@dataclass
class Results:
    campaign: Campaign
    arms: dict[str, ArmFigures]
    total: ArmFigures
    treatment: ArmFigures
    by_night: list[dict]
    deliveries: dict[str, dict[str, int]]
    rewards: dict[str, int]
    ab: Comparison | None
    lift: Comparison | None
    channels: list[str] = field(default_factory=list)

    def funnel(self) -> list[tuple[str, int]]:
        return [("Sent", self.treatment.reached), ("Opened", self.treatment.opened), ("Won back", self.treatment.won)]


def campaign_results(campaign: Campaign) -> Results:
    """Every figure of a campaign, in five aggregate queries whatever its size."""
    from notifications.models import Delivery, DeliveryStatus

    went_out = Delivery.objects.filter(
        send_id=OuterRef("pk"), status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED]
    )
    sends = attributed_sends(campaign).annotate(reached=Exists(went_out))
    arms = {arm: ArmFigures(arm) for arm in Arm.values}
    for row in (
        sends.order_by()
        .values("arm")
        .annotate(
            members=Count("member_id", distinct=True),
            n=Count("pk"),
            reached_n=Count("pk", filter=Q(reached=True)),
            opened_n=Count("pk", filter=Q(opened_at__isnull=False)),
            won_n=Count("pk", filter=Q(won=True)),
            revenue_sum=Sum("revenue"),
        )
    ):
        arms[row["arm"]] = ArmFigures(
            row["arm"], row["members"], row["n"], row["reached_n"], row["opened_n"], row["won_n"],
            row["revenue_sum"] or Decimal("0"),
        )  # fmt: skip

    def combine(name: str, parts: list[ArmFigures]) -> ArmFigures:
        return ArmFigures(
            name,
            sum(p.members for p in parts),
            sum(p.sends for p in parts),
            sum(p.reached for p in parts),
            sum(p.opened for p in parts),
            sum(p.won for p in parts),
            sum((p.revenue for p in parts), Decimal("0")),
        )

    treatment = combine("treatment", [arms[Arm.A], arms[Arm.B]])
    total = combine("all", list(arms.values()))
    total.members = sends.values("member_id").distinct().count()

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
    ab = None
    if campaign.ab_enabled or arms[Arm.B].sends:
        a, b = arms[Arm.A], arms[Arm.B]
        ab = two_proportions(won_a=a.won, n_a=a.sends, won_b=b.won, n_b=b.sends, label_a="A", label_b="B")
    lift = None
    if campaign.control_share or arms[Arm.CONTROL].sends:
        c = arms[Arm.CONTROL]
        lift = two_proportions(won_a=c.won, n_a=c.sends, won_b=treatment.won, n_b=treatment.sends,
                               label_a="the control group", label_b="The campaign")  # fmt: skip
    return Results(campaign, arms, total, treatment, by_night, deliveries, rewards, ab, lift,
                   channels=list(campaign.channels))  # fmt: skip


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
    wins_since = since(30)
    wins, revenue = 0, Decimal("0")
    for days in sorted({c.attribution_days for c in campaigns}):
        ids = [c.pk for c in campaigns if c.attribution_days == days]
        window_end = ExpressionWrapper(
            OuterRef("created_at") + Value(timedelta(days=days)), output_field=DateTimeField()
        )
        purchases = Visit.objects.filter(member_id=OuterRef("member_id"), kind=VisitKind.PURCHASE,
                                         occurred_at__gt=OuterRef("created_at"), occurred_at__lte=window_end)  # fmt: skip
        money = DecimalField(max_digits=14, decimal_places=2)
        total = purchases.order_by().values("member_id").annotate(t=Sum("amount")).values("t")
        row = (
            CampaignSend.objects.filter(campaign_id__in=ids, created_at__gte=wins_since, outcome=SendOutcome.SENT)
            .annotate(
                won=Exists(purchases),
                rev=Coalesce(Subquery(total, output_field=money), Value(Decimal("0")), output_field=money),
            )  # fmt: skip
            .aggregate(wins=Count("pk", filter=Q(won=True)), revenue=Sum(F("rev")))
        )
        wins += row["wins"] or 0
        revenue += row["revenue"] or Decimal("0")
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
