"""Composing each delivery's message: the texts of its step and arm, the placeholders filled, and
the open link (SMS and WhatsApp: the send's short link; push and email: the signed long one)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing

from ..channels import Message, PushTarget

OPEN_SALT = "winback.open"


def render(text: str, *, first_name: str, business: str, reward: str, days_away: int | None) -> str:
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


def message_texts(campaign, *, send_number: int, arm: str) -> tuple[str, str]:
    """The title and body (placeholders unfilled) a member of ``arm`` gets as send ``send_number``:
    variant B replaces send 1's texts in arm B."""
    step = campaign.step(send_number)
    title, body = step["title"], step["body"]
    if arm == "b" and send_number == 1 and campaign.ab_enabled:
        title, body = campaign.variant_b_title or title, campaign.variant_b_body or body
    return title, body


def short_url(code: str) -> str:
    """The short open link SMS and WhatsApp carry: ``SITE_URL/m/<code>``, no trailing slash."""
    return f"{settings.SITE_URL}/m/{code}"


def open_url(delivery_id: int) -> str:
    token = signing.dumps({"d": delivery_id}, salt=OPEN_SALT, compress=True)
    return f"{settings.SITE_URL}/m/{token}/"


# An open link works for the campaign's attribution window plus this margin, counted from the
# moment it was signed (the send): long enough for a late reader, not a bearer link forever.
OPEN_LINK_MARGIN = timedelta(days=7)


def open_link_expires_at(*, signed_at: datetime, attribution_days: int) -> datetime:
    return signed_at + timedelta(days=attribution_days) + OPEN_LINK_MARGIN


class _Composer:
    """Builds each delivery's message; what is shared by many members (a step's texts, a time
    zone's date, the signer) is worked out once per batch."""

    def __init__(self, *, now, campaigns, businesses, subscriptions, rewards):
        self.now = now
        self.campaigns = campaigns
        self.businesses = businesses
        self.subscriptions = subscriptions
        self.rewards = rewards
        self.texts: dict[tuple[int, int, str], tuple[str, str]] = {}
        self.today: dict[str, date] = {}
        self.signer = signing.TimestampSigner(salt=OPEN_SALT)
        self.site_url = settings.SITE_URL

    def _texts(self, campaign, send_number: int, arm: str) -> tuple[str, str]:
        key = (campaign.pk, send_number, arm)
        if key not in self.texts:
            self.texts[key] = message_texts(campaign, send_number=send_number, arm=arm)
        return self.texts[key]

    def message(self, row: dict) -> Message:
        campaign, business = self.campaigns[row["campaign_id"]], self.businesses[row["business_id"]]
        title, body = self._texts(campaign, row["send_number"], row["arm"])
        days_away = None
        if (last_purchase := row["last_purchase_at"]) is not None:
            tz_key = row["member_tz"] or business.timezone
            tz = ZoneInfo(tz_key)
            if tz_key not in self.today:
                self.today[tz_key] = self.now.astimezone(tz).date()
            days_away = (self.today[tz_key] - last_purchase.astimezone(tz).date()).days
        send_id, channel = row["send_id"], row["channel"]
        reward = self.rewards.get(send_id, "")
        values = {"first_name": row["first_name"], "business": business.name, "reward": reward,
                  "days_away": days_away}  # fmt: skip
        extra: dict = {"send_id": send_id, "campaign_id": campaign.pk, "reward": reward}
        targets: tuple[PushTarget, ...] = ()
        if channel == "push":
            targets = tuple(self.subscriptions.get(row["member_id"], ()))
            to = targets[0].endpoint if targets else ""
            extra["subscriptions"] = [t.id for t in targets]
        elif channel == "email":
            to = row["email"]
        else:
            to = row["phone"]
        if row.get("short_code") and channel in ("sms", "whatsapp"):
            url = f"{self.site_url}/m/{row['short_code']}"  # as short_url(): every character counts
        else:
            token = self.signer.sign_object({"d": row["id"]}, compress=True)  # as open_url(), signer reused
            url = f"{self.site_url}/m/{token}/"
        return Message(
            delivery_id=row["id"],
            business_id=row["business_id"],
            member_id=row["member_id"],
            channel=channel,
            to=to,
            title=render(title, **values),
            body=render(body, **values),
            url=url,
            extra=extra,
            subscriptions=targets,
        )
