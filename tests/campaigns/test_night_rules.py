"""The due-member rule of SPEC §5, night by night, with a frozen clock."""

from datetime import UTC, date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django_scopes import scope

from campaigns import services
from campaigns.models import Campaign
from members.services import member_consent_set
from notifications.models import PushSubscription
from tests.campaigns.helpers import at_local, night, sends
from tests.conftest import campaign_make, member_make, visit_make

D = date(2026, 3, 20)  # a Friday


@pytest.fixture
def business(db):
    from tests.conftest import business_make

    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed_member(business, *, days: int, hour: int = 12, **fields):
    """A member whose last purchase was ``days`` local days before D."""
    fields.setdefault("phone", "+60123456789")
    fields.setdefault("consents", {"sms": True, "email": True})
    member = member_make(business, **fields)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=days), hour))
    return member


def test_exactly_n_days_ago_is_due_and_n_minus_one_is_not(business):
    campaign_make(business, inactivity_days=14)
    due = lapsed_member(business, days=14, hour=23)  # 23:59-ish local, still that date
    not_yet = lapsed_member(business, days=13, hour=0)

    night(business, D)

    assert [s.member_id for s in sends(business)] == [due.pk]
    assert not_yet.pk not in [s.member_id for s in sends(business)]


def test_dates_are_the_business_local_dates_not_utc(business):
    # 23:30 local on D-14 is 15:30 UTC the same day; 00:30 local on D-13 is 16:30 UTC on D-14.
    campaign_make(business, inactivity_days=14)
    late_evening = lapsed_member(business, days=14, hour=23)
    just_after_midnight = lapsed_member(business, days=13, hour=0)

    night(business, D)

    assert {s.member_id for s in sends(business)} == {late_evening.pk}
    assert just_after_midnight.last_purchase_at.astimezone(UTC).date() == D - timedelta(days=14)  # UTC: same date


def test_never_purchased_members_are_never_due(business):
    campaign_make(business, inactivity_days=1)
    member = member_make(business, phone="+60123456789", consents={"sms": True})
    with time_machine.travel(at_local(business, D - timedelta(days=30), 12), tick=False):
        visit_make(member, kind="balance_check", stamps=0)
        visit_make(member, kind="referral", stamps=0, points=10)

    night(business, D)

    assert sends(business) == []


def test_non_purchase_visits_do_not_reset_the_clock(business):
    campaign_make(business, inactivity_days=14)
    member = lapsed_member(business, days=20)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        for kind in ("redemption", "balance_check", "referral", "birthday_reward", "campaign_reward"):
            visit_make(member, kind=kind, days_ago=1, stamps=0)

    night(business, D)

    assert [s.member_id for s in sends(business)] == [member.pk]


@pytest.mark.parametrize("max_sends", [1, 2, 3])
def test_max_sends_with_the_resend_spacing(business, max_sends):
    campaign = campaign_make(business, inactivity_days=14, max_sends=max_sends)
    member = lapsed_member(business, days=14)

    nights = [D + timedelta(days=i) for i in range(0, 60)]
    for day in nights:
        night(business, day)

    got = sends(business, campaign=campaign)
    assert [(s.local_date, s.send_number) for s in got] == [
        (D + timedelta(days=14 * i), i + 1) for i in range(max_sends)
    ]
    assert all(s.member_id == member.pk for s in got)


def test_lowering_the_threshold_makes_more_members_due_the_next_night(business):
    campaign = campaign_make(business, inactivity_days=60)
    member = lapsed_member(business, days=40)
    night(business, D)
    assert sends(business) == []

    with scope(business=business.pk):
        services.campaign_save(business=business, campaign=campaign, data={"inactivity_days": 30})
    night(business, D + timedelta(days=1))

    assert [s.member_id for s in sends(business)] == [member.pk]


def test_a_campaign_activated_at_2359_first_evaluates_at_the_next_midnight(business):
    lapsed_member(business, days=30)
    campaign = campaign_make(business, activated_at=at_local(business, D - timedelta(days=1), 23, 59))
    late = campaign_make(business, activated_at=at_local(business, D, 0, 0))  # at midnight: not before it

    night(business, D)

    assert {s.campaign_id for s in sends(business)} == {campaign.pk}
    assert late.pk not in {s.campaign_id for s in sends(business)}


