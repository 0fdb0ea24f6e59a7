"""The campaign page's results as an owner sees them, in headless Chromium at desktop and phone
size: before anything went out, after nights with a lift, and with a campaign behind its control.
The history is made by the real engine (nights) and dispatcher (sends); only the members' returns
are recorded by hand, as the counter would."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.models import CampaignSend
from notifications import dispatcher
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.campaigns.helpers import at_local, night
from tests.conftest import campaign_make, member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _dispatch(business, now):
    def enqueue(business_id, ids):
        with scope(business=business_id):
            dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: now)

    dispatcher.dispatch_due(now=now, enqueue=enqueue)


def _campaign_with_nights(business, *, members: int, back: dict[str, float], send: bool = True):
    """``members`` lapsed members over two nights twelve and eleven days ago, the campaign's
    messages sent the morning after each night, and then ``back[arm]`` of each arm coming back
    three days after their night."""
    today = timezone.localdate(timezone.now(), business.tzinfo)
    first = today - timedelta(days=12)
    campaign = campaign_make(business, name="Come back for coffee", channels=["sms"], control_share=20,
                             activated_at=at_local(business, first - timedelta(days=1), 12))  # fmt: skip
    for i in range(members):
        m = member_make(business, first_name=f"Guest{i}", phone="+60123456789", consents={"sms": True})
        # Half are due on the first night, half on the second (14 days without a purchase).
        visit_make(m, at=at_local(business, first - timedelta(days=20 if i % 2 else 13), 12))
    for day in (first, first + timedelta(days=1)):
        night(business, day)
        if send:
            _dispatch(business, at_local(business, day, 10))
    with scope(business=business.pk):
        picked = list(CampaignSend.objects.filter(campaign=campaign).select_related("member").order_by("member_id"))
    for arm, share in back.items():
        group = [s for s in picked if (s.arm == "control") == (arm == "control")]
        for s in group[: round(share * len(group))]:
            visit_make(s.member, at=at_local(business, s.local_date + timedelta(days=3), 15))
    return campaign


def _look(page, live_server, campaign, name: str):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    api = page.request.get(f"{live_server.url}/api/v1/campaigns/{campaign.pk}/results/").json()
    expect(page.locator("#summary")).to_have_text(api["summary"])
    if page.locator("#stats-detail").count():
        page.locator("#stats-detail summary").click()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#results").screenshot(path=str(ARTIFACTS / f"lift-{name}-desktop.png"))
    page.set_viewport_size(PHONE)
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392)"
        ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], wide
    page.locator("#results").screenshot(path=str(ARTIFACTS / f"lift-{name}-phone.png"))
    return api


def _background(page) -> str:
    return page.locator("#summary").evaluate("e => getComputedStyle(e).backgroundColor")


NEUTRAL = "rgb(248, 249, 251)"


def test_before_anything_went_out_the_page_says_so_and_nothing_about_lift(page, live_server, owner, business):
    campaign = _campaign_with_nights(business, members=40, back={}, send=False)
    sign_in(page, live_server, owner.username)

    api = _look(page, live_server, campaign, "before-send")

    assert api["state"] is None and api["treatment"]["reached"] == 0
    expect(page.locator("#summary")).to_contain_text("nothing has gone out yet")
    assert page.locator("#stats-detail").count() == 0 and page.locator("#chart-nights").count() == 0
    assert "lift" not in page.locator("#results").inner_text().lower()
    assert _background(page) == NEUTRAL


def test_after_nights_with_a_lift_the_sentence_says_how_many_extra_and_what_they_were_worth(
    page, live_server, owner, business
):
    campaign = _campaign_with_nights(business, members=160, back={"treatment": 0.4, "control": 0.06})
    sign_in(page, live_server, owner.username)

    api = _look(page, live_server, campaign, "ahead")

    lift = api["lift"]
    assert api["state"] == "ahead" and lift["ci_low"] > 0
    assert lift["n_a"] >= 20 and lift["n_b"] >= 20
    summary = page.locator("#summary").inner_text()
    assert f"The campaign probably brought back about {round(lift['incremental'])} extra customers" in summary
    assert "worth about MYR " in summary
    assert _background(page) == "rgb(236, 253, 243)"  # the success colour: the interval is above 0
    detail = page.locator("#stats-detail dl[data-row=lift]").inner_text()
    assert (
        f"{lift['won_b']} of {lift['n_b']} messaged" in detail
        and f"{lift['won_a']} of {lift['n_a']} held back" in detail
    )
    assert "over 99" in detail or f"{round(100 * lift['probability'])}" in detail
    expect(page.locator("#stats-detail")).to_contain_text("Newcombe")
    expect(page.locator("#delivery-stats")).to_contain_text("SMS")


def test_a_campaign_behind_its_control_says_fewer_came_back_in_no_success_colour(page, live_server, owner, business):
    campaign = _campaign_with_nights(business, members=160, back={"treatment": 0.05, "control": 0.4})
    sign_in(page, live_server, owner.username)

    api = _look(page, live_server, campaign, "behind")

    assert api["state"] == "behind" and api["lift"]["ci_high"] < 0
    expect(page.locator("#summary")).to_contain_text("Fewer came back than without the campaign")
    assert _background(page) == "rgb(255, 250, 235)"
