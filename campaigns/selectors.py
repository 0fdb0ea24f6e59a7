"""Reads for the campaigns pages: key figures without a query per card."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q

from members.models import Visit, VisitKind

from .models import Campaign, CampaignSend, EvaluationRun, SendOutcome


def campaign_figures(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Sent, opened and won back per campaign, in one query."""
    if not campaign_ids:
        return {}
    won = Visit.objects.filter(
        member_id=OuterRef("member_id"),
        kind=VisitKind.PURCHASE,
        occurred_at__gt=OuterRef("created_at"),
    )
    rows = (
        CampaignSend.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(
            sent=Count("pk", filter=Q(outcome=SendOutcome.SENT)),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            won=Count("pk", filter=Q(outcome=SendOutcome.SENT) & Q(Exists(won))),
            scheduled=Count("pk", filter=Q(outcome=SendOutcome.SCHEDULED)),
        )
    )
    return {r["campaign_id"]: r for r in rows}


def campaign_runs(*, campaign: Campaign, limit: int = 30) -> list[dict]:
    """Each night's run for this campaign, newest first: selected, capped, control, sends, deliveries."""
    key = str(campaign.pk)
    runs = EvaluationRun.objects.filter(stats__has_key=key).order_by("-local_date")[:limit]
    return [{"local_date": r.local_date, "finished_at": r.finished_at, **r.stats[key]} for r in runs]
