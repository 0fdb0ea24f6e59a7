"""Results checked against hand-computed values on a constructed history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django_scopes import scope

from campaigns.models import CampaignSend
from campaigns.results import business_dashboard, campaign_results
from notifications.models import Delivery
from tests.conftest import business_make, campaign_make, member_make, visit_make

T0 = datetime(2026, 3, 1, 16, 1, tzinfo=UTC)  # 00:01 on 2 March in Kuala Lumpur: the night's instant
NOW = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def history(db):
    business = business_make(timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)
    campaign = campaign_make(business, ab_enabled=True, variant_b_title="B", variant_b_body="B", control_share=20,
                             attribution_days=14)  # fmt: skip
    plan = {
        # name: (arm, [(purchase offset from T0, amount)], delivered, opened)
        "m1": ("a", [(timedelta(days=3), "20.00"), (timedelta(days=20), "50.00")], True, True),  # 2nd outside window
        "m2": ("a", [], True, False),
        "m3": ("b", [(timedelta(hours=1), "10.00"), (timedelta(days=13, hours=23), "5.00")], True, False),
        "m4": ("control", [(timedelta(days=5), "7.00")], False, False),
        "m5": ("control", [], False, False),  # its purchase is backdated below, recorded late
        "m6": ("b", [(timedelta(days=-1), "9.00")], True, False),  # bought the day before: not a win
    }
    members = {}
    with time_machine.travel(NOW, tick=False):
        for name, (arm, purchases, delivered, opened) in plan.items():
            m = member_make(business, first_name=name, phone="+60123456789", consents={"sms": True})
            visit_make(m, at=T0 - timedelta(days=40), amount=Decimal("3.00"))
            for offset, amount in purchases:
                visit_make(m, at=T0 + offset, amount=Decimal(amount))
            with scope(business=business.pk):
                send = CampaignSend.objects.create(
                    business=business, campaign=campaign, member=m, send_number=1, arm=arm, local_date=T0.date(),
                    outcome="control" if arm == "control" else "sent", created_at=T0,
                    opened_at=T0 + timedelta(hours=2) if opened else None,
                )  # fmt: skip
                if delivered:
                    Delivery.objects.create(business=business, send=send, campaign=campaign, member=m, channel="sms",
                                            status="opened" if opened else "sent", scheduled_at=T0, sent_at=T0,
                                            created_at=T0, updated_at=T0)  # fmt: skip
            members[name] = m
    return business, campaign, members


def results(campaign):
    with scope(business=campaign.business_id):
        return campaign_results(campaign)


def test_every_figure_matches_the_hand_computed_history(history):
    business, campaign, members = history
    # A purchase imported late, backdated to two days after the night: it counts.
    with time_machine.travel(NOW, tick=False):
        visit_make(members["m5"], at=T0 + timedelta(days=2), amount=Decimal("4.00"))

    r = results(campaign)

    a, b, control = r.arms["a"], r.arms["b"], r.arms["control"]
    assert (a.sends, a.reached, a.opened, a.won, a.revenue) == (2, 2, 1, 1, Decimal("20.00"))
    assert (b.sends, b.reached, b.opened, b.won, b.revenue) == (2, 2, 0, 1, Decimal("15.00"))
    assert (control.sends, control.reached, control.won, control.revenue) == (2, 0, 2, Decimal("11.00"))
    assert (r.treatment.sends, r.treatment.won, r.treatment.revenue) == (4, 2, Decimal("35.00"))
    assert r.total.members == 6
    assert r.funnel() == [("Sent", 4), ("Opened", 1), ("Came back", 2)]
    assert r.deliveries == {"sms": {"opened": 1, "sent": 3}}
    assert [(n["local_date"], n["sends"], n["control"], n["won"]) for n in r.by_night] == [(T0.date(), 4, 2, 2)]
    assert r.lift.rate_a == 1.0 and r.lift.rate_b == 0.5 and r.lift.difference == -0.5
    assert (r.lift.state, r.lift.needed_a, r.lift.needed_b, r.lift.needed_returns) == ("collecting", 18, 16, 1)
    assert r.ab.difference == 0.0 and r.ab.probability == pytest.approx(0.5)


def test_a_purchase_outside_the_window_is_not_a_win(history):
    _, campaign, members = history
    with time_machine.travel(NOW, tick=False):
        visit_make(members["m2"], at=T0 + timedelta(days=14, minutes=1), amount=Decimal("8.00"))  # just after
    r = results(campaign)
    assert r.arms["a"].won == 1


def test_a_purchase_on_the_last_instant_of_the_window_is_a_win(history):
    _, campaign, members = history
    with time_machine.travel(NOW, tick=False):
        visit_make(members["m2"], at=T0 + timedelta(days=14), amount=Decimal("8.00"))
    assert results(campaign).arms["a"].won == 2


def test_the_campaign_page_and_the_export_show_the_same_figures(history, client):
    business, campaign, members = history
    from tests.conftest import client_for, user_make

    owner = client_for(user_make("owner", business))
    page = owner.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="r-won">2<' in page and 'id="r-sent">4<' in page and 'id="r-revenue">35.00<' in page
    assert 'id="chart-nights"' in page and "<svg" in page

    api = owner.get(f"/api/v1/campaigns/{campaign.pk}/results/").json()
    assert (api["treatment"]["reached"], api["treatment"]["won"], api["treatment"]["revenue"]) == (4, 2, "35.00")
    assert api["summary"] in page.replace("&#x27;", "'")
    assert api["summary"].startswith(
        "2 of 4 members picked for a message came back within 14 days (50\u00a0%); of the 2 held back"
    )

    export = owner.get(f"/campaigns/{campaign.pk}/export.csv").content.decode().splitlines()
    assert export[0].startswith("night,send_number,arm,outcome")
    assert len(export) == 7
    assert sum(1 for line in export[1:] if ",yes," in line) == 3


def test_the_dashboard_counts_members_messages_and_wins(db):
    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, attribution_days=14)
    now = datetime(2026, 5, 20, 12, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        for days in (3, 20, 40, 70, 100):
            visit_make(member_make(business), days_ago=days)
        member_make(business)  # never purchased
        won = member_make(business, phone="+60123456789")
        visit_make(won, days_ago=50)
        with scope(business=business.pk):
            send = CampaignSend.objects.create(business=business, campaign=campaign, member=won, send_number=1,
                                               local_date=now.date(), outcome="sent",
                                               created_at=now - timedelta(days=5))  # fmt: skip
            Delivery.objects.create(business=business, send=send, campaign=campaign, member=won, channel="sms",
                                    status="sent", scheduled_at=now, sent_at=now - timedelta(days=5),
                                    created_at=now, updated_at=now)  # fmt: skip
        visit_make(won, days_ago=1, amount=Decimal("12.50"))
        with scope(business=business.pk):
            data = business_dashboard(business=business, now=timezone.now())

    m = data["members"]
    assert (m["total"], m["active"], m["d14"], m["d30"], m["d60"], m["d90"], m["never"]) == (7, 2, 1, 1, 1, 1, 1)
    assert data["sent_by_channel"] == {"sms": 1} and data["billable"] == 1
    assert (data["wins"], data["revenue"]) == (1, Decimal("12.50"))


def test_the_dashboard_shows_a_flash_message_and_no_stray_channel_banner(owner_client, business):
    """The dashboard's figures once sat in a context key named ``messages``, Django's flash
    messages' own: the banner showed "email" (a channel of the figures) and hid the real flash."""
    campaign = campaign_make(business, name="Spring")
    member = member_make(business, email="wei@example.com")
    now = timezone.now()
    with scope(business=business.pk):
        send = CampaignSend.objects.create(business=business, campaign=campaign, member=member, send_number=1,
                                           local_date=now.date(), outcome="sent", created_at=now)  # fmt: skip
        Delivery.objects.create(business=business, send=send, campaign=campaign, member=member, channel="email",
                                status="sent", scheduled_at=now, sent_at=now, created_at=now, updated_at=now)  # fmt: skip
    owner_client.post(f"/campaigns/{campaign.pk}/archive/")  # flashes "“Spring” is archived."

    page = owner_client.get("/dashboard/").content.decode()

    banner = page.split('<div class="messages"', 1)[1].split("</div></div>", 1)[0]
    assert "“Spring” is archived." in banner
    assert "msg-email" not in page and ">email<" not in banner
