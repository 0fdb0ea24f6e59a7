"""The campaign page's results and charts in headless Chromium, against the API's figures."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.models import CampaignSend
from notifications.models import Delivery
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.conftest import campaign_make, member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_campaign_page_draws_its_charts_and_shows_the_apis_numbers(page, live_server, owner, business):
    campaign = campaign_make(business, ab_enabled=True, variant_b_title="B", variant_b_body="B", control_share=20)
    now = timezone.now()
    plan = [("a", 3, True), ("a", 3, False), ("b", 2, True), ("b", 2, True), ("control", 3, False), ("a", 1, True)]
    for i, (arm, nights_ago, wins) in enumerate(plan):
        m = member_make(business, first_name=f"R{i}", phone="+60123456789")
        visit_make(m, at=now - timedelta(days=60))
        created = now - timedelta(days=nights_ago)
        with scope(business=business.pk):
            send = CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=1,
                                               arm=arm, local_date=created.date(), created_at=created,
                                               outcome="control" if arm == "control" else "sent")  # fmt: skip
            if arm != "control":
                Delivery.objects.create(business=business, send=send, campaign=campaign, member=m, channel="sms",
                                        status="sent", scheduled_at=created, sent_at=created, created_at=created,
                                        updated_at=created)  # fmt: skip
        if wins:
            visit_make(m, at=created + timedelta(hours=5), amount=Decimal("12.00"))
    sign_in(page, live_server, owner.username)

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")

    api = page.request.get(f"{live_server.url}/api/v1/campaigns/{campaign.pk}/results/").json()
    expect(page.locator("#r-won")).to_have_text(str(api["treatment"]["won"]))
    expect(page.locator("#r-sent")).to_have_text(str(api["treatment"]["reached"]))
    expect(page.locator("#r-revenue")).to_have_text(api["treatment"]["revenue"])
    assert api["treatment"]["won"] == 4 and api["arms"][2]["sends"] == 1
    expect(page.locator("#summary")).to_have_text(api["summary"])
    for chart in ("chart-nights", "chart-funnel", "chart-arms"):
        locator = page.locator(f"#{chart}")
        expect(locator).to_be_visible()
        assert locator.bounding_box()["height"] > 60
        ARTIFACTS.mkdir(exist_ok=True)
        locator.screenshot(path=str(ARTIFACTS / f"results-{chart}.png"))
    assert page.locator("#chart-nights svg rect").count() >= 3
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "results-phone.png"), full_page=True)
