"""The campaigns list, the campaign page and the three-dot menu's actions."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from notifications.models import DeliveryStatus
from winback import csvsafe
from winback.tenancy import OWNER_ROLES, role_required

from . import charts, selectors, services, stats
from .engine import Audience
from .messages import reward_words
from .models import Campaign, CampaignStatus, ChannelMode
from .results import business_dashboard, campaign_results, campaign_sends_export, comparison_rows
from .rules import CONDITIONS
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
    campaigns = Campaign.objects.select_related("whatsapp_template").order_by("status", "-updated_at")
    if status in CampaignStatus.values:
        campaigns = campaigns.filter(status=status)
    else:
        campaigns = campaigns.exclude(status=CampaignStatus.ARCHIVED)
        status = ""
    campaigns = list(campaigns)
    figures = selectors.campaign_figures(campaigns=campaigns)
    cards = [
        {
            "campaign": c,
            "figures": figures.get(c.pk),
            "channels": ", ".join(CHANNEL_LABELS[ch] for ch in c.channels) or "no channel yet",
            "reward": reward_words(c.reward, currency=request.business.currency),
            "whatsapp_warning": selectors.campaign_whatsapp_warning(campaign=c),
        }
        for c in campaigns
    ]
    return render(
        request, "campaigns/campaign_list.html", {"cards": cards, "status": status, "filters": STATUS_FILTERS}
    )


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("business", "whatsapp_template"), pk=campaign_id)


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
    results = campaign_results(campaign)
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "whatsapp_warning": selectors.campaign_whatsapp_warning(campaign=campaign),
            "results": results,
            "charts": _charts(results),
            "runs": selectors.campaign_runs(campaign=campaign),
            "page": page,
            "statuses": DeliveryStatus.choices,
            "channels": CHANNEL_LABELS,
            "status": status,
            "channel": channel,
            "rewards": [
                (n, reward_words(campaign.step(n)["reward"], currency=campaign.business.currency) or "No reward")
                for n in range(1, campaign.max_sends + 1)
            ],
            "conditions": [(CONDITIONS[k][0], v) for k, v in (campaign.conditions or {}).items()],
            "channel_names": (" → " if campaign.channel_mode == ChannelMode.FIRST_REACHABLE else ", ").join(
                CHANNEL_LABELS[c] for c in campaign.channels
            ),
            "delivery_stats": _delivery_stats(results),
            "comparisons": comparison_rows(results),
            "stats_method": stats.METHOD,
            "min_members": stats.MIN_MEMBERS,
            "min_returns": stats.MIN_RETURNS,
        },
    )


def _delivery_stats(results) -> list[tuple[str, list[tuple[tuple[str, str], int]], str]]:
    """Deliveries by channel and status, named as people write them ("WhatsApp", "Delivered"),
    and how many of them fell back to the channel ("12 fell back to Email: 10 from SMS, 2 from
    WhatsApp"). Channels in the campaign's order, then any it no longer has."""
    labels = dict(DeliveryStatus.choices)
    order = {channel: i for i, channel in enumerate(results.channels)}
    rows = []
    for channel, statuses in sorted(results.deliveries.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])):
        label = CHANNEL_LABELS.get(channel, channel)
        came = results.fallbacks.get(channel, {})
        fell_back = ""
        if came:
            parts = ", ".join(
                f"{n:,} from {CHANNEL_LABELS.get(c, c)}"
                for c, n in sorted(came.items(), key=lambda kv: order.get(kv[0], 99))
            )
            fell_back = f"{sum(came.values()):,} fell back to {label}: {parts}"
        rows.append((label, [((st, labels.get(st, st)), n) for st, n in sorted(statuses.items())], fell_back))
    return rows


def _charts(results) -> dict:
    t = results.treatment
    ab = results.campaign.ab_enabled or results.arms["b"].members
    arms = [(label, f) for label, f in (("A" if ab else "Messaged", results.arms["a"]), ("B", results.arms["b"]),
                                        ("Held back", results.arms["control"])) if f.members]  # fmt: skip
    return {
        "nights": charts.bars_by_night(
            results.by_night,
            series=[
                ("reached", "sent", charts.BRAND),
                ("won", "came back", charts.GREEN),
                ("control", "held out", charts.GREY),
            ],
        ),  # fmt: skip
        "funnel": charts.horizontal_bars(
            [(label, n, f"{n:,}") for label, n in results.funnel()], max_value=max(t.reached, 1)
        ),  # fmt: skip
        "arms": charts.horizontal_bars(
            [(label, f.win_rate * 100, f"{f.win_rate:.0%} of {f.members:,}") for label, f in arms], max_value=100
        )
        if arms
        else "",
    }


