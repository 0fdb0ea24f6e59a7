"""Web push goes to every live subscription of a member (phone, laptop, …), through the real
pywebpush client against the fake push service; and the dispatcher's queries per batch do not grow
with the batch, with the real push and Twilio backends."""

from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from notifications import dispatcher
from notifications.models import PushSubscription
from tests.campaigns.helpers import at_local, deliveries, night
from tests.conftest import business_make, campaign_make, member_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)


def shop_make(**fields):
    return business_make(timezone="Asia/Kuala_Lumpur", frequency_cap_days=0,
                         channel_settings={"push": {"enabled": True}, "sms": {"enabled": True, "sender": "+15005550006"}},
                         **fields)  # fmt: skip


def lapsed(shop, n=1):
    members = []
    for i in range(n):
        member = member_make(shop, first_name=f"M{i}", phone=f"+6012345{i:04d}", consents={"push": True, "sms": True})
        with time_machine.travel(at_local(shop, D, 0, 30), tick=False):
            visit_make(member, at=at_local(shop, D - timedelta(days=30), 12))
        members.append(member)
    return members


def subscribe(shop, member, push, name):
    info = push.subscribe(name)
    with scope(business=shop.pk):
        PushSubscription.objects.create(business=shop, member=member, endpoint=info["endpoint"],
                                        p256dh=info["keys"]["p256dh"], auth=info["keys"]["auth"])  # fmt: skip
    return info


def endpoints(shop, member) -> set[str]:
    with scope(business=shop.pk):
        return {e.rsplit("/", 1)[-1] for e in PushSubscription.objects.filter(member=member).values_list("endpoint",
                                                                                                         flat=True)}  # fmt: skip


def send_night(shop):
    campaign_make(shop, channels=["push"], title="We miss you, {first_name}!", body="Come back to {business}.")
    night(shop, D)
    return run_dispatch(at_local(shop, D, 9))


@pytest.fixture
def shop(db):
    return shop_make()


def test_a_push_goes_to_every_subscription_of_the_member(shop, push):
    (member,) = lapsed(shop)
    subscribe(shop, member, push, "phone")
    subscribe(shop, member, push, "laptop")

    send_night(shop)

    assert sorted(r["name"] for r in push.requests) == ["laptop", "phone"]
    assert all(r["payload"]["title"] == "We miss you, M0!" for r in push.requests)
    (d,) = deliveries(shop)
    assert d.status == "sent" and d.provider_id.startswith(push.url + "/messages/")
    with scope(business=shop.pk):
        assert PushSubscription.objects.filter(member=member, last_success_at__isnull=True).count() == 0


def test_a_gone_subscription_is_deleted_and_the_push_still_counts_as_sent_on_the_other(shop, push):
    (member,) = lapsed(shop)
    subscribe(shop, member, push, "phone")
    subscribe(shop, member, push, "old-laptop")
    push.script["old-laptop"] = (410, {}, {})

    send_night(shop)

    assert deliveries(shop)[0].status == "sent"
    assert endpoints(shop, member) == {"phone"}
    with scope(business=shop.pk):
        assert PushSubscription.objects.get(member=member).last_success_at is not None


def test_when_every_subscription_is_gone_the_delivery_fails_and_none_is_left(shop, push):
    (member,) = lapsed(shop)
    subscribe(shop, member, push, "phone")
    subscribe(shop, member, push, "laptop")
    push.script["phone"] = (404, {}, {})
    push.script["laptop"] = (410, {}, {})

    send_night(shop)

    (d,) = deliveries(shop)
    assert d.status == "failed" and "every push subscription" in d.last_error
    assert endpoints(shop, member) == set()


def test_one_gone_and_one_busy_retries_later_on_the_live_one_only(shop, push):
    (member,) = lapsed(shop)
    subscribe(shop, member, push, "phone")
    subscribe(shop, member, push, "laptop")
    push.script["phone"] = (503, {}, {})
    push.script["laptop"] = (410, {}, {})

    send_night(shop)
    (d,) = deliveries(shop)
    assert (d.status, d.attempts) == ("scheduled", 1)
    assert endpoints(shop, member) == {"phone"}
    del push.script["phone"]
    push.requests.clear()

    run_dispatch(d.scheduled_at)

    assert [r["name"] for r in push.requests] == ["phone"]
    assert deliveries(shop)[0].status == "sent"


def test_one_busy_and_one_accepted_is_sent(shop, push):
    (member,) = lapsed(shop)
    subscribe(shop, member, push, "phone")
    subscribe(shop, member, push, "laptop")
    push.script["laptop"] = (503, {}, {})

    send_night(shop)

    assert deliveries(shop)[0].status == "sent"
    assert endpoints(shop, member) == {"phone", "laptop"}
    with scope(business=shop.pk):
        assert set(PushSubscription.objects.filter(member=member).values_list("last_success_at", flat=True)) != {None}


# --- queries per batch ---------------------------------------------------------------------------------


def _queries_per_batch(shop, members: int, channel: str, push=None, subscriptions: int = 1) -> int:
    for member in lapsed(shop, members):
        for n in range(subscriptions if push else 0):
            subscribe(shop, member, push, f"{member.pk}-{n}")
    campaign_make(shop, channels=[channel])
    night(shop, D)
    now = at_local(shop, D, 9)
    claimed = []
    with scopes_disabled():
        dispatcher.dispatch_due(now=now, enqueue=lambda b, ids: claimed.append(ids))
    (ids,) = claimed
    with scope(business=shop.pk), CaptureQueriesContext(connection) as ctx:
        report = dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: now)
    assert report.sent == members
    return len(ctx.captured_queries)


@pytest.mark.parametrize("subscriptions", [1, 2])
def test_a_push_batch_costs_the_same_queries_for_3_or_40_members(db, push, subscriptions):
    few = _queries_per_batch(shop_make(), 3, "push", push, subscriptions)
    many = _queries_per_batch(shop_make(), 40, "push", push, subscriptions)

    assert few == many
    assert len(push.requests) == 43 * subscriptions and not [r for r in push.requests if "error" in r]
    with scopes_disabled():
        assert not PushSubscription.objects.filter(last_success_at__isnull=True).exists()


def test_an_sms_batch_through_twilio_costs_the_same_queries_for_3_or_40_members(db, twilio):
    few = _queries_per_batch(shop_make(), 3, "sms")
    many = _queries_per_batch(shop_make(), 40, "sms")

    assert few == many
    assert len(twilio.requests) == 43