def test_paused_draft_and_archived_campaigns_are_not_evaluated(business):
    lapsed_member(business, days=30)
    for status in ("draft", "paused", "archived"):
        campaign_make(business, status=status, activated_at=at_local(business, D - timedelta(days=5)))

    night(business, D)

    assert sends(business) == []


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({}, {"regular", "newbie", "rich", "ancient"}),
        ({"min_visits": 3}, {"regular", "rich"}),
        ({"max_visits": 1}, {"newbie", "ancient"}),
        ({"min_spend": "100"}, {"rich"}),
        ({"joined_before": "2025-01-01"}, {"ancient"}),
        ({"joined_after": "2025-01-01"}, {"regular", "newbie", "rich"}),
        ({"min_points": 50}, {"rich"}),
        ({"min_stamps": 3}, {"regular", "rich"}),
        ({"has_email": True}, {"regular", "rich"}),
        ({"has_phone": True}, {"regular", "newbie", "rich", "ancient"}),
        ({"max_days_away": 100}, {"regular", "newbie", "rich"}),
        ({"min_visits": 3, "min_spend": "100"}, {"rich"}),
    ],
)
def test_conditions_narrow_the_audience(business, conditions, expected):
    campaign_make(business, inactivity_days=14, conditions=conditions)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        names = {}
        for name, joined, purchases, amount, points, email, last in [
            ("regular", date(2025, 6, 1), 4, "10", 0, "r@example.com", 20),
            ("newbie", date(2025, 9, 1), 1, "10", 0, "", 30),
            ("rich", date(2025, 3, 1), 3, "50", 80, "x@example.com", 40),
            ("ancient", date(2024, 5, 1), 1, "5", 0, "", 400),
        ]:
            m = member_make(business, first_name=name, phone="+60123456789", email=email, joined_on=joined,
                            consents={"sms": True})  # fmt: skip
            for i in range(purchases):
                visit_make(m, at=at_local(business, D - timedelta(days=last + i), 12), amount=Decimal(amount), points=points // max(purchases, 1) + (points % max(purchases, 1) if i == 0 else 0))  # fmt: skip
            names[m.pk] = name

    night(business, D)

    assert {names[s.member_id] for s in sends(business)} == expected


def test_consent_and_reachability_per_channel(business):
    campaign_make(business, channels=["sms", "push"])
    no_consent = lapsed_member(business, days=30, consents={"email": True})
    no_phone = lapsed_member(business, days=30, phone="", consents={"sms": True})
    sms_ok = lapsed_member(business, days=30, consents={"sms": True})
    push_no_sub = lapsed_member(business, days=30, phone="", consents={"push": True})
    push_ok = lapsed_member(business, days=30, phone="", consents={"push": True})
    withdrawn = lapsed_member(business, days=30, consents={"sms": True})
    with scope(business=business.pk):
        PushSubscription.objects.create(business=business, member=push_ok, endpoint="https://push.example/1",
                                        p256dh="k", auth="a")  # fmt: skip
        member_consent_set(member=withdrawn, channel="sms", granted=False, source="member_app")

    night(business, D)

    assert {s.member_id for s in sends(business)} == {sms_ok.pk, push_ok.pk}
    for m in (no_consent, no_phone, push_no_sub, withdrawn):
        assert m.pk not in {s.member_id for s in sends(business)}


def test_the_frequency_cap_lets_the_longest_threshold_win(business):
    business.frequency_cap_days = 7
    business.save()
    short = campaign_make(business, inactivity_days=14)
    long = campaign_make(business, inactivity_days=30)
    both = lapsed_member(business, days=40)
    only_short = lapsed_member(business, days=20)

    night(business, D)

    rows = {(s.campaign_id, s.member_id): s.outcome for s in sends(business)}
    assert rows == {
        (long.pk, both.pk): "scheduled",
        (short.pk, both.pk): "capped",
        (short.pk, only_short.pk): "scheduled",
    }
    # Within the cap no other campaign message; after it, the short campaign may send.
    for i in range(1, 7):
        night(business, D + timedelta(days=i))
    assert len(sends(business, member=both)) == 2
    night(business, D + timedelta(days=7))
    assert [(s.campaign_id, s.outcome) for s in sends(business, member=both, local_date=D + timedelta(days=7))] == [
        (short.pk, "scheduled")
    ]


def test_the_frequency_cap_off_lets_both_campaigns_send(business):
    campaign_make(business, inactivity_days=14)
    campaign_make(business, inactivity_days=30)
    lapsed_member(business, days=40)

    night(business, D)

    assert [s.outcome for s in sends(business)] == ["scheduled", "scheduled"]


def test_ab_and_control_arms_are_deterministic_and_shared_across_sends(business):
    campaign = campaign_make(business, ab_enabled=True, variant_b_title="B {first_name}", variant_b_body="B body",
                             ab_share_b=50, control_share=20, max_sends=2)  # fmt: skip
    members = [lapsed_member(business, days=30) for _ in range(60)]

    night(business, D)
    night(business, D + timedelta(days=14))

    from campaigns.engine import arm_bucket

    by_member: dict[int, set] = {}
    for s in sends(business, campaign=campaign):
        by_member.setdefault(s.member_id, set()).add(s.arm)
        bucket = arm_bucket(campaign_id=campaign.pk, member_id=s.member_id)
        expected = "control" if bucket < 20 else ("b" if bucket < 60 else "a")
        assert s.arm == expected
        assert (s.outcome == "control") == (s.arm == "control")
    assert all(len(arms) == 1 for arms in by_member.values())
    assert len(by_member) == len(members)
    assert {next(iter(a)) for a in by_member.values()} == {"a", "b", "control"}
    assert all(len(sends(business, member_id=m)) == 2 for m in by_member)  # control follows the same timeline


def test_rerunning_a_night_writes_nothing(business):
    campaign_make(business, channels=["sms", "email"], reward={"kind": "bonus_points", "count": 10})
    for i in range(5):
        lapsed_member(business, days=30, email=f"m{i}@example.com")
    first = night(business, D)

    again = night(business, D)

    assert first.run.sends == 5 and first.run.deliveries == 10
    assert again is None
    assert len(sends(business)) == 5


def test_the_dry_run_counts_what_the_night_writes_and_writes_nothing(business):
    business.frequency_cap_days = 7
    business.save()
    a = campaign_make(business, inactivity_days=14, control_share=20)
    b = campaign_make(business, inactivity_days=30)
    for days in (20, 35, 50, 16, 90, 31):
        lapsed_member(business, days=days)
    lapsed_member(business, days=5)

    dry = night(business, D, dry_run=True)
    assert sends(business) == []
    real = night(business, D)

    for campaign in (a, b):
        expected = {k: real.stats[campaign.pk][k] for k in ("selected", "capped", "control", "sends")}
        assert dry.stats[campaign.pk] == expected


def test_escalation_send_two_carries_its_own_message_and_reward(business):
    campaign = campaign_make(
        business,
        max_sends=3,
        title="Friendly reminder",
        reward={},
        escalation=[
            {"title": "Two stamps on us", "body": "Here are {reward}", "reward": {"kind": "bonus_stamps", "count": 2}},
            {"title": "", "body": "", "reward": {"kind": "discount", "percent": 20}},
        ],
    )
    with scope(business=business.pk):
        assert campaign.step(1)["title"] == "Friendly reminder" and campaign.step(1)["reward"] == {}
        assert campaign.step(2)["title"] == "Two stamps on us"
        assert campaign.step(3)["title"] == "Friendly reminder"  # empty falls back to send 1
        assert campaign.step(3)["reward"]["percent"] == 20
    member = lapsed_member(business, days=14)
    for i in range(0, 30):
        night(business, D + timedelta(days=i))

    from members.models import WalletReward

    with scope(business=business.pk):
        rewards = {r.send.send_number: (r.kind, r.title, r.status) for r in WalletReward.objects.select_related("send")}
    assert rewards == {2: ("bonus_stamps", "2 bonus stamps", "offered"), 3: ("discount", "20% off", "offered")}
    assert [s.send_number for s in sends(business, member=member)] == [1, 2, 3]


def test_an_invalid_campaign_cannot_be_activated(business):
    with scope(business=business.pk):
        draft = Campaign.objects.create(business=business, name="Draft", title="", body="", channels=[])
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as exc:
            services.campaign_activate(campaign=draft)
    assert set(exc.value.message_dict) >= {"title", "body", "channels"}


def test_reachability_in_sql_is_the_orm_filter(business):
    """The night's SQL (rules.reachable_sql) and the ORM filter the pages use (reachable_q) agree
    for every channel, over members that differ in each input."""
    from django.db.models.expressions import RawSQL

    from campaigns.rules import reachable_q, reachable_sql
    from members.models import CHANNELS, Member

    made = []
    for phone in ("", "+60123000111"):
        for email in ("", "x@example.com"):
            for consents in (
                {},
                {"sms": True, "whatsapp": True},
                {"email": True},
                {"push": True},
                dict.fromkeys(CHANNELS, True),
            ):
                made.append(lapsed_member(business, days=30, phone=phone, email=email, consents=consents))
    with scope(business=business.pk):
        for m in made[::3]:
            PushSubscription.objects.create(business=business, member=m, endpoint=f"https://push.example/{m.pk}",
                                            p256dh="k", auth="a")  # fmt: skip
        for channel in CHANNELS:
            orm = set(Member.objects.filter(reachable_q(channel)).values_list("pk", flat=True))
            sql = set(
                Member.objects.filter(
                    pk__in=RawSQL(f"SELECT m.id FROM members_member m WHERE {reachable_sql(channel)}", [])
                ).values_list("pk", flat=True)
            )
            assert orm == sql, channel
            assert 0 < len(orm) < len(made), channel  # the inputs do tell members apart


def _night_queries(business, day, members: int) -> tuple[int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(members):
        lapsed_member(business, days=40, consents={"sms": True, "email": True, "whatsapp": True})
    with CaptureQueriesContext(connection) as ctx:
        result = night(business, day)
    return len(ctx.captured_queries), result.run.sends


def test_the_night_costs_the_same_statements_for_3_or_40_members(db):
    """No query per member (nor per campaign): every campaign kind at once — conditions, a reward,
    escalation, a paced and capped channel, two channels, a frequency cap between campaigns."""
    from tests.conftest import business_make

    counts = []
    for n in (1, 3, 40):  # (the first night of a process also looks up the send id sequence once)
        b = business_make(timezone="America/New_York", frequency_cap_days=7)
        campaign_make(b, inactivity_days=14, channels=["sms", "email"], conditions={"min_visits": 1}, max_sends=2,
                      reward={"kind": "bonus_points", "count": 10},
                      escalation=[{"title": "", "body": "", "reward": {"kind": "bonus_stamps", "count": 2}}])  # fmt: skip
        campaign_make(b, inactivity_days=30, channels=["whatsapp"],
                      pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 5}})  # fmt: skip
        queries, sent = _night_queries(b, D, n)
        assert sent == n  # each member once: the frequency cap gives them to the 30-day campaign
        counts.append(queries)
    assert counts[1] == counts[2] <= 14, counts  # (PostgreSQL 12, SQLite 14: its writes are four statements)