@role_required(*OWNER_ROLES)
def campaign_export(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A CSV of every send with its outcome and attribution."""
    campaign = _campaign(campaign_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-sends.csv"'
    writer = csvsafe.writer(response)  # a member's name may be a formula: written as text
    writer.writerow(["night", "send_number", "arm", "outcome", "card_code", "first_name", "opened_at", "deliveries_sent",
                     "won_back", "revenue"])  # fmt: skip
    for send in campaign_sends_export(campaign).iterator(chunk_size=2000):
        writer.writerow([send.local_date, send.send_number, send.arm, send.outcome, send.member.card_code,
                         send.member.first_name, send.opened_at.isoformat() if send.opened_at else "",
                         send.deliveries_sent, "yes" if send.won else "no", send.revenue])  # fmt: skip
    return response


@role_required(*OWNER_ROLES)
def dashboard(request: HttpRequest) -> HttpResponse:
    data = business_dashboard(business=request.business, now=timezone.now())
    m = data["members"]
    lapse = charts.horizontal_bars(
        [("Active (< 14 days)", m["active"], f"{m['active']:,}"), ("14–29 days", m["d14"], f"{m['d14']:,}"),
         ("30–59 days", m["d30"], f"{m['d30']:,}"), ("60–89 days", m["d60"], f"{m['d60']:,}"),
         ("90+ days", m["d90"], f"{m['d90']:,}"), ("Never purchased", m["never"], f"{m['never']:,}")]
    )  # fmt: skip
    return render(request, "campaigns/dashboard.html", {**data, "lapse_chart": lapse, "labels": CHANNEL_LABELS})


@role_required(*OWNER_ROLES)
@require_POST
def campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    campaign = _campaign(campaign_id)
    if action == "pause":
        cancelled = services.campaign_pause(campaign=campaign)
        left = ngettext(
            "%(n)d scheduled message will not go out.", "%(n)d scheduled messages will not go out.", cancelled
        ) % {"n": cancelled}
        messages.success(request, f"“{campaign.name}” is paused. {left}")
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


# --- see it go out ---------------------------------------------------------------------------------


@role_required(*OWNER_ROLES)
@require_POST
def campaign_test_send(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """ "Send me a test": the campaign's message to the owner's own addresses; nothing counted."""
    campaign = _campaign(campaign_id)
    results = services.campaign_test_send(campaign=campaign, user=request.user, now=timezone.now())
    if not results:
        messages.error(
            request,
            "No test sent: none of this campaign's channels has an address of yours. Email goes to your login; "
            "for SMS, WhatsApp or web push, join your own card with your email address.",
        )
    for r in results:
        arm = f" (variant {r.arm.upper()})" if campaign.ab_enabled else ""
        if r.error:
            messages.error(request, f"{CHANNEL_LABELS[r.channel]}{arm} to {r.to}: the provider refused it: {r.error}")
        else:
            recorded = " — recorded, no provider credentials are set (Admin → Recorded messages)"
            messages.success(
                request,
                f"Test {CHANNEL_LABELS[r.channel]}{arm} sent to {r.to}{recorded if r.provider_id.startswith('rec-') else ''}.",
            )
    return redirect("campaigns:campaign-detail", campaign_id=campaign.pk)


@role_required(*OWNER_ROLES)
def campaign_tonight(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """ "Preview tonight": a page of the next night's dry run for this campaign; writes nothing."""
    from .wizard.summary import funnel_display, next_night

    campaign = _campaign(campaign_id)
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    tonight = selectors.campaign_tonight(campaign=campaign, local_date=next_night(campaign.business), page=page)
    return render(
        request,
        "campaigns/campaign_tonight.html",
        {
            "campaign": campaign,
            **tonight,
            "night": tonight["local_date"],
            "funnel_audience": Audience(count=tonight["funnel"].messaged, members=[], funnel=tonight["funnel"]),
            "funnel_view": funnel_display(tonight["funnel"]),
        },
    )
