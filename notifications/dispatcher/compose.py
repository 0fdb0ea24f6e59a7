"""Composing each delivery's message: the texts its send's night fixed, rendered by
``campaigns.messages`` as every other surface renders them, and the open link (SMS and WhatsApp:
the send's short link; push and email: the signed long one)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing

from campaigns import messages
from campaigns.messages import OPEN_SALT

from ..channels import Message, PushTarget


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
    """Builds each delivery's message; what is shared by many members (a step's texts, the
    signer) is worked out once per batch. The texts are those the send's night fixed
    (``campaigns.messages``), rendered as every other surface renders them."""

    def __init__(self, *, now, campaigns, businesses, subscriptions, snapshots):
        self.now = now
        self.campaigns = campaigns
        self.businesses = businesses
        self.subscriptions = subscriptions
        self.snapshots = snapshots
        self.texts: dict[tuple, messages.Texts] = {}
        self.signer = signing.TimestampSigner(salt=OPEN_SALT)
        self.site_url = settings.SITE_URL

    def _texts(self, campaign, row: dict) -> messages.Texts:
        key = (row["message_id"], campaign.pk, row["send_number"], row["arm"])
        if key not in self.texts:
            self.texts[key] = messages.message_texts(message=self.snapshots.get(row["message_id"]), campaign=campaign,
                                                      send_number=row["send_number"], arm=row["arm"])  # fmt: skip
        return self.texts[key]

    def message(self, row: dict) -> Message:
        campaign, business = self.campaigns[row["campaign_id"]], self.businesses[row["business_id"]]
        days_away = messages.days_away(purchase_before=row["purchase_before"], local_date=row["local_date"],
                                        tz=business.tzinfo)  # fmt: skip
        rendered = messages.message_render(self._texts(campaign, row), first_name=row["first_name"],
                                            business=business.name, days_away=days_away)  # fmt: skip
        send_id, channel = row["send_id"], row["channel"]
        extra: dict = {"send_id": send_id, "campaign_id": campaign.pk, "reward": rendered.reward}
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
            title=rendered.title,
            body=rendered.body,
            url=url,
            extra=extra,
            subscriptions=targets,
        )
