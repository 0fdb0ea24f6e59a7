"""What a member reads: the one home of a campaign message's texts (issue 14).

Every surface renders through here — the dispatcher, the inbox, the open-link page, the wizard's
preview, "send me a test" and the dry run's page — so they cannot disagree:

* ``campaign_content``: a campaign's texts per send number, with their fallbacks (an escalation
  step's empty title or body is send 1's; variant B replaces send 1's texts in arm B) and each
  step's reward in words (``reward_words``);
* ``campaign_messages_fix``: the night fixes that content in a ``CampaignMessage`` (a new row
  only when it changed) and each send it writes names it, so an edit takes effect from the next
  night (SPEC §4); ``message_texts`` reads a send's texts back (a send from before snapshots
  existed reads the campaign's current ones);
* ``days_away``: the one definition of ``{days_away}``: local dates (the business's) from the
  member's last purchase before the send (``purchase_before``) to the send's night;
* ``message_render``: the placeholders filled;
* ``OPEN_SALT``: the salt of the open link every message carries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.db.models import Case, DateTimeField, F, OuterRef, Subquery, When

from members.models import RewardKind

OPEN_SALT = "winback.open"
PLACEHOLDERS = ("{first_name}", "{business}", "{reward}", "{days_away}")
# The most sends a campaign can make to one member (max_sends is 1, 2 or 3).
MAX_SENDS = 3


def reward_words(reward: dict, *, currency: str = "") -> str:
    """A reward as members read it: “a free cup of coffee”, “2 bonus stamps”, “20% off”."""
    kind = (reward or {}).get("kind")
    if not kind:
        return ""
    if kind == RewardKind.FREE_ITEM:
        return f"a free {reward['item']}"
    if kind == RewardKind.BONUS_STAMPS:
        return f"{reward['count']} bonus stamp{'s' if reward['count'] != 1 else ''}"
    if kind == RewardKind.BONUS_POINTS:
        return f"{reward['count']} bonus points"
    if kind == RewardKind.DISCOUNT:
        if "percent" in reward:
            return f"{reward['percent']}% off"
        return f"{currency} {reward['amount']} off".strip()
    if kind == RewardKind.BADGE:
        return f"the “{reward['badge']}” badge"
    return ""


@dataclass(frozen=True)
class Texts:
    """A message before its placeholders are filled, and the words ``{reward}`` stands for."""

    title: str
    body: str
    reward: str


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    reward: str


# --- a campaign's content, and its snapshot ------------------------------------------------------


def campaign_content(campaign, *, steps: int | None = None) -> dict:
    """What ``campaign`` sends, as its snapshot stores it: ``steps`` (per send number from 1,
    ``{"title", "body", "reward"}`` with send 1's fallbacks applied, the reward in words) and
    send 1's texts in arm B (empty without an A/B test). ``steps``: how many (default: the
    campaign's max sends)."""
    currency = campaign.business.currency
    count = steps or max(campaign.max_sends or 1, 1)
    out = []
    for number in range(1, count + 1):
        step = campaign.step(number)
        out.append({"title": step["title"], "body": step["body"],
                    "reward": reward_words(step["reward"], currency=currency)})  # fmt: skip
    b_title = b_body = ""
    if campaign.ab_enabled:
        b_title, b_body = campaign.variant_b_title or campaign.title, campaign.variant_b_body or campaign.body
    return {"steps": out, "variant_b_title": b_title, "variant_b_body": b_body}


def content_digest(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def content_texts(content: dict, *, send_number: int, arm: str) -> Texts:
    """The texts of send ``send_number`` in ``arm``: variant B replaces send 1's in arm B."""
    steps = content["steps"]
    step = steps[send_number - 1] if 1 <= send_number <= len(steps) else steps[0]
    title, body = step["title"], step["body"]
    if arm == "b" and send_number == 1 and (content["variant_b_title"] or content["variant_b_body"]):
        title, body = content["variant_b_title"], content["variant_b_body"]
    return Texts(title=title, body=body, reward=step["reward"])


def message_texts(*, message, campaign, send_number: int, arm: str) -> Texts:
    """A send's texts: as its night fixed them in ``message`` (a ``CampaignMessage``), or, for a
    send written before snapshots existed (``message`` None), as ``campaign`` reads now."""
    if message is not None:
        content = {"steps": message.steps, "variant_b_title": message.variant_b_title,
                   "variant_b_body": message.variant_b_body}  # fmt: skip
    else:
        content = campaign_content(campaign, steps=MAX_SENDS)
    return content_texts(content, send_number=send_number, arm=arm)


def campaign_messages_fix(*, campaigns: list, now: datetime) -> dict[int, int]:
    """The snapshot (``CampaignMessage`` id) of each campaign's content as it is now, by campaign
    id: the existing row when the content is unchanged, a new one otherwise. One statement,
    whatever the number of campaigns and whether any changed: an upsert on (campaign, digest)
    whose no-op update returns the existing row's id too."""
    from .models import CampaignMessage

    if not campaigns:
        return {}
    rows = []
    for campaign in campaigns:
        content = campaign_content(campaign)
        rows.append(CampaignMessage(business_id=campaign.business_id, campaign_id=campaign.pk,
                                    digest=content_digest(content), created_at=now, **content))  # fmt: skip
    CampaignMessage.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["campaign", "digest"], update_fields=["digest"]
    )
    return {row.campaign_id: row.pk for row in rows}


# --- {days_away} -----------------------------------------------------------------------------------


def days_away(*, purchase_before: datetime | None, local_date: date, tz: tzinfo) -> int | None:
    """``{days_away}`` of a send: from the date (in ``tz``, the business's) of the member's last
    purchase before the send to the send's local date. Fixed at the night: a member who has
    returned since, or a delivery spilled to a later day, still reads the night's count."""
    if purchase_before is None:
        return None
    return (local_date - purchase_before.astimezone(tz).date()).days


def purchase_before(*, made: str = "created_at", member: str = "member"):
    """An expression for the member's last purchase before the send was made (``made``: the
    send's ``created_at``, from the queried model). The member's ``last_purchase_at`` when it is
    older (the usual case: not returned; it is kept right for backdated visits too), else the
    ledger's last purchase before that instant (one index probe, only for those who returned)."""
    from members.models import Visit, VisitKind

    last = f"{member}__last_purchase_at"
    ledger = (
        Visit.objects.filter(
            business_id=OuterRef("business_id"),
            member_id=OuterRef(f"{member}_id"),
            kind=VisitKind.PURCHASE,
            occurred_at__lt=OuterRef(made),
        )
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    return Case(
        When(**{f"{last}__lt": F(made)}, then=F(last)),
        default=Subquery(ledger),
        output_field=DateTimeField(),
    )


# --- the placeholders ------------------------------------------------------------------------------


def fill(text: str, *, first_name: str, business: str, reward: str, days_away: int | None) -> str:
    """Fill the placeholders; anything else in braces is left as written."""
    values = {
        "{first_name}": first_name or "there",
        "{business}": business,
        "{reward}": reward,
        "{days_away}": "" if days_away is None else str(days_away),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def message_render(texts: Texts, *, first_name: str, business: str, days_away: int | None) -> Rendered:
    """The message as the member reads it."""
    values = {"first_name": first_name, "business": business, "reward": texts.reward, "days_away": days_away}
    return Rendered(title=fill(texts.title, **values), body=fill(texts.body, **values), reward=texts.reward)


def send_render(send, *, campaign, business, purchase_before: datetime | None, first_name: str) -> Rendered:
    """A ``CampaignSend`` (its ``message`` loaded) of ``campaign`` as its member reads it;
    ``purchase_before``: the member's last purchase before it (``purchase_before()``). The
    dispatcher, reading plain rows, makes the same three calls."""
    texts = message_texts(message=send.message, campaign=campaign, send_number=send.send_number, arm=send.arm)
    away = days_away(purchase_before=purchase_before, local_date=send.local_date, tz=business.tzinfo)
    return message_render(texts, first_name=first_name, business=business.name, days_away=away)
