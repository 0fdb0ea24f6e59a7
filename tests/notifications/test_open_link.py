"""The signed per-delivery open link: a GET opens, only the POST claims, exactly once."""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CampaignSend
from members.models import Member, Visit, WalletReward
from notifications.dispatcher import open_url
from notifications.models import Delivery
from tests.conftest import business_make, campaign_make, member_make


def offer(business, kind="free_item", phone="+60123456789", attribution_days=14, **details):
    member = member_make(business, first_name="Wei", phone=phone)
    campaign = campaign_make(business, channels=["sms"], title="Hi {first_name}", body="Come back to {business}",
                             attribution_days=attribution_days)  # fmt: skip
    now = timezone.now()
    with scope(business=business.pk):
        send = CampaignSend.objects.create(business=business, campaign=campaign, member=member, send_number=1,
                                           local_date=now.date(), outcome="sent", created_at=now)  # fmt: skip
        delivery = Delivery.objects.create(business=business, send=send, campaign=campaign, member=member,
                                           channel="sms", status="sent", scheduled_at=now, sent_at=now,
                                           created_at=now, updated_at=now)  # fmt: skip
        WalletReward.objects.create(business=business, member=member, send=send, kind=kind, title="a free latte",
                                    details={"kind": kind, **details}, status="offered", offered_at=now,
                                    expires_at=now + timedelta(days=30))  # fmt: skip
    path = open_url(delivery.pk).split("://", 1)[1].split("/", 1)[1]
    return member, send, delivery, "/" + path


@pytest.fixture
def shop(db):
    return business_make(channel_settings={"sms": {"enabled": True}})


def reward_of(send):
    with scopes_disabled():
        return WalletReward.objects.get(send_id=send.pk)


def test_fetching_the_link_opens_the_message_and_issues_no_reward(shop):
    member, send, delivery, path = offer(shop)

    for _ in range(3):  # mail scanners and link previews fetch it too
        page = Client().get(path)

    assert page.status_code == 200
    body = page.content.decode()
    assert "Hi Wei" in body and "Come back to Business" in body
    assert 'id="claim"' in body
    assert reward_of(send).status == "offered"
    with scopes_disabled():
        assert Delivery.objects.get(pk=delivery.pk).status == "opened"
        assert CampaignSend.objects.get(pk=send.pk).opened_at is not None


def test_the_add_to_wallet_post_claims_once(shop):
    member, send, delivery, path = offer(shop)
    client = Client()

    first = client.post(path)
    second = client.post(path)

    reward = reward_of(send)
    assert reward.status == "available" and len(reward.code) == 10
    assert reward.code in first.content.decode() and reward.code in second.content.decode()
    assert "Added to your wallet" in first.content.decode()
    assert "Added to your wallet" not in second.content.decode()


def test_bonus_stamps_are_credited_once_as_a_campaign_reward(shop):
    member, send, delivery, path = offer(shop, kind="bonus_stamps", count=2)

    Client().post(path)
    Client().post(path)

    with scopes_disabled():
        assert Member.objects.get(pk=member.pk).stamps_balance == 2
        assert Visit.objects.filter(member=member, kind="campaign_reward").count() == 1
        assert Member.objects.get(pk=member.pk).last_purchase_at is None  # a reward is not a purchase


def test_a_forged_link_is_404(shop):
    assert Client().get("/m/not-a-token/").status_code == 404


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_claims_at_once_issue_exactly_one_reward():
    business = business_make(channel_settings={"sms": {"enabled": True}})
    member, send, delivery, path = offer(business, kind="bonus_points", count=50)
    barrier = threading.Barrier(4)
    errors = []

    def claim():
        try:
            barrier.wait()
            Client().post(path)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with scopes_disabled():
        assert Member.objects.get(pk=member.pk).points_balance == 50
        assert Visit.objects.filter(member=member, kind="campaign_reward").count() == 1
    assert reward_of(send).status == "redeemed"


def test_a_second_add_to_wallet_says_it_is_already_there(shop):
    member, send, delivery, path = offer(shop)

    first, second = Client().post(path).content.decode(), Client().post(path).content.decode()

    assert "Added to your wallet" in first and "Already in your wallet" not in first
    assert "Already in your wallet" in second and "Added to your wallet" not in second


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_concurrent_claimers_only_the_one_who_claimed_is_told_it_was_added():
    from tests.campaigns.test_concurrency import together

    business = business_make(channel_settings={"sms": {"enabled": True}})
    member, send, delivery, path = offer(business, kind="free_item")

    pages = together(4, lambda i: Client().post(path).content.decode())

    assert sum("Added to your wallet" in page for page in pages) == 1
    assert sum("Already in your wallet" in page for page in pages) == 3
    assert {reward_of(send).code} == {page.split('id="reward-code">', 1)[1].split("<", 1)[0] for page in pages}


# --- the link's lifetime: the campaign's attribution window plus a week, from the send ----------

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("UTC"))


def test_the_link_works_until_the_attribution_window_plus_a_week_then_says_it_expired(shop):
    with time_machine.travel(T0, tick=False):
        member, send, delivery, path = offer(shop)  # attribution window: 14 days
    with time_machine.travel(T0 + timedelta(days=21) - timedelta(minutes=1), tick=False):
        last_day = Client().get(path)
    with time_machine.travel(T0 + timedelta(days=21, minutes=1), tick=False):
        expired = Client().get(path)
        claim = Client().post(path)

    assert last_day.status_code == 200
    assert expired.status_code == claim.status_code == 410
    text = expired.content.decode()
    assert "This link has expired" in text and f"/w/{shop.slug}/" in text
    assert "Hi Wei" not in text and member.card_code not in text
    assert reward_of(send).status == "offered"  # the late POST claimed nothing


def test_a_longer_attribution_window_keeps_the_link_longer(shop):
    with time_machine.travel(T0, tick=False):
        member, send, delivery, path = offer(shop, attribution_days=60)
    with time_machine.travel(T0 + timedelta(days=60), tick=False):
        page = Client().get(path)

    assert page.status_code == 200


# --- codes: shown only in the browser that claimed ----------------------------------------------


def test_a_fetch_of_the_link_shows_no_card_code(shop):
    member, send, delivery, path = offer(shop)

    page = Client().get(path).content.decode()

    assert member.card_code not in page


def test_the_claiming_browser_sees_the_codes_again_and_another_browser_does_not(shop):
    member, send, delivery, path = offer(shop)
    claimer = Client()
    claimer.post(path)
    code = reward_of(send).code

    again = claimer.get(path).content.decode()
    forwarded = Client().get(path).content.decode()

    assert code in again and member.card_code in again
    assert code not in forwarded and member.card_code not in forwarded
    assert "Open your wallet to see the code" in forwarded
    assert 'id="show-code"' in forwarded  # the explicit POST shows it (the claim, already made)


def test_a_claim_cookie_of_another_link_does_not_show_this_one(shop):
    member, send, delivery, path = offer(shop)
    other_member, other_send, other_delivery, other_path = offer(shop, phone="+60129990000")
    client = Client()
    client.post(other_path)
    Client().post(path)  # claimed elsewhere
    code = reward_of(send).code

    page = client.get(path).content.decode()

    assert code not in page and member.card_code not in page
