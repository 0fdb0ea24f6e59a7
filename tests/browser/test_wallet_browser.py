"""The member web wallet in headless Chromium: sign in with a one-time code, the card and a
reward, the service worker, and a push delivered through the DevTools protocol."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.models import CampaignSend
from members.models import WalletReward
from notifications.dispatcher import open_url
from notifications.models import Delivery, RecordedMessage
from tests.conftest import campaign_make, member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_signs_in_sees_card_and_reward_and_a_push_opens_the_message(page, live_server, business, shot,
                                                                             settings):  # fmt: skip
    settings.SITE_URL = live_server.url
    business.channel_settings = {"push": {"enabled": True}, "sms": {"enabled": True}}
    business.save()
    member = member_make(business, first_name="Wei", phone="+60123456789", consents={"sms": True, "push": True})
    for days in (40, 35, 30):
        visit_make(member, days_ago=days)
    campaign = campaign_make(business, channels=["sms"])
    now = timezone.now()
    with scope(business=business.pk):
        send = CampaignSend.objects.create(business=business, campaign=campaign, member=member, send_number=1,
                                           local_date=now.date(), outcome="sent", created_at=now)  # fmt: skip
        delivery = Delivery.objects.create(business=business, send=send, campaign=campaign, member=member,
                                           channel="sms", status="sent", scheduled_at=now, sent_at=now,
                                           created_at=now, updated_at=now)  # fmt: skip
        WalletReward.objects.create(business=business, member=member, send=send, kind="free_item",
                                    title="a free latte", details={"kind": "free_item", "item": "latte"},
                                    code="LATTE12345", status="available", offered_at=now, claimed_at=now,
                                    expires_at=now + timedelta(days=30))  # fmt: skip
    page.context.grant_permissions(["notifications"], origin=live_server.url)

    page.goto(f"{live_server.url}/w/{business.slug}/")
    page.fill("#identifier", "+60123456789")
    page.click("#send-code")
    expect(page.locator("#code-sent")).to_contain_text("+60123456789")
    with scope(business=business.pk):
        code = re.search(r"\b(\d{6})\b", RecordedMessage.objects.filter(to="+60123456789").latest("id").body).group(1)
    page.fill("#code", code)
    page.click("#sign-in-button")

    expect(page.locator("#stamps")).to_have_text("3")
    expect(page.locator("#rewards")).to_contain_text("a free latte")
    expect(page.locator("#rewards")).to_contain_text("LATTE12345")
    expect(page.locator("#inbox")).to_contain_text("We miss you, Wei!")
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    shot("wallet-card")

    page.evaluate("navigator.serviceWorker.ready")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):  # the registration event arrives asynchronously
        scoped = [r["registrationId"] for r in registrations if r["scopeURL"].endswith("/w/")]
        if scoped:
            break
        page.wait_for_timeout(100)
    registration_id = scoped[0]
    link = open_url(delivery.pk)
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": live_server.url, "registrationId": registration_id,
        "data": json.dumps({"title": "We miss you, Wei!", "body": "A latte is waiting", "url": link}),
    })  # fmt: skip

    page.wait_for_function(
        "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => n.length === 1)", polling=200
    )
    shown = page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => [n[0].title, n[0].body, n[0].data.url])"
    )
    assert shown == ["We miss you, Wei!", "A latte is waiting", link]
    # The worker runs its notificationclick handler: the open wallet window goes to the message link.
    page.evaluate("navigator.serviceWorker.controller.postMessage({type: 'click-latest-notification'})")
    page.wait_for_url(link)
    expect(page.locator("#message-title")).to_have_text("We miss you, Wei!")
    expect(page.locator("#reward-code")).to_have_text("LATTE12345")
    shot("wallet-message-opened")
