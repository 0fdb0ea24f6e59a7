"""Every owner page and the counter on a phone (390 × 844) and the demo's dashboard on a desktop,
on the demo's own data: nothing wider than the screen, a top bar of one line."""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.models import Campaign
from campaigns.results import business_dashboard
from campaigns.wizard.forms import STEP_NAMES
from members.models import Business, Member
from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# The top bar holds one line (menu, brand, business): a wrapped or stretched one eats the screen.
TOPBAR_MAX = 72
WIDTH = "document.documentElement.scrollWidth"
TOPBAR = (
    "(() => { const bar = document.querySelector('.topbar'); return bar ? bar.getBoundingClientRect().height : 0 })()"
)


@pytest.fixture
def demo(settings):
    settings.DEMO_PASSWORD = "pw-Secret-123"
    call_command("seed_demo", stdout=io.StringIO())
    business = Business.objects.get(slug="demo")
    with scope(business=business.pk):
        yield business


def test_the_demo_dashboard_shows_members_won_back_on_a_desktop_and_a_phone(page, live_server, demo, shot):
    figures = business_dashboard(business=demo, now=datetime.now(UTC))
    assert figures["wins"] > 0
    sign_in(page, live_server, "owner@demo.example")

    for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto(f"{live_server.url}/dashboard/")
        expect(page.locator("#d-wins")).to_have_text(f"{figures['wins']:,}")
        expect(page.locator(".messages")).to_have_count(0)  # no stray banner
        assert page.evaluate(WIDTH) <= size["width"]
        shot(f"demo-dashboard-{name}")


def test_every_owner_page_and_the_counter_fit_a_phone(page, live_server, demo, shot):
    campaign = Campaign.objects.get(name="Long time no see (30 days)")
    member = Member.objects.filter(purchase_count__gt=5).order_by("pk").first()
    pages = {
        "dashboard": "/dashboard/",
        "campaigns": "/campaigns/",
        "campaign": f"/campaigns/{campaign.pk}/",
        **{f"wizard-{step}": f"/campaigns/{campaign.pk}/edit/{step}/" for step in STEP_NAMES},
        "wizard-new": "/campaigns/new/",
        "members": "/members/",
        "member": f"/members/{member.pk}/",
        "import": "/members/import/",
        "settings": "/settings/",
        "team": "/settings/team/",
        "stamp": "/stamp/",
        "stamp-card": f"/stamp/{member.pk}/",
    }
    page.set_viewport_size(PHONE)
    sign_in(page, live_server, "owner@demo.example")

    measured = {}
    for name, path in pages.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, (name, response.status)
        page.wait_for_load_state("networkidle")
        measured[name] = (page.evaluate(WIDTH), round(page.evaluate(TOPBAR)))
        shot(f"phone-{name}")

    # The counter as the staff see it (their menu is shorter, their pages few).
    page.context.clear_cookies()
    sign_in(page, live_server, "staff@demo.example")
    for name, path in (("staff-stamp", "/stamp/"), ("staff-stamp-card", f"/stamp/{member.pk}/")):
        page.goto(f"{live_server.url}{path}")
        measured[name] = (page.evaluate(WIDTH), round(page.evaluate(TOPBAR)))
        shot(f"phone-{name}")

    too_wide = {name: w for name, (w, _) in measured.items() if w > PHONE["width"]}
    too_tall = {name: h for name, (_, h) in measured.items() if not 0 < h <= TOPBAR_MAX}
    assert too_wide == {} and too_tall == {}, measured
