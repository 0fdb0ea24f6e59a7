"""A campaign's figures for its page, the API and the export: per arm, by night, deliveries,
rewards, and each comparison (B against A, the campaign against its control group)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from members.models import RewardKind, RewardStatus, WalletReward

from ..models import NOT_COUNTED, Arm, Campaign, CampaignSend
from ..stats import Comparison, compare
from .attribution import attributed_sends, campaign_outcomes
from .words import results_summary


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
    # Deliveries a permanent failure moved to a channel: {to channel: {from channel: n}}. Each is
    # one more delivery of a send counted once (``reached`` counts sends, not deliveries).
    fallbacks: dict[str, dict[str, int]] = field(default_factory=dict)

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
    fallbacks: dict[str, dict[str, int]] = {}
    for row in (
        Delivery.objects.filter(campaign_id=campaign.pk)
        .values("channel", "status", "fallback_from")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        statuses = deliveries.setdefault(row["channel"], {})
        statuses[row["status"]] = statuses.get(row["status"], 0) + row["n"]
        if row["fallback_from"]:
            came = fallbacks.setdefault(row["channel"], {})
            came[row["fallback_from"]] = came.get(row["fallback_from"], 0) + row["n"]
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
                   channels=list(campaign.channels), fallbacks=fallbacks)  # fmt: skip


def campaign_sends_export(campaign: Campaign) -> QuerySet:
    """Rows for the CSV export: one per send with its outcome and attribution."""
    return (
        attributed_sends(campaign)
        .select_related("member")
        .annotate(deliveries_sent=Count("deliveries", filter=Q(deliveries__status__in=["sent", "delivered", "opened"])))
        .order_by("local_date", "member_id")
    )