def test_the_audience_costs_the_same_queries_for_3_or_40_members(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns import engine
    from tests.conftest import business_make

    counts = []
    for n in (3, 40):
        b = business_make(timezone="Pacific/Auckland")
        campaign = campaign_make(b, inactivity_days=14, channels=["sms"], conditions={"min_visits": 1})
        for _ in range(n):
            lapsed_member(b, days=40)
        with scope(business=b.pk), CaptureQueriesContext(connection) as ctx:
            audience = engine.campaign_audience(campaign, local_date=D, limit=10)
        assert audience.count == n
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 4, counts


@pytest.mark.parametrize(("send_at", "valid"), [("07:59", False), ("08:00", True), ("20:59", True), ("21:00", False)])
def test_an_sms_send_time_must_fall_inside_the_0800_to_2100_window(business, send_at, valid):
    """21:00 is already quiet (the window is 08:00 ≤ t < 21:00, as the dispatcher checks it)."""
    from datetime import time

    from django.core.exceptions import ValidationError

    from campaigns.rules import campaign_validate

    campaign = campaign_make(business, channels=["sms"])
    campaign.send_at = time.fromisoformat(send_at)
    with scope(business=business.pk):
        if valid:
            campaign_validate(campaign, for_activation=True)
        else:
            with pytest.raises(ValidationError) as exc:
                campaign_validate(campaign, for_activation=True)
            assert "send_at" in exc.value.message_dict
