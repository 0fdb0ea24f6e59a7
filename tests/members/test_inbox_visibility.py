"""Nothing is in the inbox, opened or claimed before it went out (SPEC §6): the member API's inbox
and open, the open link's page and the claim itself read one rule (``notifications.inbox.sends_visible_at``), with the real
night and the real dispatcher."""

from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from campaigns import services
from campaigns.models import Campaign, CampaignSend
from members.models import WalletReward
from notifications.dispatcher import open_url
from notifications.inbox import inbox_open, reward_claim
from tests.api.conftest import member_client_for
from tests.campaigns.helpers import at_local, deliveries, night, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)  # a Friday


@pytest.fixture
def business(db):
    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0,
                         channel_settings={"sms": {"enabled": True}})  # fmt: skip


def lapsed(business, **fields):
    fields.setdefault("consents", {"sms": True})
    member = member_make(business, first_name="Wei", phone="+60123456789", **fields)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=30), 12))
    return member


def offer_tonight(business, **campaign_fields):
    """A 09:00 SMS campaign with a free coffee, evaluated for D at 00:01; the member's send."""
    campaign_fields.setdefault("reward", {"kind": "free_item", "item": "cup of coffee", "expiry_days": 30})
    campaign = campaign_make(business, channels=["sms"], **campaign_fields)
    member = lapsed(business)
    night(business, D)
    (send,) = sends(business, member=member)
    return campaign, member, send


def inbox(member, at):
    with time_machine.travel(at, tick=False):
        return member_client_for(member).get("/api/v1/member/inbox/").json()["results"]


def api_open(member, send, at):
    with time_machine.travel(at, tick=False):
        return member_client_for(member).post(f"/api/v1/member/inbox/{send.pk}/open/")


def link_path(business, send) -> str:
    (delivery,) = deliveries(business, send=send)
    return "/" + open_url(delivery.pk).split("://", 1)[1].split("/", 1)[1]


def link(method, path, at):
    with time_machine.travel(at, tick=False):
        return getattr(Client(), method)(path)


def stored(send):
    with scopes_disabled():
        return CampaignSend.objects.get(pk=send.pk), WalletReward.objects.get(send_id=send.pk)


def test_at_two_oclock_a_nine_oclock_message_is_not_in_the_inbox(business):
    _, member, send = offer_tonight(business)
    two = at_local(business, D, 2)

    assert inbox(member, two) == []
    assert api_open(member, send, two).status_code == 404
    path = link_path(business, send)
    assert link("get", path, two).status_code == 404
    assert link("post", path, two).status_code == 404
    send, reward = stored(send)
    assert (send.opened_at, reward.status, reward.code) == (None, "offered", None)
    with scopes_disabled():
        assert {d.status for d in deliveries(business, send=send)} == {"scheduled"}


def test_the_claim_itself_refuses_a_send_not_yet_out(business):
    _, _, send = offer_tonight(business)

    with scope(business=business.pk), pytest.raises(CampaignSend.DoesNotExist):
        reward_claim(send=send, at=at_local(business, D, 2))
    with scope(business=business.pk), pytest.raises(CampaignSend.DoesNotExist):
        inbox_open(send=send, at=at_local(business, D, 2))

    send, reward = stored(send)
    assert (send.opened_at, reward.status) == (None, "offered")


def test_once_the_dispatcher_sent_it_it_shows_and_is_claimed_once(business):
    _, member, send = offer_tonight(business)
    run_dispatch(at_local(business, D, 9))
    later = at_local(business, D, 9, 5)

    assert [item["id"] for item in inbox(member, later)] == [send.pk]
    first = api_open(member, send, later)
    second = api_open(member, send, later)
    page = link("post", link_path(business, send), later)

    assert (first.status_code, second.status_code, page.status_code) == (200, 200, 200)
    _, reward = stored(send)
    assert reward.status == "available"
    assert first.json()["reward"]["code"] == second.json()["reward"]["code"] == reward.code
    assert reward.code in page.content.decode()


