"""Reads for the campaigns pages: key figures without a query per card."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q

from members.models import Member

from .models import NOT_COUNTED, Campaign, CampaignSend, EvaluationRun, SendOutcome


def campaign_figures(*, campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    """Sent, opened, scheduled and won back per campaign for the list's cards: two queries per
    distinct attribution window, whatever the number of campaigns. Won back is the campaign page's
    figure (``campaign_outcomes``), never counted again here."""
    from .results import campaign_outcomes, campaign_treatment

    rows = (
        CampaignSend.objects.filter(campaign_id__in=[c.pk for c in campaigns])
        .exclude(outcome__in=NOT_COUNTED)  # (every figure below is of counted sends: the index)
        .values("campaign_id")
        .annotate(
            sent=Count("pk", filter=Q(outcome=SendOutcome.SENT)),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            scheduled=Count("pk", filter=Q(outcome=SendOutcome.SCHEDULED)),
        )
        .order_by()
    )
    figures: dict[int, dict[str, int]] = {r["campaign_id"]: r for r in rows}
    for campaign_id, outcome in campaign_outcomes(campaigns=campaigns).items():
        if campaign_id in figures:
            figures[campaign_id]["won"] = campaign_treatment(outcome).won
    return figures


def campaign_runs(*, campaign: Campaign, runs: Iterable[EvaluationRun] | None = None, limit: int = 30) -> list[dict]:
    """Each night's run of this campaign (the latest ``limit``, newest first, or the given ``runs``):
    what the night *scheduled* (its stats: selected, capped, control, sends, deliveries, rewards)
    and, under ``went_out``, what its deliveries have done since: ``sent`` left us (sent, delivered
    or opened), ``delivered`` were confirmed delivered (or opened), ``opened`` were opened,
    ``waiting`` are still to go (scheduled, queued, sending), ``failed`` failed or went
    unconfirmed, ``not_sent`` were cancelled or skipped. Two queries whatever the number of runs."""
    from notifications.dispatcher import FAILED_ANY, PENDING_OR_SENDING, WENT_OUT
    from notifications.models import Delivery, DeliveryStatus

    key = str(campaign.pk)
    if runs is None:
        runs = EvaluationRun.objects.filter(stats__has_key=key).order_by("-local_date")[:limit]
    runs = list(runs)
    reached = (DeliveryStatus.DELIVERED, DeliveryStatus.OPENED)
    not_sent = (DeliveryStatus.CANCELLED, DeliveryStatus.SKIPPED)
    figures: dict[int, dict[str, int]] = {}
    if runs:
        rows = (
            Delivery.objects.filter(campaign_id=campaign.pk, send__run_id__in=[r.pk for r in runs])
            .values(run_id=F("send__run_id"))
            .annotate(
                sent=Count("pk", filter=Q(status__in=WENT_OUT)),
                delivered=Count("pk", filter=Q(status__in=reached)),
                opened=Count("pk", filter=Q(status=DeliveryStatus.OPENED)),
                waiting=Count("pk", filter=Q(status__in=PENDING_OR_SENDING)),
                failed=Count("pk", filter=Q(status__in=FAILED_ANY)),
                not_sent=Count("pk", filter=Q(status__in=not_sent)),
            )
            .order_by()
        )
        figures = {row.pop("run_id"): row for row in rows}
    nothing = dict.fromkeys(("sent", "delivered", "opened", "waiting", "failed", "not_sent"), 0)
    return [
        {
            "id": r.pk,
            "local_date": r.local_date,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "duration_ms": r.duration_ms,
            "stats": r.stats.get(key, {}),
            "went_out": figures.get(r.pk, nothing),
        }
        for r in runs
    ]


def campaign_tonight(*, campaign: Campaign, local_date, page: int = 1, per_page: int = 50) -> dict:
    """A page of the dry run of ``local_date`` for ``campaign``: each member lapsed for it, with
    the stage the funnel puts them in (messaged first, then those held back and why), and for the
    messaged their arm, channels and the title as they will read it. Writes nothing; five queries
    whatever the number of members."""
    from . import engine, messages
    from .wizard.forms import CHANNEL_LABELS

    business = campaign.business
    campaigns = engine.night_campaigns(campaign, local_date=local_date)
    funnel, _ = engine.campaign_funnel(campaign, local_date=local_date, campaigns=campaigns)
    pages = max(1, -(-funnel.lapsed // per_page))
    page = min(max(page, 1), pages)
    rows = engine.campaign_funnel_rows(campaign, local_date=local_date, offset=(page - 1) * per_page,
                                       limit=per_page, campaigns=campaigns)  # fmt: skip
    members = Member.objects.in_bulk([r["member_id"] for r in rows])
    labels = dict(engine.FUNNEL_STAGES)
    tz = business.tzinfo
    for r in rows:
        member = r["member"] = members[r["member_id"]]
        r["reason"] = labels.get(r["stage"], "")
        r["channel_names"] = ", ".join(CHANNEL_LABELS[ch] for ch in r["channels"])
        r["title"] = ""
        if r["stage"] == "messaged":
            texts = messages.message_texts(message=None, campaign=campaign, send_number=r["send_number"],
                                           arm=r["arm"])  # fmt: skip
            days_away = messages.days_away(purchase_before=member.last_purchase_at, local_date=local_date, tz=tz)
            r["title"] = messages.message_render(texts, first_name=member.first_name, business=business.name,
                                                 days_away=days_away).title  # fmt: skip
    return {"funnel": funnel, "rows": rows, "page": page, "pages": pages, "local_date": local_date}


def campaign_whatsapp_warning(*, campaign: Campaign) -> str:
    """One plain sentence when the campaign's WhatsApp template can no longer carry its WhatsApp
    messages (WhatsApp paused, rejected or disabled it, or it still waits for approval), else "".
    Reads ``campaign.whatsapp_template``: select it with the campaign."""
    from notifications.models import TemplateStatus

    template = campaign.whatsapp_template if campaign.whatsapp_template_id else None
    channels = list(campaign.channels or [])
    if template is None or "whatsapp" not in channels or template.status == TemplateStatus.APPROVED:
        return ""
    verdict = {
        TemplateStatus.PENDING: "is still waiting for WhatsApp's approval",
        TemplateStatus.REJECTED: "is rejected by WhatsApp",
        TemplateStatus.PAUSED: "is paused by WhatsApp",
        TemplateStatus.DISABLED: "is disabled (by WhatsApp, or no longer in your Twilio account)",
    }[template.status]
    after = channels[channels.index("whatsapp") + 1 :]
    outcome = (
        "WhatsApp messages will go on the next channel"
        if after
        else "WhatsApp messages will not go out until it is approved again"
    )
    return f"WhatsApp template '{template.name}' {verdict}: {outcome}."
