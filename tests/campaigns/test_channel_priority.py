"""Channel priority at night (issue 15): one delivery per send, on the first channel of the
campaign's order the member is reachable on; 'every chosen channel' keeps one per channel."""

from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from campaigns.models import ChannelMode
from notifications.models import PushSubscription
from tests.campaigns.helpers import at_local, deliveries, night, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make

D = date(2026, 3, 20)  # a Friday
EVERYWHERE = {"sms": True, "whatsapp": True, "email": True, "push": True}


@pytest.fixture
def business(db):
    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed(business, *, subscribed=False, **fields):
    fields.setdefault("phone", "+60123456789")
    fields.setdefault("email", "wei@example.com")
    fields.setdefault("consents", EVERYWHERE)
    member = member_make(business, **fields)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=30), 12))
    if subscribed:
        with scope(business=business.pk):
            PushSubscription.objects.create(business=business, member=member, endpoint=f"https://push.example/{member.pk}",
                                            p256dh="k", auth="a")  # fmt: skip
    return member


def channels_by_member(business):
    out: dict[int, list[str]] = {}
    for d in deliveries(business):
        out.setdefault(d.member_id, []).append(d.channel)
    return out


def test_new_campaigns_default_to_the_first_reachable_channel(business):
    assert campaign_make(business).channel_mode == ChannelMode.FIRST_REACHABLE


def test_a_member_reachable_on_three_channels_gets_one_delivery_on_the_first(business):
    campaign_make(business, channels=["whatsapp", "sms", "email"])
    member = lapsed(business)

    night(business, D)

    assert channels_by_member(business) == {member.pk: ["whatsapp"]}
    (send,) = sends(business)
    assert send.outcome == "scheduled"


def test_the_order_is_the_campaigns_not_a_fixed_one(business):
    campaign_make(business, channels=["email", "sms", "whatsapp"])
    member = lapsed(business)

    night(business, D)

    assert channels_by_member(business) == {member.pk: ["email"]}


def test_a_member_unreachable_on_the_first_channel_gets_the_second(business):
    campaign_make(business, channels=["push", "whatsapp", "sms", "email"])
    subscribed = lapsed(business, subscribed=True)
    no_push = lapsed(business)  # consented to push, but no subscription
    no_whatsapp = lapsed(business, consents={"push": True, "sms": True, "email": True})
    email_only = lapsed(business, phone="", consents=EVERYWHERE)

    night(business, D)

    assert channels_by_member(business) == {
        subscribed.pk: ["push"], no_push.pk: ["whatsapp"], no_whatsapp.pk: ["sms"], email_only.pk: ["email"],
    }  # fmt: skip


def test_every_chosen_channel_still_writes_one_delivery_per_reachable_channel(business):
    campaign_make(business, channels=["whatsapp", "sms", "email"], channel_mode=ChannelMode.EVERY)
    member = lapsed(business)
    sms_only = lapsed(business, consents={"sms": True})

    night(business, D)

    got = channels_by_member(business)
    assert sorted(got[member.pk]) == ["email", "sms", "whatsapp"]
    assert got[sms_only.pk] == ["sms"]


def test_two_campaigns_each_keep_their_own_order_and_mode(business):
    first = campaign_make(business, channels=["sms", "email"], inactivity_days=14)
    every = campaign_make(business, channels=["email", "sms"], inactivity_days=20, channel_mode=ChannelMode.EVERY)
    member = lapsed(business)

    night(business, D)

    assert sorted((d.campaign_id, d.channel) for d in deliveries(business)) == sorted(
        [(first.pk, "sms"), (every.pk, "email"), (every.pk, "sms")]
    )
    assert {s.member_id for s in sends(business)} == {member.pk}


def test_pacing_applies_to_the_chosen_channel_only(business):
    campaign_make(
        business, channels=["whatsapp", "email"], pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 2}}
    )
    for _ in range(3):
        lapsed(business)

    night(business, D)

    got = [(d.channel, d.scheduled_at) for d in deliveries(business)]
    nine = at_local(business, D, 9)
    assert got == [
        ("whatsapp", nine),
        ("whatsapp", nine + timedelta(minutes=1)),
        ("whatsapp", nine + timedelta(days=1)),
    ]


def _night_statements(n: int) -> int:
    b = business_make(timezone="America/New_York", frequency_cap_days=0)
    campaign_make(
        b, channels=["push", "whatsapp", "sms", "email"], pacing={"sms": {"interval_seconds": 30, "daily_cap": 9}}
    )
    campaign_make(b, channels=["email", "sms"], inactivity_days=20, channel_mode=ChannelMode.EVERY)
    for i in range(n):
        lapsed(b, subscribed=i % 2 == 0, consents=EVERYWHERE if i % 3 else {"sms": True, "email": True})
    with CaptureQueriesContext(connection) as ctx:
        result = night(b, D)
    assert result.run.sends == 2 * n
    return len(ctx.captured_queries)


def test_the_nights_statements_do_not_grow_with_the_members(db):
    counts = [_night_statements(n) for n in (1, 3, 30)]  # (the first night looks up the send sequence once)
    assert counts[1] == counts[2], counts