def test_pausing_before_the_send_leaves_nothing_to_show_or_claim(business):
    campaign, member, send = offer_tonight(business)
    with scope(business=business.pk):
        services.campaign_pause(campaign=campaign, now=at_local(business, D, 8))
    run_dispatch(at_local(business, D, 9))
    later = at_local(business, D, 9, 5)

    assert inbox(member, later) == []
    assert api_open(member, send, later).status_code == 404
    path = link_path(business, send)
    assert link("get", path, later).status_code == 404
    assert link("post", path, later).status_code == 404
    send, reward = stored(send)
    assert (send.outcome, send.opened_at, reward.status) == ("cancelled", None, "cancelled")


def test_returned_and_skipped_sends_leave_the_inbox(business):
    campaign_make(business, channels=["sms"], reward={"kind": "bonus_stamps", "count": 1, "expiry_days": 30})
    back, withdrawn = lapsed(business), lapsed(business)
    night(business, D)
    with time_machine.travel(at_local(business, D, 8), tick=False):
        visit_make(back)  # bought a coffee before the message went
    with scope(business=business.pk):
        from members.services import member_consent_set

        member_consent_set(member=withdrawn, channel="sms", granted=False, source="member_app",
                           at=at_local(business, D, 8))  # fmt: skip
    run_dispatch(at_local(business, D, 9))
    later = at_local(business, D, 9, 5)

    for member, outcome in ((back, "returned"), (withdrawn, "skipped")):
        (send,) = sends(business, member=member)
        assert send.outcome == outcome
        assert inbox(member, later) == []
        assert api_open(member, send, later).status_code == 404
        assert link("post", link_path(business, send), later).status_code == 404
        assert stored(send)[1].status == "cancelled"


def inbox_only(business, **campaign_fields):
    """A campaign whose messages reach the member only in the app's inbox (no channel: no delivery)."""
    campaign = campaign_make(business, channels=["sms"],
                             reward={"kind": "free_item", "item": "cup of coffee", "expiry_days": 30},
                             **campaign_fields)  # fmt: skip
    with scope(business=business.pk):
        Campaign.objects.filter(pk=campaign.pk).update(channels=[])
    return campaign


def test_an_inbox_only_message_shows_and_is_claimable_from_its_send_time(business):
    inbox_only(business)
    member = lapsed(business)
    night(business, D)
    (send,) = sends(business, member=member)
    assert deliveries(business, send=send) == []

    assert inbox(member, at_local(business, D, 8, 59)) == []
    assert api_open(member, send, at_local(business, D, 8, 59)).status_code == 404
    assert [item["id"] for item in inbox(member, at_local(business, D, 9))] == [send.pk]
    opened = api_open(member, send, at_local(business, D, 9))

    assert opened.status_code == 200 and opened.json()["reward"]["status"] == "available"


def test_without_weekends_a_saturday_inbox_message_waits_for_monday(business):
    inbox_only(business, include_weekends=False)
    member = lapsed(business)
    saturday, monday = D + timedelta(days=1), D + timedelta(days=3)
    night(business, saturday)

    assert inbox(member, at_local(business, saturday, 12)) == []
    assert inbox(member, at_local(business, monday, 8, 59)) == []
    assert len(inbox(member, at_local(business, monday, 9))) == 1


def test_pausing_cancels_an_inbox_only_message_before_its_time_not_after(business):
    early, late = inbox_only(business), inbox_only(business)
    member = lapsed(business)
    night(business, D)
    with scope(business=business.pk):
        services.campaign_pause(campaign=early, now=at_local(business, D, 8))
    with time_machine.travel(at_local(business, D, 10), tick=False), scope(business=business.pk):
        services.campaign_pause(campaign=late, now=at_local(business, D, 10))

    by_campaign = {s.campaign_id: s for s in sends(business, member=member)}
    assert {c: s.outcome for c, s in by_campaign.items()} == {early.pk: "cancelled", late.pk: "scheduled"}
    assert [item["id"] for item in inbox(member, at_local(business, D, 11))] == [by_campaign[late.pk].pk]
    assert api_open(member, by_campaign[late.pk], at_local(business, D, 11)).status_code == 200
