"""The seven-step campaign wizard: every step saves the draft server-side, Back keeps input."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from members.models import Member, MemberStatus
from winback.tenancy import OWNER_ROLES, role_required

from .. import engine, services
from ..messages import Texts, message_render, reward_words
from ..messages import days_away as days_away_of
from ..models import Campaign, CampaignStatus
from ..rules import CONDITIONS, conditions_clean
from ..sms import sms_size, sms_text
from .forms import CHANNEL_LABELS, PRESETS, STEP_NAMES, STEPS, ConditionsForm
from .summary import _audience, _review_context, _sample_link, funnel_display, next_night

STASH = "wizard_stash"


def _campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    # Scoped: another business's campaign is a 404.
    return get_object_or_404(
        Campaign.objects.select_related("business").exclude(status=CampaignStatus.ARCHIVED), pk=campaign_id
    )


def _form_class(step: str):
    for name, form_class in STEPS:
        if name == step:
            return form_class
    raise Http404("No such step.")


def _stash_key(campaign_id, step) -> str:
    return f"{campaign_id}:{step}"


@role_required(*OWNER_ROLES)
def wizard_new(request: HttpRequest) -> HttpResponse:
    """Step 1 for a campaign not yet saved; Next creates the draft."""
    draft = Campaign(business=request.business)
    form_class = _form_class("type")
    form = form_class(request.POST, campaign=draft) if request.method == "POST" else form_class(campaign=draft)
    if request.method == "POST" and form.is_valid():
        campaign = services.campaign_save(business=request.business, data=form.campaign_data(), user=request.user)
        Campaign.objects.filter(pk=campaign.pk).update(wizard_step="trigger")
        return redirect("campaigns:wizard-step", campaign_id=campaign.pk, step="trigger")
    return _render_step(request, draft, "type", form)


@role_required(*OWNER_ROLES)
def wizard_resume(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    step = campaign.wizard_step if campaign.wizard_step in STEP_NAMES else "type"
    if campaign.status != CampaignStatus.DRAFT:
        step = "type"  # editing a running campaign starts from the top
    return redirect("campaigns:wizard-step", campaign_id=campaign.pk, step=step)


@role_required(*OWNER_ROLES)
def wizard_step(request: HttpRequest, campaign_id: int, step: str) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form_class = _form_class(step)
    index = STEP_NAMES.index(step)
    stash = request.session.get(STASH, {})

    if request.method == "GET":
        if campaign.wizard_step != step:
            Campaign.objects.filter(pk=campaign.pk).update(wizard_step=step)
        stashed = stash.get(_stash_key(campaign.pk, step))
        form = form_class(stashed, campaign=campaign) if stashed else form_class(campaign=campaign)
        if stashed:
            form.is_valid()  # show what was wrong when the owner went back
        return _render_step(request, campaign, step, form)

    nav = request.POST.get("nav", "next")
    if step == "conditions" and (nav == "add" or nav.startswith("remove:")):
        return _conditions_edit(request, campaign, nav)
    form = form_class(request.POST, campaign=campaign)
    valid = form.is_valid()
    if valid:
        try:
            data = form.campaign_data()
            if data:
                services.campaign_save(business=request.business, campaign=campaign, data=data)
        except ValidationError as exc:
            valid = False
            campaign.refresh_from_db()
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    key = _stash_key(campaign.pk, step)
    if valid:
        stash.pop(key, None)
    elif nav == "back" or nav.startswith("goto:"):
        stash[key] = {
            k: request.POST.getlist(k) if len(request.POST.getlist(k)) > 1 else v for k, v in request.POST.items()
        }
    request.session[STASH] = stash

    if nav == "back" and index > 0:
        return redirect("campaigns:wizard-step", campaign_id=campaign.pk, step=STEP_NAMES[index - 1])
    if nav.startswith("goto:") and nav[5:] in STEP_NAMES:
        return redirect("campaigns:wizard-step", campaign_id=campaign.pk, step=nav[5:])
    if not valid:
        return _render_step(request, campaign, step, form, status=422)
    if step == "review":
        return _finish(request, campaign, nav)
    return redirect("campaigns:wizard-step", campaign_id=campaign.pk, step=STEP_NAMES[index + 1])


def _conditions_edit(request, campaign, nav):
    """Add or remove a condition row, keeping the other rows' input."""
    data = request.POST.copy()
    active = [n for n in data.get("active", "").split(",") if n in CONDITIONS]
    if nav == "add" and data.get("add_condition") in CONDITIONS and data["add_condition"] not in active:
        active.append(data["add_condition"])
    elif nav.startswith("remove:"):
        active = [n for n in active if n != nav[7:]]
        data.pop(nav[7:], None)
    data["active"] = ",".join(active)
    form = ConditionsForm(data, campaign=campaign)
    form.is_valid()
    form._errors = {}  # a row just added is not an error yet
    return _render_step(request, campaign, "conditions", form)


def _finish(request, campaign, nav):
    if nav == "activate":
        was_active = campaign.status == CampaignStatus.ACTIVE
        try:
            services.campaign_activate(campaign=campaign)
        except ValidationError as exc:
            campaign.refresh_from_db()
            form = _form_class("review")(campaign=campaign)
            return _render_step(request, campaign, "review", form, status=422, activation_errors=exc.message_dict)
        if was_active:
            messages.success(request, "Changes saved. They take effect from the next night.")
        else:
            messages.success(
                request, "Campaign activated. It starts checking members from the next midnight, then every night."
            )
        return redirect("campaigns:campaign-detail", campaign_id=campaign.pk)
    messages.success(request, f"Draft “{campaign.name}” saved. You can come back to it any time.")
    return redirect("campaigns:campaign-list")


