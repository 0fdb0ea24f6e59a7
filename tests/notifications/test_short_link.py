"""The short open link SMS and WhatsApp carry: ``SITE_URL/m/<code>``, stored on the send."""

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from campaigns.models import CampaignSend
from campaigns.sms import sms_size, sms_text
from members.models import WalletReward
from notifications import dispatcher
from notifications.channels import TransientSendError
from notifications.channels.recording import RecordingBackend
from notifications.models import Delivery, RecordedMessage
from tests.conftest import business_make, campaign_make, member_make

NOW = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)  # 11:00 in Kuala Lumpur: SMS may go out
SHORT = re.compile(r"^https://winback\.example/m/([A-Za-z0-9_-]{11})$")


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://winback.example"
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def shop(db):
    return business_make(name="Kopi Corner", channel_settings={"sms": {"enabled": True}, "whatsapp": {"enabled": True},
                                                              "email": {"enabled": True}})  # fmt: skip


def queued(
    business, *, channel="sms", title="We miss you, {first_name}!", body=None, reward=True, phone="+60123456789"
):
    """A send with one claimed delivery (and an offered reward), as the night and the claim leave it."""
    member = member_make(business, first_name="Wei", phone=phone, email="wei@example.com",
                         consents={"sms": True, "whatsapp": True, "email": True})  # fmt: skip
    body = body or "It's been 30 days. Come back to {business} this week for {reward} on us."
    campaign = campaign_make(business, channels=[channel], title=title, body=body,
                             reward={"kind": "free_item", "item": "latte", "expiry_days": 30} if reward else {})  # fmt: skip
    with scope(business=business.pk):
        send = CampaignSend.objects.create(business=business, campaign=campaign, member=member, send_number=1,
                                           local_date=NOW.date(), created_at=NOW)  # fmt: skip
        delivery = Delivery.objects.create(business=business, send=send, campaign=campaign, member=member,
                                           channel=channel, status="queued", scheduled_at=NOW, created_at=NOW,
                                           updated_at=NOW)  # fmt: skip
        if reward:
            WalletReward.objects.create(business=business, member=member, send=send, kind="free_item",
                                        title="a free latte", details={"kind": "free_item", "item": "latte"},
                                        status="offered", offered_at=NOW, expires_at=NOW + timedelta(days=30))  # fmt: skip
    return member, send, delivery


def send_now(business, ids, **kwargs):
    with scope(business=business.pk):
        return dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: NOW, **kwargs)


def recorded(business):
    with scope(business=business.pk):
        return list(RecordedMessage.objects.order_by("id"))


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_an_sms_carries_the_sends_short_link_stored_with_its_expiry(shop):
    _, send, delivery = queued(shop)

    assert send_now(shop, [delivery.pk]).sent == 1

    (message,) = recorded(shop)
    code = SHORT.match(message.payload["url"]).group(1)
    with scopes_disabled():
        send.refresh_from_db()
    assert send.short_code == code
    # the attribution window (14 days) plus the open link's margin (7 days), from the send
    assert send.short_expires_at == NOW + timedelta(days=14) + dispatcher.OPEN_LINK_MARGIN


def test_a_typical_gsm7_winback_sms_with_its_link_is_one_segment(shop):
    _, _, delivery = queued(shop)

    send_now(shop, [delivery.pk])

    (message,) = recorded(shop)
    text = sms_text(title=message.title, body=message.body, url=message.payload["url"])
    assert text == ("We miss you, Wei!\nIt's been 30 days. Come back to Kopi Corner this week for a free latte on "
                    f"us.\n{message.payload['url']}")  # fmt: skip
    size = sms_size(text)
    assert (size.encoding, size.segments) == ("GSM-7", 1) and size.units <= 160
    # the signed long link would have made it two
    long_text = sms_text(title=message.title, body=message.body, url=dispatcher.open_url(delivery.pk))
    assert sms_size(long_text).segments == 2


def test_whatsapp_carries_the_short_link_and_email_the_signed_one(shop):
    _, _, whatsapp = queued(shop, channel="whatsapp")
    _, _, email = queued(shop, channel="email")

    send_now(shop, [whatsapp.pk, email.pk])

    by_channel = {m.channel: m.payload["url"] for m in recorded(shop)}
    assert SHORT.match(by_channel["whatsapp"])
    assert by_channel["email"].startswith("https://winback.example/m/") and by_channel["email"].endswith("/")
    assert ":" in by_channel["email"]  # signed: payload:timestamp:signature


