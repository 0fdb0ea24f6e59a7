"""Who came back: a purchase inside a send's attribution window, the one definition, and the
counts per campaign and arm (``campaign_outcomes``) and across campaigns (``won_back_total``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

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

from members.models import Visit, VisitKind

from ..models import NOT_COUNTED, Arm, Campaign, CampaignSend


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
