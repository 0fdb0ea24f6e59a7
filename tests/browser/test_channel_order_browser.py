"""The message step's channel order and mode in real headless Chromium (issue 15), at desktop and
phone sizes, with the keyboard, and without JavaScript; the campaign page's fallbacks."""

from datetime import timedelta

import pytest
import time_machine
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from campaigns.models import Campaign
from notifications.channels import PermanentSendError
from notifications.channels.recording import RecordingBackend
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.conftest import campaign_make, member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def shop(business):
    business.channel_settings = {"sms": {"enabled": True}, "email": {"enabled": True}, "push": {"enabled": True}}
    business.frequency_cap_days = 0
    business.save()
    return business


def saved(campaign) -> Campaign:
    with scopes_disabled():
        return Campaign.objects.get(pk=campaign.pk)


def order(page) -> list[str]:
    return page.locator("[data-order-list] > li").evaluate_all("rows => rows.map(r => r.dataset.channel)")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_owner_orders_the_channels_with_the_arrows_and_the_keyboard(page, live_server, owner, shop, shot, viewport):
    page.set_viewport_size(viewport)
    campaign = campaign_make(shop, status="draft", channels=["sms", "email"])
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/message/")

    assert order(page) == ["sms", "email", "push"]
    expect(page.locator("[data-order-input]").first).to_be_hidden()  # with JavaScript: the arrows
    expect(page.get_by_role("button", name="Move SMS up")).to_be_disabled()
    expect(page.locator("#channel-mode-first")).to_be_checked()
    # the keyboard: Email up, from its own arrow
    page.get_by_role("button", name="Move Email up").focus()
    page.keyboard.press("Enter")
    assert order(page) == ["email", "sms", "push"]
    expect(page.locator("[data-order-status]")).to_have_text("Email moved to position 1.")
    expect(page.get_by_role("button", name="Move Email down")).to_be_focused()  # (up is disabled at the top)
    # the mouse: Web push up once, and chosen
    page.get_by_role("button", name="Move Web push up").click()
    page.check("#channel-push")
    assert order(page) == ["email", "push", "sms"]
    if viewport == PHONE:
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("fieldset.channels").scroll_into_view_if_needed()
    shot(f"channel-order-{'phone' if viewport == PHONE else 'desktop'}")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Conditions")
    c = saved(campaign)
    assert (c.channels, c.channel_mode) == (["email", "push", "sms"], "first_reachable")


def test_every_chosen_channel_is_one_click_away(page, live_server, owner, shop, shot):
    campaign = campaign_make(shop, status="draft", channels=["sms", "email"])
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/message/")

    page.locator("label.choice", has_text="Every chosen channel").click()
    shot("channel-mode-every")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Conditions")
    assert saved(campaign).channel_mode == "every"


def test_without_javascript_the_positions_order_the_channels(browser, live_server, owner, shop):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    campaign = campaign_make(shop, status="draft", channels=["sms", "email"])
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/message/")

    expect(page.get_by_role("button", name="Move Email up")).to_be_hidden()
    page.get_by_label("Email position").fill("1")
    page.get_by_label("SMS position").fill("2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "channel-order-no-js.png"), full_page=True)
    page.click("#next")

    assert saved(campaign).channels == ["email", "sms"]
    context.close()


def test_the_campaign_page_shows_how_many_fell_back_and_where(page, live_server, owner, shop, shot):
    from tests.campaigns.helpers import at_local, night
    from tests.notifications.test_channel_fallback import D
    from tests.notifications.test_dispatcher import run_dispatch

    campaign = campaign_make(shop, channels=["sms", "email"])
    members = []
    for i in range(3):
        m = member_make(shop, first_name=f"Lapsed{i}", phone="+60123456789", email=f"l{i}@example.com",
                        consents={"sms": True, "email": True})  # fmt: skip
        with time_machine.travel(at_local(shop, D, 0, 30), tick=False):
            visit_make(m, at=at_local(shop, D - timedelta(days=30), 12))
        members.append(m)
    night(shop, D)

    class Unsubscribed(RecordingBackend):
        def send(self, message):
            if message.channel == "sms" and message.member_id != members[0].pk:
                raise PermanentSendError("Twilio 21610: unsubscribed (the recipient replied STOP)", code="21610",
                                         action="withdraw_consent")  # fmt: skip
            return super().send(message)

    with scope(business=shop.pk):
        run_dispatch(at_local(shop, D, 9), backends=lambda channel, business=None: Unsubscribed(channel))

    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")

    expect(page.locator("#delivery-stats")).to_contain_text("2 fell back to Email: 2 from SMS")
    expect(page.locator("#deliveries")).to_contain_text("Fell back from SMS")
    page.locator("#delivery-stats").scroll_into_view_if_needed()
    shot("campaign-fallbacks")
