"""Reads for the campaigns pages: key figures without a query per card."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, Value

from members.models import Visit, VisitKind

from .models import NOT_COUNTED, Campaign, CampaignSend, EvaluationRun, SendOutcome


def campaign_figures(*, campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    """Sent, opened and won back (within each campaign's attribution window) per campaign: one
    query per distinct attribution window, whatever the number of campaigns."""
    figures: dict[int, dict[str, int]] = {}
    for days in sorted({c.attribution_days for c in campaigns}):
        window_end = ExpressionWrapper(
            OuterRef("created_at") + Value(timedelta(days=days)), output_field=DateTimeField()
        )
        won = Visit.objects.filter(
            member_id=OuterRef("member_id"),
            kind=VisitKind.PURCHASE,
            occurred_at__gt=OuterRef("created_at"),
            occurred_at__lte=window_end,
        )
        rows = (
            CampaignSend.objects.filter(campaign_id__in=[c.pk for c in campaigns if c.attribution_days == days])
            .exclude(outcome__in=NOT_COUNTED)  # (every figure below is of counted sends: the index)
            .values("campaign_id")
            .annotate(
                sent=Count("pk", filter=Q(outcome=SendOutcome.SENT)),
                opened=Count("pk", filter=Q(opened_at__isnull=False)),
                won=Count("pk", filter=Q(outcome=SendOutcome.SENT) & Q(Exists(won))),
                scheduled=Count("pk", filter=Q(outcome=SendOutcome.SCHEDULED)),
            )
            .order_by()
        )
        figures.update({r["campaign_id"]: r for r in rows})
    return figures


def campaign_runs(*, campaign: Campaign, limit: int = 30) -> list[dict]:
    """Each night's run for this campaign, newest first: selected, capped, control, sends, deliveries."""
    key = str(campaign.pk)
    runs = EvaluationRun.objects.filter(stats__has_key=key).order_by("-local_date")[:limit]
    return [{"local_date": r.local_date, "finished_at": r.finished_at, **r.stats[key]} for r in runs]
