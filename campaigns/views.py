"""The campaigns list, the campaign page and the three-dot menu's actions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from notifications.models import DeliveryStatus
from winback.tenancy import OWNER_ROLES, role_required

from . import selectors, services
from .models import Campaign, CampaignStatus
from .rules import CONDITIONS, reward_title
from .wizard.forms import CHANNEL_LABELS

STATUS_FILTERS = [
    ("", "All"),
    ("active", "Active"),
    ("paused", "Paused"),
    ("draft", "Drafts"),
    ("archived", "Archived"),
]


@role_required(*OWNER_ROLES)
def campaign_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    campaigns = Campaign.objects.order_by("status", "-updated_at")
    if status in CampaignStatus.values:
        campaigns = campaigns.filter(status=status)
    else:
        campaigns = campaigns.exclude(status=CampaignStatus.ARCHIVED)
        status = ""
    campaigns = list(campaigns)
    figures = selectors.campaign_figures(campaign_ids=[c.pk for c in campaigns])
    cards = [
        {
            "campaign": c,
            "figures": figures.get(c.pk),
            "channels": ", ".join(CHANNEL_LABELS[ch] for ch in c.channels) or "no channel yet",
            "reward": reward_title(c.reward, currency=request.business.currency),
        }
        for c in campaigns
    ]
    return render(
        request, "campaigns/campaign_list.html", {"cards": cards, "status": status, "filters": STATUS_FILTERS}
    )


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("business"), pk=campaign_id)


@role_required(*OWNER_ROLES)
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    from notifications.models import Delivery

    campaign = _campaign(campaign_id)
    deliveries = (
        Delivery.objects.filter(campaign_id=campaign.pk).select_related("member").order_by("-scheduled_at", "-id")
    )
    status, channel = request.GET.get("status", ""), request.GET.get("channel", "")
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    if channel in CHANNEL_LABELS:
        deliveries = deliveries.filter(channel=channel)
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "figures": selectors.campaign_figures(campaign_ids=[campaign.pk]).get(campaign.pk),
            "runs": selectors.campaign_runs(campaign=campaign),
            "page": page,
            "statuses": DeliveryStatus.choices,
            "channels": CHANNEL_LABELS,
            "status": status,
            "channel": channel,
            "rewards": [
                (n, reward_title(campaign.step(n)["reward"], currency=campaign.business.currency) or "No reward")
                for n in range(1, campaign.max_sends + 1)
            ],
            "conditions": [(CONDITIONS[k][0], v) for k, v in (campaign.conditions or {}).items()],
            "channel_names": ", ".join(CHANNEL_LABELS[c] for c in campaign.channels),
        },
    )


@role_required(*OWNER_ROLES)
@require_POST
def campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    campaign = _campaign(campaign_id)
    if action == "pause":
        cancelled = services.campaign_pause(campaign=campaign)
        messages.success(request, f"“{campaign.name}” is paused. {cancelled} scheduled message(s) will not go out.")
    elif action == "resume":
        try:
            services.campaign_resume(campaign=campaign)
        except ValidationError as exc:  # a resumed campaign is validated again
            messages.error(request, "Cannot resume: " + " ".join(exc.messages))
        else:
            messages.success(request, f"“{campaign.name}” is running again. The next night decides who is due.")
    elif action == "duplicate":
        copy = services.campaign_duplicate(campaign=campaign, user=request.user)
        messages.success(request, f"Duplicated as the draft “{copy.name}”.")
        return redirect("campaigns:wizard-step", campaign_id=copy.pk, step="type")
    elif action == "archive":
        services.campaign_archive(campaign=campaign)
        messages.success(request, f"“{campaign.name}” is archived.")
    else:
        return HttpResponse(status=404)
    target = request.POST.get("next") or ""
    return redirect(target if target.startswith("/campaigns/") else "campaigns:campaign-list")
