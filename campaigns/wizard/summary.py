"""The wizard's read-only pages and pieces: the next night's audience as a funnel, the review
step's context and its summary of the campaign."""

from __future__ import annotations

from datetime import timedelta

from django.template.defaultfilters import pluralize
from django.utils import timezone

from .. import engine
from ..messages import Texts, message_render, reward_words
from ..models import Campaign, ChannelMode
from ..rules import CONDITIONS
from ..sms import sms_size, sms_text, unicode_forcing
from .forms import CHANNEL_LABELS


def next_night(business) -> object:
    """The local date the next evaluation will run for: tonight's midnight."""
    return timezone.localdate(timezone.now(), business.tzinfo) + timedelta(days=1)


def _audience(campaign: Campaign) -> engine.Audience:
    return engine.campaign_audience(campaign, local_date=next_night(campaign.business), limit=0)


# What a member lacks to be reached on a channel.
CONTACT_WORDS = {"push": "no push subscription", "sms": "no phone number", "whatsapp": "no phone number",
                 "email": "no email address"}  # fmt: skip


def funnel_display(funnel: engine.Funnel) -> dict:
    """The funnel for the wizard's pages: each stage with its count and, for the unreachable, the
    reasons by channel in words; and when nobody is messaged, why."""
    steps = []
    for step in funnel.steps():
        reasons = [
            (CHANNEL_LABELS[ch], [(n, word) for n, word in ((r["no_contact"], CONTACT_WORDS[ch]),
                                                             (r["no_consent"], "no consent")) if n])
            for ch, r in step["reasons"].items()
        ]  # fmt: skip
        steps.append({**step, "reasons": reasons})
    why = ""
    if funnel.messaged == 0:
        if not funnel.lapsed:
            why = f"No member has gone {funnel.inactivity_days} days without a purchase."
        else:
            biggest = max(steps, key=lambda s: s["count"])
            why = (f"Nobody is messaged tonight. The main reason: {biggest['count']} of {funnel.lapsed} lapsed "
                   f"member{pluralize(funnel.lapsed)} {biggest['label']}.")  # fmt: skip
    return {"steps": steps, "why": why, "no_channels": not funnel.channels}


def _review_context(campaign: Campaign) -> dict:
    night = next_night(campaign.business)
    audience = engine.campaign_audience(campaign, local_date=night, limit=5)
    sample = audience.members[0] if audience.members else None
    from notifications.budget import spend_this_month, unit_price

    # The SMS as the sample member would get it, with a short link as long as a real one.
    first = message_render(Texts(title=campaign.title, body=campaign.body,
                                 reward=reward_words(campaign.reward, currency=campaign.business.currency)),
                           first_name=sample.first_name if sample else "Wei Lin", business=campaign.business.name,
                           days_away=30)  # fmt: skip
    sms = sms_text(title=first.title, body=first.body, url=_sample_link())
    size = sms_size(sms)
    segments = size.segments
    # Messaged members only: the control group gets nothing, so it costs nothing. A month: the
    # night 30 days on, as the members are today (tonight's and those lapsing by then).
    reach = audience.funnel.reach
    month_reach = {}
    if set(campaign.channels) & {"sms", "whatsapp"}:
        month_funnel, _ = engine.campaign_funnel(campaign, local_date=night + timedelta(days=30))
        month_reach = month_funnel.reach
    business = campaign.business
    estimates = []
    for channel, per_member, note in (("sms", segments, f"{segments} segment{pluralize(segments)} each"),
                                      ("whatsapp", 1, "one template message each")):  # fmt: skip
        if channel not in campaign.channels:
            continue
        price = unit_price(business=business, channel=channel)
        tonight, month = reach.get(channel, 0) * per_member, month_reach.get(channel, 0) * per_member
        estimates.append({"name": CHANNEL_LABELS[channel], "key": channel, "members": reach.get(channel, 0),
                          "messages": tonight, "cost": tonight * price, "month_messages": month,
                          "month_cost": month * price, "note": note, "price": price})  # fmt: skip
    spend = spend_this_month(business=business, now=timezone.now()) if estimates else None
    return {
        "audience": audience,
        "funnel": funnel_display(audience.funnel),
        "night": night,
        "estimates": estimates,
        "estimate_total": (sum(e["cost"] for e in estimates), sum(e["month_cost"] for e in estimates)),
        "sms_size": size if "sms" in campaign.channels else None,
        "unicode_chars": unicode_forcing(sms) if size.encoding == "Unicode" else [],
        "spend": spend,
        "sample": sample,
        "reward_text": reward_words(campaign.reward, currency=campaign.business.currency),
        "steps_summary": _summary(campaign),
    }


def _sample_link() -> str:
    """A short open link as long as a real one."""
    from notifications.dispatcher.compose import short_url
    from notifications.dispatcher.spend import short_code_new

    return short_url(short_code_new())


def _summary(campaign: Campaign) -> list[tuple[str, str, list[tuple[str, str]]]]:
    c = campaign
    rewards = []
    for n in range(1, c.max_sends + 1):
        rewards.append((f"Send {n}", reward_words(c.step(n)["reward"], currency=c.business.currency) or "No reward"))
    messages_ = [(f"Send {n} title", c.step(n)["title"] or "—") for n in range(1, c.max_sends + 1)]
    first = c.channel_mode == ChannelMode.FIRST_REACHABLE
    messages_.append(("Channels", (" → " if first else ", ").join(CHANNEL_LABELS[ch] for ch in c.channels) or "—"))
    if len(c.channels) > 1:
        messages_.append(("Send on", "the first channel that reaches them" if first else "every chosen channel"))
    conditions = [(CONDITIONS[k][0], "yes" if v is True else str(v)) for k, v in (c.conditions or {}).items()]
    pacing = ", ".join(
        f"{CHANNEL_LABELS[ch]} every {p.get('interval_seconds', 0)} s, cap {p.get('daily_cap') or 'none'}"
        for ch, p in (c.pacing or {}).items()
    )
    return [
        ("type", "Type", [("Type", c.get_type_display()), ("Name", c.name), ("Description", c.description or "—")]),
        ("trigger", "Trigger", [
            ("Inactive for", f"{c.inactivity_days} days"),
            ("Maximum sends", str(c.max_sends)),
            ("Send at", c.send_at.strftime("%H:%M")),
            ("Weekends", "included" if c.include_weekends else "moved to Monday"),
            ("Pacing", pacing or "no limits"),
        ]),
        ("reward", "Reward", rewards),
        ("message", "Message", messages_),
        ("conditions", "Conditions", conditions or [("Audience", "every inactive member")]),
        ("ab", "A/B test", [
            ("Variant B", f"{c.ab_share_b} % get “{c.variant_b_title}”" if c.ab_enabled else "off"),
            ("Control group", f"{c.control_share} %"),
        ]),
    ]  # fmt: skip


# --- live pieces (htmx) ---------------------------------------------------------------------------