def test_a_retry_carries_the_same_short_link(shop):
    _, send, delivery = queued(shop)
    calls = []

    class Flaky(RecordingBackend):
        def send(self, message):
            calls.append(message.url)
            if len(calls) == 1:
                raise TransientSendError("busy")
            return super().send(message)

    send_now(shop, [delivery.pk], backends=lambda channel, business=None: Flaky(channel))
    with scopes_disabled():
        Delivery.objects.filter(pk=delivery.pk).update(status="queued")
    send_now(shop, [delivery.pk], backends=lambda channel, business=None: Flaky(channel))

    assert len(calls) == 2 and calls[0] == calls[1]
    with scopes_disabled():
        assert calls[0].endswith("/m/" + CampaignSend.objects.get(pk=send.pk).short_code)


def test_the_short_link_opens_the_message_and_only_its_post_claims(shop):
    _, send, delivery = queued(shop)
    send_now(shop, [delivery.pk])
    path = path_of(recorded(shop)[0].payload["url"])
    client = Client()

    page = client.get(path)
    assert page.status_code == 200
    assert "We miss you, Wei!" in page.content.decode()
    with scopes_disabled():
        assert WalletReward.objects.get(send=send).status == "offered"
        assert Delivery.objects.get(pk=delivery.pk).status == "opened"

    claimed = client.post(path)
    with scopes_disabled():
        reward = WalletReward.objects.get(send=send)
    assert claimed.status_code == 200 and reward.status == "available" and reward.code in claimed.content.decode()


def test_the_old_signed_long_link_still_works(shop):
    _, _, delivery = queued(shop)
    send_now(shop, [delivery.pk])

    page = Client().get(path_of(dispatcher.open_url(delivery.pk)))

    assert page.status_code == 200 and "We miss you, Wei!" in page.content.decode()


def test_random_codes_and_codes_of_sends_that_never_went_out_are_not_found(shop):
    _, send, delivery = queued(shop)
    send_now(shop, [delivery.pk])
    _, unsent, _ = queued(shop)
    with scopes_disabled():
        CampaignSend.objects.filter(pk=unsent.pk).update(short_code="AAAAAAAAAAA", short_expires_at=NOW + timedelta(1))

    client = Client()
    for _ in range(20):
        assert client.get(f"/m/{secrets.token_urlsafe(8)}").status_code == 404
    assert client.get("/m/AAAAAAAAAAA").status_code == 404  # its send has no delivery that went out


def test_the_short_link_expires_with_the_attribution_window_plus_the_margin(shop):
    _, _, delivery = queued(shop)
    send_now(shop, [delivery.pk])
    path = path_of(recorded(shop)[0].payload["url"])

    with time_machine.travel(NOW + timedelta(days=14) + dispatcher.OPEN_LINK_MARGIN - timedelta(minutes=1)):
        assert Client().get(path).status_code == 200
    with time_machine.travel(NOW + timedelta(days=14) + dispatcher.OPEN_LINK_MARGIN):
        assert Client().get(path).status_code == 410


def test_another_business_s_code_shows_only_its_own_message_and_claims_into_its_own_member(shop):
    other = business_make(name="Other Shop", channel_settings={"sms": {"enabled": True}})
    ours, our_send, our_delivery = queued(shop)
    theirs, their_send, their_delivery = queued(other)
    send_now(shop, [our_delivery.pk])
    send_now(other, [their_delivery.pk])
    their_path = path_of(recorded(other)[0].payload["url"])
    client = Client()
    client.get(path_of(recorded(shop)[0].payload["url"]))  # the browser has our message open too

    page = client.post(their_path)

    assert page.status_code == 200 and "Other Shop" in page.content.decode()
    with scopes_disabled():
        assert WalletReward.objects.get(send=their_send).member_id == theirs.pk
        assert WalletReward.objects.get(send=their_send).status == "available"
        # nothing of theirs reached our member's wallet, and our offer is untouched
        assert list(WalletReward.objects.filter(member=ours).values_list("send_id", "status")) == [
            (our_send.pk, "offered")
        ]
