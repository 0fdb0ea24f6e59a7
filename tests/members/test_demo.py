"""The demo: a café with a year and more of visits and eight weeks of campaigns that really ran
(the nights and the dispatcher over simulated dates, the returns recorded as purchases)."""

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Count, Q, Sum
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, CampaignSend, EvaluationRun
from campaigns.results import business_dashboard, campaign_results
from members.demo import CAMPAIGN_NIGHTS, WATCH_DELAY
from members.models import Business, Member, Visit, VisitSource, WalletReward
from notifications.models import Delivery, DeliveryEvent, RecordedMessage

# Mid-month, mid-afternoon in Kuala Lumpur: any instant works, a fixed one makes the story repeatable.
NOW = datetime(2026, 3, 18, 7, 30, tzinfo=UTC)


@pytest.fixture
def demo(db):
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        yield Business.objects.get(slug="demo")


def counts():
    with scopes_disabled():
        models = (Business, Member, Visit, EvaluationRun, CampaignSend, Delivery, DeliveryEvent, WalletReward,
                  RecordedMessage, Campaign)  # fmt: skip
        return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_creates_realistic_data_and_a_second_run_changes_nothing(demo):
    first = counts()

    out = io.StringIO()
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        call_command("seed_demo", stdout=out)

    assert counts() == first
    assert "already exists" in out.getvalue()
    with scopes_disabled():
        members = Member.objects.filter(business=demo)
        assert 450 <= members.count() <= 550
        now = NOW

        def lapsed(lo, hi):
            return members.filter(
                last_purchase_at__lte=now - timedelta(days=lo), last_purchase_at__gt=now - timedelta(days=hi)
            ).count()

        assert members.filter(last_purchase_at__gte=now - timedelta(days=10)).count() > 100  # regulars
        # (Who comes back in the story follows the control groups, drawn by member id, and the ids
        # follow what ran before in the test database: the bands move by a few members.)
        for lo, hi in [(14, 30), (30, 60), (60, 90), (90, 2000)]:
            assert lapsed(lo, hi) > 10, (lo, hi)
        assert members.filter(last_purchase_at__isnull=True).count() > 10
        assert Visit.objects.filter(business=demo, occurred_at__lt=now - timedelta(days=365)).exists()
        # balances equal the ledger for every member
        ledger = members.annotate(
            s=Sum("visits__stamps_delta", default=0), p=Count("visits", filter=Q(visits__kind="purchase"))
        )
        assert all(m.s == m.stamps_balance and m.p == m.purchase_count for m in ledger)