STEP_TO_FIELDS = {
    "type": {"name", "type", "description"},
    "trigger": {"inactivity_days", "max_sends", "send_at", "include_weekends", "pacing"},
    "reward": {"reward", "escalation"},
    "message": {"title", "body", "channels", "channel_mode", "escalation"},
    "conditions": {"conditions"},
    "ab": {"ab_enabled", "variant_b_title", "variant_b_body", "ab_share_b", "control_share"},
}


def _render_step(request, campaign, step, form, *, status=200, activation_errors=None):
    index = STEP_NAMES.index(step)
    context = {
        "campaign": campaign,
        "step": step,
        "form": form,
        "steps": [(i + 1, name, form_class.title_text) for i, (name, form_class) in enumerate(STEPS)],
        "step_number": index + 1,
        "is_first": index == 0,
        "is_last": step == "review",
        "presets": PRESETS,
        "channel_labels": CHANNEL_LABELS,
        "enabled_channels": campaign.business.enabled_channels(),
        "send_numbers": list(range(2, (campaign.max_sends or 1) + 1)),
    }
    if step in ("trigger", "message", "conditions") and campaign.pk:
        context["night"] = next_night(campaign.business)
        if form.is_bound and "inactivity_days" in form.errors:
            context["audience_error"] = "Enter a whole number of days from 1 to 365."  # not the saved days' count
        else:
            context["audience"] = _audience(campaign)
            context["funnel"] = funnel_display(context["audience"].funnel)
    if step == "review":
        context.update(_review_context(campaign))
        if activation_errors:
            context["activation_errors"] = [
                (field, msgs, next((s for s, fields in STEP_TO_FIELDS.items() if field in fields), "type"))
                for field, msgs in activation_errors.items()
            ]
    return render(request, f"campaigns/wizard_{step}.html", context, status=status)


@role_required(*OWNER_ROLES)
@require_POST
def audience_count(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The live count for the trigger and conditions steps, from the values being edited."""
    campaign = _campaign(request, campaign_id)
    data = request.POST
    context = {"campaign": campaign, "night": next_night(campaign.business)}
    if "inactivity_days" in data:
        # A count for days the owner did not ask for would be stale: the field's error instead.
        raw = data["inactivity_days"].strip()
        days = int(raw) if raw.isascii() and raw.isdigit() else None
        if days is None or not 1 <= days <= 365:
            context["audience_error"] = "Enter a whole number of days from 1 to 365."
            return render(request, "campaigns/_audience.html", context)
        campaign.inactivity_days = days
    if data.get("max_sends") in ("1", "2", "3"):
        campaign.max_sends = int(data["max_sends"])
    if data.get("audience_step") == "message":
        enabled = campaign.business.enabled_channels()
        campaign.channels = [ch for ch in data.getlist("channels") if ch in enabled]
    if "active" in data:
        conditions = {}
        for name in [n for n in data.get("active", "").split(",") if n in CONDITIONS]:
            value = True if CONDITIONS[name][1] == "bool" else data.get(name)
            if value not in (None, ""):
                conditions[name] = value
        with contextlib.suppress(ValidationError):  # a half-typed rule keeps the saved conditions
            campaign.conditions = conditions_clean(conditions)
    audience = _audience(campaign)
    return render(request, "campaigns/_audience.html", {**context, "audience": audience,
                                                        "funnel": funnel_display(audience.funnel)})  # fmt: skip


def _send_number(raw: str | None, *, max_sends: int) -> int:
    # The preview pane re-posts the whole step form as it is typed: a missing, blank or stray
    # value previews send 1 (the pane swaps in whatever it gets; a 400 would leave it stale).
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= max(max_sends, 1) else 1


@role_required(*OWNER_ROLES)
@require_POST
def message_preview(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Each channel's message as a real member will see it, with lengths and SMS segments."""
    campaign = _campaign(request, campaign_id)
    n = _send_number(request.POST.get("send"), max_sends=campaign.max_sends)
    suffix = "" if n == 1 else f"_{n}"
    title = request.POST.get(f"title{suffix}") or campaign.title
    body = request.POST.get(f"body{suffix}") or campaign.body
    night = next_night(campaign.business)
    sample = engine.campaign_audience_queryset(campaign, local_date=night).order_by("-last_purchase_at").first()
    if sample is None:
        sample = (
            Member.objects.filter(status=MemberStatus.ACTIVE)
            .exclude(first_name="")
            .filter(~Q(last_purchase_at=None))
            .order_by("-last_purchase_at")
            .first()
        )
    # The texts being edited, rendered as the night's sends will be (``campaigns.messages``), for
    # the sample member on the next night.
    reward = reward_words(campaign.step(n)["reward"], currency=campaign.business.currency)
    days_away = days_away_of(purchase_before=sample.last_purchase_at if sample else None, local_date=night,
                             tz=campaign.business.tzinfo)  # fmt: skip
    rendered = message_render(Texts(title=title, body=body, reward=reward or "a reward"),
                              first_name=sample.first_name if sample else "Wei Lin", business=campaign.business.name,
                              days_away=days_away if days_away is not None else 30)  # fmt: skip
    t, b = rendered.title, rendered.body
    link = _sample_link()  # SMS and WhatsApp carry the short link
    sms = sms_text(title=t, body=b, url=link)
    size = sms_size(sms)
    channels = request.POST.getlist("channels") or campaign.channels
    return render(
        request,
        "campaigns/_preview.html",
        {
            "title": t,
            "body": b,
            "sms": sms,
            "size": size,
            "sample": sample,
            "channels": [c for c in ("push", "sms", "whatsapp", "email") if c in channels] or ["push"],
            "business": campaign.business,
            "title_len": len(title),
            "body_len": len(body),
            "link": link,
        },
    )
