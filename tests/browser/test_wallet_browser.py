"""The member web wallet in headless Chromium: sign in with a one-time code, the card and a
reward, the service worker, and a push delivered through the DevTools protocol."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.models import CampaignSend
from members.models import ConsentEvent, Member, WalletReward
from notifications.dispatcher import open_url
from notifications.models import Delivery
from tests.conftest import campaign_make, member_make, sign_in_code_sent, visit_make

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
    code = sign_in_code_sent("+60123456789")
    page.fill("#code", code)
    page.click("#sign-in-button")

    expect(page.locator("#stamps")).to_have_text("3")
    expect(page.locator("#to-full")).to_have_text(f"{business.stamps_per_card - 3} more stamps to a full card.")
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

    # The push arrives asynchronously; wait_for_function would take the pending promise as truthy.
    for _ in range(100):
        shown = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(n => n.length === 1 ? [n[0].title, n[0].body, n[0].data.url] : null)"
        )
        if shown:
            break
        page.wait_for_timeout(100)
    assert shown == ["We miss you, Wei!", "A latte is waiting", link]
    # The worker runs its notificationclick handler: the open wallet window goes to the message link.
    page.evaluate("navigator.serviceWorker.controller.postMessage({type: 'click-latest-notification'})")
    page.wait_for_url(link)
    expect(page.locator("#message-title")).to_have_text("We miss you, Wei!")
    # The link's page shows a code only to the browser that asks with a POST (the link may be
    # anyone's): the member asks, and the code stays there on the next visit.
    expect(page.locator("#reward-code")).to_have_count(0)
    page.click("#show-code")
    expect(page.locator("#reward-code")).to_have_text("LATTE12345")
    page.goto(link)
    expect(page.locator("#reward-code")).to_have_text("LATTE12345")
    shot("wallet-message-opened")


def test_a_person_joins_in_the_wallet_gets_a_code_and_sees_their_card(page, live_server, business, shot, settings):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    business.channel_settings = {"push": {"enabled": True}, "sms": {"enabled": True}}
    business.save()

    page.goto(f"{live_server.url}/w/{business.slug}/")
    expect(page.locator("#go-join")).to_have_text("Join Kopi Corner")
    shot("wallet-sign-in")
    page.click("#go-join")
    expect(page.locator("#join-pane h1")).to_have_text("Join Kopi Corner")
    boxes = page.locator("#join-form input[type=checkbox]")
    assert boxes.count() == 4
    assert [boxes.nth(i).is_checked() for i in range(4)] == [False] * 4  # nothing pre-ticked
    shot("wallet-join-form")

    page.fill("#join-contact", "12345")
    page.click("#join-button")
    expect(page.locator('[data-fields="first_name"] .field-error')).to_have_text("Enter your first name.")
    expect(page.locator('[data-fields="phone email"] .field-error')).to_contain_text("not a valid phone number")
    expect(page.locator('[data-fields="last_name"] .field-error')).to_be_empty()
    shot("wallet-join-errors")

    page.fill("#join-first-name", "Aisyah")
    page.fill("#join-last-name", "Rahman")
    page.fill("#join-contact", "012-987 6543")
    assert page.locator("#consent-email").is_disabled()  # a phone cannot get emails
    page.check("#consent-sms")
    page.click("#join-button")
    expect(page.locator("#code-sent")).to_contain_text("We sent a code to 012-987 6543")
    shot("wallet-join-code")
    expect(page.locator('[data-fields="first_name"] .field-error')).to_be_empty()
    code = sign_in_code_sent("+60129876543")
    page.fill("#code", code)
    page.click("#sign-in-button")

    expect(page.locator("#member-name")).to_have_text("Hi Aisyah")
    expect(page.locator("#stamps")).to_have_text("0")
    expect(page.locator("#rewards")).to_contain_text("No rewards yet.")
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    with scope(business=business.pk):
        member = Member.objects.get(phone="+60129876543")
        events = list(ConsentEvent.objects.filter(member=member).values_list("channel", "granted", "source"))
    expect(page.locator("#card-code")).to_have_text(member.card_code)
    assert (member.first_name, member.last_name) == ("Aisyah", "Rahman")
    assert events == [("sms", True, "signup")]
    shot("wallet-joined-card")

    # The push key comes from the API: without a VAPID key pair, the wallet says push is not set up.
    page.click("#enable-push")
    expect(page.locator("#push-state")).to_have_text("Notifications are not set up for this program yet.")
