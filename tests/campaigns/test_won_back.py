"""One "won back": the campaign page, the API, the CSV export, the list's card and the dashboard
read ``campaign_outcomes`` and agree, with a number of queries that does not grow with members."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from campaigns.models import CampaignSend
from notifications.models import Delivery
from tests.conftest import business_make, campaign_make, client_for, member_make, user_make, visit_make

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)


def _history(business, campaign, plan):
    """``plan``: [(arm, outcome, came back after hours or None)], all picked five days ago."""
    night = NOW - timedelta(days=5)
    for i, (arm, outcome, back_after) in enumerate(plan):
        m = member_make(business, first_name=f"M{i}", phone="+60123456789", consents={"sms": True})
        visit_make(m, at=night - timedelta(days=40), amount=Decimal("3.00"))
        with scope(business=business.pk):
            send = CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=1, arm=arm,
                                               local_date=night.date(), outcome=outcome, created_at=night)  # fmt: skip
            if outcome == "sent":
                Delivery.objects.create(business=business, send=send, campaign=campaign, member=m, channel="sms",
                                        status="sent", scheduled_at=night, sent_at=night, created_at=night,
                                        updated_at=night)  # fmt: skip
        if back_after is not None:
            visit_make(m, at=night + timedelta(hours=back_after), amount=Decimal("9.00"))


def _surfaces(client, campaign):
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    api = client.get(f"/api/v1/campaigns/{campaign.pk}/results/").json()
    export = list(csv.DictReader(io.StringIO(client.get(f"/campaigns/{campaign.pk}/export.csv").content.decode())))
    cards = client.get("/campaigns/").content.decode()
    dashboard = client.get("/dashboard/").content.decode()
    return page, api, export, cards, dashboard


def _card_came_back(cards: str, campaign) -> int:
    card = cards[cards.index(f'data-campaign="{campaign.pk}"') :]
    return int(re.search(r"Came back</dt><dd>(\d+)<", card).group(1))


def test_a_member_who_came_back_before_the_message_counts_the_same_on_every_surface(db):
    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, channels=["sms"], control_share=20, attribution_days=14)
    with time_machine.travel(NOW, tick=False):
        _history(business, campaign, [
            ("a", "sent", 30),       # messaged, came back
            ("a", "sent", None),     # messaged, did not
            ("a", "returned", 2),    # came back the morning before the message went out: counted as picked
            ("control", "control", 50),
            ("control", "control", None),
        ])  # fmt: skip
        owner = client_for(user_make("owner", business))
        page, api, export, cards, dashboard = _surfaces(owner, campaign)

    assert api["treatment"]["members"] == 3 and api["treatment"]["won"] == 2
    assert api["treatment"]["revenue"] == "18.00"
    assert 'id="r-won">2<' in page and 'id="r-revenue">18.00<' in page
    assert _card_came_back(cards, campaign) == 2
    assert 'id="d-wins">2<' in dashboard
    assert 'id="d-revenue">18.00 ' in dashboard
    treated_back = {r["card_code"] for r in export if r["arm"] != "control" and r["won_back"] == "yes"}
    assert len(treated_back) == 2
    assert api["summary"] in page.replace("&#x27;", "'")
    assert api["summary"].startswith(
        "2 of 3 members picked for a message came back within 14 days (67\u00a0%); of the 2 held back, 1 came back (50\u00a0%)."
    )


def test_a_member_counts_once_however_many_sends_brought_them_back(db):
    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, channels=["sms"], max_sends=2, attribution_days=14)
    m = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(NOW, tick=False):
        visit_make(m, at=NOW - timedelta(days=90))
        with scope(business=business.pk):
            for number, days_ago in ((1, 40), (2, 10)):
                created = NOW - timedelta(days=days_ago)
                CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=number,
                                            local_date=created.date(), outcome="sent", created_at=created)  # fmt: skip
                visit_make(m, at=created + timedelta(days=1), amount=Decimal("5.00"))
        api = client_for(user_make("owner", business)).get(f"/api/v1/campaigns/{campaign.pk}/results/").json()

    assert (api["treatment"]["members"], api["treatment"]["sends"], api["treatment"]["won"]) == (1, 2, 1)
    assert api["treatment"]["win_rate"] == 1.0


def test_a_purchase_inside_two_sends_windows_counts_once_in_the_revenue(db):
    """The second message went out before the first's window closed: the purchase after it is in
    both windows, and its amount is counted once (for the earlier send) on every surface."""
    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, channels=["sms"], max_sends=2, attribution_days=14)
    m = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(NOW, tick=False):
        visit_make(m, at=NOW - timedelta(days=90), amount=Decimal("3.00"))
        with scope(business=business.pk):
            for number, days_ago in ((1, 12), (2, 5)):
                created = NOW - timedelta(days=days_ago)
                CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=number,
                                            local_date=created.date(), outcome="sent", created_at=created)  # fmt: skip
        visit_make(m, at=NOW - timedelta(days=8), amount=Decimal("5.00"))  # inside send 1's window only
        visit_make(m, at=NOW - timedelta(days=2), amount=Decimal("7.00"))  # inside both windows
        owner = client_for(user_make("owner", business))
        page, api, export, cards, dashboard = _surfaces(owner, campaign)

    assert (api["treatment"]["members"], api["treatment"]["won"], api["treatment"]["revenue"]) == (1, 1, "12.00")
    assert 'id="r-revenue">12.00<' in page and 'id="d-revenue">12.00 ' in dashboard
    assert sum(Decimal(r["revenue"]) for r in export) == Decimal("12.00")


def test_the_dashboard_counts_a_member_and_a_purchase_once_when_two_campaigns_claim_them(db):
    business = business_make(timezone="UTC", frequency_cap_days=0)
    first = campaign_make(business, channels=["sms"], attribution_days=14)
    second = campaign_make(business, channels=["sms"], attribution_days=30, inactivity_days=30)
    m = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(NOW, tick=False):
        visit_make(m, at=NOW - timedelta(days=90), amount=Decimal("3.00"))
        with scope(business=business.pk):
            for campaign in (first, second):
                created = NOW - timedelta(days=6)
                CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=1,
                                            local_date=created.date(), outcome="sent", created_at=created)  # fmt: skip
        visit_make(m, at=NOW - timedelta(days=2), amount=Decimal("7.00"))
        dashboard = client_for(user_make("owner", business)).get("/dashboard/").content.decode()

    assert 'id="d-wins">1<' in dashboard and 'id="d-revenue">7.00 ' in dashboard


def _queries(client, campaign) -> dict[str, int]:
    counts = {}
    for name, url in (("page", f"/campaigns/{campaign.pk}/"), ("api", f"/api/v1/campaigns/{campaign.pk}/results/"),
                      ("export", f"/campaigns/{campaign.pk}/export.csv"), ("list", "/campaigns/"),
                      ("dashboard", "/dashboard/")):  # fmt: skip
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        counts[name] = len(ctx.captured_queries)
    return counts


def _measured(size: int) -> dict[str, int]:
    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, channels=["sms"], control_share=20, ab_enabled=True, variant_b_title="B",
                             variant_b_body="B")  # fmt: skip
    arms = ["a", "b", "control"]
    plan = [(arms[i % 3], "control" if arms[i % 3] == "control" else "sent", 5 if i % 2 else None) for i in range(size)]
    _history(business, campaign, plan)
    client = client_for(user_make("owner", business))
    client.get("/dashboard/")  # the session's first request warms its caches
    return _queries(client, campaign)


def test_no_results_surface_runs_a_query_per_member_or_send(db):
    with time_machine.travel(NOW, tick=False):
        small, large = _measured(3), _measured(40)
    assert small == large
    assert max(small.values()) <= 15, small