def test_the_campaigns_history_comes_from_the_nights_and_the_dispatcher(demo):
    with scope(business=demo.pk):
        today = timezone.localdate(NOW, demo.tzinfo)
        runs = list(EvaluationRun.objects.order_by("local_date"))
        campaigns = {c.name: c for c in Campaign.objects.filter(status="active")}
        sends = CampaignSend.objects.all()

        # One run per night for eight weeks and tonight, each counting the sends it wrote.
        assert [r.local_date for r in runs] == [today - timedelta(days=k) for k in range(CAMPAIGN_NIGHTS, -1, -1)]
        assert all(r.finished_at is not None for r in runs)
        assert sum(r.sends for r in runs) == sends.exclude(outcome="capped").count() > 300
        assert not sends.filter(run__isnull=True).exists()
        assert {s.local_date for s in sends} >= {today - timedelta(days=CAMPAIGN_NIGHTS), today - timedelta(days=1)}
        # Both campaigns held a control group out and messaged the rest; the dispatcher sent them
        # (the recording backend recorded each message) on the night's dates, not all today.
        for campaign in campaigns.values():
            arms = dict(sends.filter(campaign=campaign).values_list("arm").annotate(n=Count("pk")))
            assert arms.get("control", 0) > 10 and arms.get("a", 0) + arms.get("b", 0) > 50, (campaign.name, arms)
        sent = Delivery.objects.filter(status__in=["sent", "opened"])
        assert sent.count() == RecordedMessage.objects.filter(delivery_id__isnull=False).count() > 300
        assert len({d.sent_at.date() for d in sent}) > 40
        # The members who came back did so through the visit ledger's one service, at the counter.
        returns = Visit.objects.filter(source=VisitSource.STAMP_PAGE, kind="purchase")
        assert returns.count() > 50 and not returns.filter(recorded_by__isnull=True).exists()
        # Some opened their message, and its reward went into their wallet or onto their card.
        assert sends.filter(opened_at__isnull=False).count() > 50
        assert WalletReward.objects.filter(claimed_at__isnull=False).count() > 50
        # Tonight's messages of the watched campaign go out a few minutes after the demo was made:
        # its send-at is then, and every treated send of tonight waits for it on each channel.
        watched = campaigns["We miss you (14 days)"]
        assert watched.send_at == (NOW + WATCH_DELAY).astimezone(demo.tzinfo).time().replace(second=0)
        treated = sends.filter(campaign=watched, local_date=today, outcome="scheduled")
        tonight = Delivery.objects.filter(campaign=watched, status="scheduled", send__local_date=today)
        assert set(tonight.values_list("send_id", flat=True)) == set(treated.values_list("pk", flat=True))
        # Several members cross the 14 days tonight (and some get the campaign's second message),
        # so there is something to watch; about one in five is held out, by member id.
        assert sends.filter(campaign=watched, local_date=today).count() >= 5
        assert treated.count() >= 1
        assert {d.scheduled_at for d in tonight} <= {
            NOW + WATCH_DELAY + timedelta(seconds=20 * i) for i in range(tonight.count() + 1)
        }


def test_the_demo_dashboard_and_campaign_page_show_members_won_back_and_the_lift(demo, settings):
    owner = Client()
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        owner.post("/accounts/login/", {"username": "owner@demo.example", "password": settings.DEMO_PASSWORD})
        dashboard = owner.get("/dashboard/").content.decode()
        with scope(business=demo.pk):
            figures = business_dashboard(business=demo, now=timezone.now())
            campaign = Campaign.objects.get(name="We miss you (14 days)")
            results = campaign_results(campaign)
        page = owner.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert figures["wins"] > 10 and figures["revenue"] > 100
    wins = re.search(r'id="d-wins">([\d,]+)<', dashboard).group(1)
    assert int(wins.replace(",", "")) == figures["wins"]
    # The campaign brought members back, more often than its control group, with an interval.
    treatment, control, lift = results.treatment, results.arms["control"], results.lift
    assert treatment.won > 50 and control.members > 30 and treatment.revenue > 0
    assert treatment.won / treatment.members > control.won / control.members
    assert lift is not None and lift.ci_low < lift.difference < lift.ci_high
    text = re.sub(r"<[^>]+>", " ", page.split('id="results"', 1)[1])
    for number in (treatment.won, control.members, control.won):
        assert re.search(rf"\b{number:,}\b", text), number


def test_the_demo_logins_work(demo, settings):
    client = Client()

    response = client.post("/accounts/login/", {"username": "Staff@demo.example", "password": settings.DEMO_PASSWORD})

    assert response.status_code == 302
    assert client.get("/").url == "/stamp/"
    owner = Client()
    owner.post("/accounts/login/", {"username": "owner@demo.example", "password": settings.DEMO_PASSWORD})
    assert owner.get("/").url == "/dashboard/"


def test_every_demo_member_can_be_texted_a_sign_in_code_by_their_business(db):
    from members.sms_destinations import sms_destination_check

    call_command("seed_demo", stdout=io.StringIO())

    with scopes_disabled():
        members = list(Member.objects.select_related("business").exclude(phone=""))
    for member in members:  # raises for a phone in another country or not a mobile
        sms_destination_check(business=member.business, phone=member.phone)
    assert {m.business.slug for m in members} == {"demo", "demo-salon"}


def test_seed_demo_on_a_deployment_with_twilio_sends_none_of_the_historys_messages(db, twilio):
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())

    assert twilio.requests == []
    with scopes_disabled():
        assert RecordedMessage.objects.filter(channel="sms").count() > 50  # recorded instead
