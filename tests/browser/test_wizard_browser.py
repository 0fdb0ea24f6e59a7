"""The campaign wizard and the campaigns list in real headless Chromium, with screenshots."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.browser.conftest import sign_in
from tests.conftest import campaign_make, member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(business):
    business.channel_settings = {"sms": {"enabled": True}, "email": {"enabled": True}, "push": {"enabled": True}}
    business.frequency_cap_days = 0
    business.save()
    now = timezone.now()
    for i, days in enumerate((5, 16, 20, 33, 45, 61, 95, 200)):
        m = member_make(business, first_name=f"Lapsed{i}", phone="+60123456789", email=f"l{i}@example.com",
                        consents={"sms": True, "email": True})  # fmt: skip
        for k in range(1 + i % 3):
            visit_make(m, at=now - timedelta(days=days + 7 * k))
    return business


def latest():
    with scopes_disabled():
        return Campaign.objects.order_by("-pk").first()


def count(page) -> int:
    return int(page.locator("#audience-count").inner_text())


def test_an_owner_creates_a_campaign_through_all_seven_steps(page, live_server, owner, shop, shot):
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/")
    page.click("#new-campaign")
    page.fill("#id_name", "We miss you")
    page.fill("#id_description", "Lapsed for a month")
    shot("wizard-1-type")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Trigger")
    page.click("[data-preset='30']")
    page.locator("label.chip-radio", has_text="Up to 2 times").click()
    expect(page.locator("#audience-count")).to_have_text("5")
    shot("wizard-2-trigger")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Reward")
    page.locator("[data-panel='1'] label.choice", has_text="Bonus stamps").click()
    page.fill("#id_s1_count", "2")
    page.click("[data-tab='2']")
    page.uncheck("#id_s2_same")
    page.locator("[data-panel='2'] label.choice", has_text="Discount").click()
    page.fill("#id_s2_percent", "20")
    shot("wizard-3-reward")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Message")
    page.fill("#id_title", "We miss you, ")
    page.fill("#id_body", "Come back this week for ")
    page.locator("[data-panel='1'] [data-insert='{reward}']").click()
    page.fill("#id_title", "We miss you, {first_name}!")
    page.check("#channel-sms")
    page.check("#channel-email")
    expect(page.locator("#preview")).to_contain_text("We miss you, Lapsed")
    expect(page.locator("#sms-segments")).to_have_text("1")
    expect(page.locator("#channel-whatsapp")).to_be_disabled()
    shot("wizard-4-message")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Conditions")
    shot("wizard-5-conditions")
    page.click("#next")
    expect(page.locator(".stepper li.current")).to_contain_text("A/B")
    page.check("#id_ab_enabled")
    page.fill("#id_variant_b_title", "A gift for you, {first_name}")
    page.fill("#id_variant_b_body", "{reward} at {business}")
    page.fill("#id_control_share", "10")
    shot("wizard-6-ab")
    page.click("#next")

    expect(page.locator(".stepper li.current")).to_contain_text("Review")
    expect(page.locator("#funnel-lapsed")).to_have_text("5")
    # The control group (10 %, by member) is not counted as recipients, nor in the SMS estimate.
    held_out = page.locator("#funnel-control")
    control = int(held_out.inner_text().lstrip("−")) if held_out.count() else 0
    expect(page.locator("#review-audience")).to_have_text(str(5 - control))
    expect(page.locator("#estimate-sms")).to_have_text(str(5 - control))
    shot("wizard-7-review")
    page.click("#activate")

    expect(page.locator(".msg-success")).to_contain_text("Campaign activated")
    shot("campaign-page")
    c = latest()
    assert (c.status, c.inactivity_days, c.max_sends, c.channels) == ("active", 30, 2, ["sms", "email"])
    assert c.body == "Come back this week for {reward}" and c.reward["count"] == 2
    assert c.escalation[0]["reward"] == {"kind": "discount", "percent": 20, "expiry_days": 30}
    assert (c.ab_enabled, c.control_share) == (True, 10)


def test_validation_errors_show_beside_their_fields(page, live_server, owner, shop, shot):
    campaign = campaign_make(shop, status="draft", channels=[], title="", body="")
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/trigger/")

    for bad in ("0", "366"):
        page.fill("#id_inactivity_days", bad)
        page.click("#next")
        expect(page.locator(".field-error").first).to_contain_text("between 1 and 365")
    shot("wizard-error-threshold")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/message/")
    page.click("#next")
    expect(page.locator(".field-error", has_text="The title is required.")).to_be_visible()
    expect(page.locator(".field-error", has_text="Choose at least one channel.")).to_be_visible()
    shot("wizard-error-message")


def test_a_draft_is_saved_and_resumes_after_closing_the_page(page, live_server, owner, shop, browser):
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Half done")
    page.click("#next")
    page.fill("#id_inactivity_days", "45")
    page.click("#next")
    expect(page.locator(".stepper li.current")).to_contain_text("Reward")
    cookies = page.context.cookies()
    page.context.close()

    context = browser.new_context()
    context.add_cookies(cookies)
    again = context.new_page()
    again.goto(f"{live_server.url}/campaigns/?status=draft")
    again.click("text=Half done")

    expect(again.locator(".stepper li.current")).to_contain_text("Reward")
    again.click("#back")
    expect(again.locator("#id_inactivity_days")).to_have_value("45")
    context.close()


def test_the_live_count_follows_threshold_and_conditions_and_equals_the_dry_run(page, live_server, owner, shop, shot):
    campaign = campaign_make(shop, status="draft", channels=["sms"])
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/trigger/")

    expect(page.locator("#audience-count")).to_have_text("7")  # 14 days
    page.click("[data-preset='60']")
    expect(page.locator("#audience-count")).to_have_text("3")
    page.fill("#id_inactivity_days", "90")
    expect(page.locator("#audience-count")).to_have_text("2")
    page.click("[data-preset='30']")
    expect(page.locator("#audience-count")).to_have_text("5")
    page.click("#next")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/conditions/")
    page.select_option("#add-condition", "min_visits")
    page.click("#add-condition-button")
    page.fill("#id_min_visits", "2")
    expect(page.locator("#audience-count")).to_have_text("3")
    shown = count(page)
    shot("wizard-conditions-live-count")
    page.click("#next")

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/review/")
    page.click("#activate")
    expect(page.locator(".msg-success")).to_be_visible()
    with scope(business=shop.pk):
        Campaign.objects.filter(pk=campaign.pk).update(activated_at=timezone.now() - timedelta(days=1))
    tomorrow = (timezone.localdate(timezone.now(), shop.tzinfo) + timedelta(days=1)).isoformat()
    out = io.StringIO()
    call_command("run_winback", "--business", shop.slug, "--date", tomorrow, "--dry-run", stdout=out)
    assert re.search(rf"selected {shown}, would send {shown}", out.getvalue()), out.getvalue()


def test_pause_resume_and_duplicate_from_the_three_dot_menu(page, live_server, owner, shop, shot):
    campaign = campaign_make(shop, name="Monthly nudge")
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/")
    card = page.locator(f"[data-campaign='{campaign.pk}']")

    card.locator("summary").click()
    shot("campaigns-menu-open")
    card.locator("button", has_text="Pause").click()
    expect(page.locator(".msg-success")).to_contain_text("is paused")
    expect(card.locator(".badge")).to_have_text("Paused")
    card.locator("summary").click()
    card.locator("button", has_text="Resume").click()
    expect(page.locator(".msg-success")).to_contain_text("running again")
    expect(card.locator(".badge")).to_have_text("Active")
    card.locator("summary").click()
    card.locator("button", has_text="Duplicate").click()
    expect(page.locator(".msg-success")).to_contain_text("Monthly nudge (copy)")
    expect(page.locator("#id_name")).to_have_value("Monthly nudge (copy)")
    page.goto(f"{live_server.url}/campaigns/")
    shot("campaigns-list")


def test_the_wizard_is_usable_on_a_390px_phone(page, live_server, owner, shop, shot):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Phone made")
    for step in ("type", "trigger", "reward", "message", "conditions", "ab"):
        if step == "message":
            page.fill("#id_title", "Hi {first_name}")
            page.fill("#id_body", "Come back")
            page.check("#channel-email")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, step
        expect(page.locator("#next")).to_be_visible()
        shot(f"phone-wizard-{step}")
        page.click("#next")
    expect(page.locator(".stepper li.current")).to_contain_text("Review")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot("phone-wizard-review")
    page.click("#activate")
    expect(page.locator(".msg-success")).to_contain_text("Campaign activated")
    assert latest().status == "active"


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])  # fmt: skip
def test_the_audience_funnel_says_why_nobody_would_be_messaged(page, live_server, owner, shop, shot, viewport):
    """Picking a channel nobody can be reached on: 0 messaged, and the funnel says why."""
    page.set_viewport_size(viewport)
    size = "phone" if viewport["width"] < 500 else "desktop"
    campaign = campaign_make(shop, status="draft", inactivity_days=14, channels=["sms"], control_share=10)
    sign_in(page, live_server, owner.username)

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/message/")
    expect(page.locator("#funnel-lapsed")).to_have_text("7")  # (the member gone 5 days is not lapsed)
    assert count(page) > 0
    page.uncheck("#channel-sms")
    page.check("#channel-push")
    expect(page.locator("#audience-count")).to_have_text("0")
    expect(page.locator("#audience-why")).to_contain_text("not reachable on the chosen channels")
    expect(page.locator("#audience-funnel")).to_contain_text("Web push: 7 with no push subscription")
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(f"funnel-zero-messaged-{size}")

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/trigger/")
    page.fill("#id_inactivity_days", "400")
    expect(page.locator("#audience-error")).to_be_visible()
    expect(page.locator("#audience-count")).to_have_count(0)
    shot(f"funnel-invalid-days-{size}")


def test_preview_tonight_and_send_me_a_test_from_the_campaign_page(page, live_server, owner, shop, shot):
    campaign = campaign_make(shop, inactivity_days=14, channels=["sms", "email"], control_share=20)
    sign_in(page, live_server, owner.username)
    page.set_viewport_size({"width": 390, "height": 844})

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click("#send-me-a-test")
    expect(page.locator(".messages").first).to_contain_text("Test Email sent to owner@kopi.example")
    page.click("#preview-tonight")
    expect(page.locator("#tonight tbody tr")).to_have_count(7)
    expect(page.locator("#tonight")).to_contain_text("We miss you, Lapsed")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot("preview-tonight-phone")
