"""The member app: profile, card, visits, preferences, erasure, wallet, inbox, open and claim."""

from datetime import date, timedelta

import time_machine
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CampaignSend
from members.models import ConsentEvent, Member, MemberToken, Visit, WalletReward
from notifications.models import Delivery, DeliveryEvent, PushSubscription
from tests.api.conftest import send_make
from tests.conftest import campaign_make, member_make, visit_make


def test_the_profile_shows_the_member_and_their_business(member_api, member):
    response = member_api.get("/api/v1/member/me/")

    assert response.status_code == 200
    assert response.json() == {
        "id": member.pk,
        "first_name": "Wei",
        "last_name": "Lin",
        "email": "wei@example.com",
        "phone": "+60123456789",
        "birthday": None,
        "joined_on": member.joined_on.isoformat(),
        "business": {"name": "Kopi Corner", "slug": "kopi", "currency": "MYR", "program_type": "both"},
    }


def test_the_member_edits_name_email_and_birthday_but_not_phone_or_balances(member_api, member):
    body = {"first_name": "Wei Ling", "email": "WL@Example.com", "birthday": "1990-04-01", "phone": "+60111111111",
            "stamps_balance": 99, "status": "erased", "business": 999}  # fmt: skip

    response = member_api.patch("/api/v1/member/me/", body, format="json")

    assert response.status_code == 200
    with scopes_disabled():
        saved = Member.objects.get(pk=member.pk)
    assert (saved.first_name, saved.email, saved.birthday) == ("Wei Ling", "wl@example.com", date(1990, 4, 1))
    assert (saved.phone, saved.stamps_balance, saved.status, saved.business_id) == (
        "+60123456789", 0, "active", member.business_id)  # fmt: skip


def test_an_invalid_email_is_a_field_error(member_api):
    response = member_api.patch("/api/v1/member/me/", {"email": "not-an-email"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid", "message": "Some fields are not valid.",
                  "fields": {"email": ["Enter a valid email address."]}}
    }  # fmt: skip


def test_the_card_shows_balances_and_stamps_to_a_full_card(member_api, member):
    for _ in range(13):
        visit_make(member)

    response = member_api.get("/api/v1/member/card/")

    assert response.json() == {
        "card_code": member.card_code,
        "qr_svg_url": "/api/v1/member/card/qr.svg",
        "program_type": "both",
        "stamps_balance": 13,
        "points_balance": 0,
        "stamps_per_card": 10,
        "stamps_on_card": 3,
        "stamps_to_full_card": 7,
        "full_cards": 1,
        "badges": [],
    }


def test_the_card_qr_is_an_svg(member_api):
    response = member_api.get("/api/v1/member/card/qr.svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<?xml")


def test_visits_are_listed_newest_first_with_cursor_pages(member_api, member):
    visit_make(member, days_ago=3)
    visit_make(member, days_ago=1)
    visit_make(member, days_ago=2)

    first = member_api.get("/api/v1/member/visits/?page_size=2").json()
    second = member_api.get(first["next"]).json()

    days = [v["occurred_at"][:10] for v in first["results"] + second["results"]]
    assert days == sorted(days, reverse=True) and len(days) == 3
    assert second["next"] is None


def test_preferences_grant_and_withdraw_consent_with_time_and_source(member_api, member):
    response = member_api.patch("/api/v1/member/preferences/", {"sms": True, "email": False}, format="json")

    assert response.status_code == 200
    by_channel = {row["channel"]: row for row in response.json()}
    assert by_channel["sms"]["granted"] is True and by_channel["sms"]["source"] == "member_app"
    assert by_channel["email"] == {"channel": "email", "granted": False, "changed_at": None, "source": None}
    with scopes_disabled():
        event = ConsentEvent.objects.get(member=member)
    assert (event.channel, event.granted, event.source) == ("sms", True, "member_app")


def test_erasing_the_account_removes_personal_data_and_signs_out(member_api, member):
    response = member_api.post("/api/v1/member/me/erase/")

    assert response.status_code == 204
    with scopes_disabled():
        erased = Member.objects.get(pk=member.pk)
        assert MemberToken.objects.filter(member=member, revoked_at__isnull=True).count() == 0
    assert (erased.status, erased.phone, erased.first_name) == ("erased", "", "")
    assert member_api.get("/api/v1/member/me/").status_code == 401


def test_the_inbox_lists_messages_newest_first_rendered_for_the_member(member_api, member):
    campaign = campaign_make(member.business, title="We miss you, {first_name}!",
                             body="Come back to {business} for {reward}.", reward={"kind": "free_item", "item": "cup of coffee"})  # fmt: skip
    older = send_make(member, campaign=campaign, local_date=date(2026, 1, 1))
    newer = send_make(member, reward_kind=None)
    send_make(member, outcome="control")
    send_make(member, outcome="capped")

    response = member_api.get("/api/v1/member/inbox/")

    items = response.json()["results"]
    assert [i["id"] for i in items] == [newer.pk, older.pk]
    assert items[1]["title"] == "We miss you, Wei!"
    assert items[1]["body"] == "Come back to Kopi Corner for a free cup of coffee."
    assert items[1]["reward"]["status"] == "offered" and items[1]["reward"]["code"] is None
    assert items[0]["reward"] is None


def test_variant_b_members_read_variant_b(member_api, member):
    campaign = campaign_make(member.business, ab_enabled=True, variant_b_title="B for {first_name}",
                             variant_b_body="Variant B body")  # fmt: skip
    send_make(member, campaign=campaign, arm="b", reward_kind=None)

    item = member_api.get("/api/v1/member/inbox/").json()["results"][0]

    assert (item["title"], item["body"]) == ("B for Wei", "Variant B body")


def test_days_away_is_counted_from_the_last_purchase_before_the_message(member_api, member):
    campaign = campaign_make(member.business, body="It has been {days_away} days.")
    visit_make(member, days_ago=20)
    send = send_make(member, campaign=campaign, reward_kind=None)
    visit_make(member, days_ago=0)  # returned since: still 20 days in the message

    item = member_api.get("/api/v1/member/inbox/").json()["results"][0]

    expected = (send.local_date - (timezone.now() - timedelta(days=20)).astimezone(member.business.tzinfo).date()).days
    assert item["body"] == f"It has been {expected} days."


def test_opening_a_message_marks_it_opened_and_puts_a_free_item_in_the_wallet(member_api, member):
    send = send_make(member, reward_kind="free_item")

    response = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    assert response.status_code == 200
    reward = response.json()["reward"]
    assert reward["status"] == "available" and len(reward["code"]) == 10
    with scopes_disabled():
        assert CampaignSend.objects.get(pk=send.pk).opened_at is not None
        assert Delivery.objects.get(send=send).status == "opened"
        assert DeliveryEvent.objects.get().status == "opened"
        stored = WalletReward.objects.get(send=send)
    assert (stored.status, stored.code) == ("available", reward["code"])
    wallet = member_api.get("/api/v1/member/wallet/").json()["results"]
    assert [(r["title"], r["status"], r["code"]) for r in wallet] == [
        ("a free cup of coffee", "available", stored.code)
    ]


def test_opening_twice_claims_once(member_api, member):
    send = send_make(member, reward_kind="free_item")

    first = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/").json()
    second = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/").json()

    assert first["reward"]["code"] == second["reward"]["code"]
    assert first["opened_at"] == second["opened_at"]
    with scopes_disabled():
        assert DeliveryEvent.objects.count() == 1


def test_bonus_stamps_are_credited_once_as_a_campaign_reward(member_api, member):
    send = send_make(member, reward_kind="bonus_stamps")

    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")
    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    with scopes_disabled():
        visit = Visit.objects.get(member=member)
        saved = Member.objects.get(pk=member.pk)
        reward = WalletReward.objects.get(send=send)
    assert (visit.kind, visit.stamps_delta, visit.idempotency_key) == ("campaign_reward", 2, f"claim:{send.pk}")
    assert (saved.stamps_balance, saved.purchase_count, saved.last_purchase_at) == (2, 0, None)
    assert reward.status == "redeemed"


def test_bonus_points_are_credited_as_points(member_api, member):
    send = send_make(member, reward_kind="bonus_points")

    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    with scopes_disabled():
        assert Member.objects.get(pk=member.pk).points_balance == 50


def test_an_offer_past_its_expiry_lapses_when_opened(member_api, member):
    send = send_make(member, reward_kind="discount", expires_in_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    assert response.json()["reward"]["status"] == "expired"
    with scopes_disabled():
        assert WalletReward.objects.get(send=send).status == "expired"


def test_an_available_reward_past_its_expiry_reads_expired_in_the_wallet(member_api, member):
    send = send_make(member, reward_kind="free_item", expires_in_days=1)
    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        wallet = member_api.get("/api/v1/member/wallet/").json()["results"]
        available = member_api.get("/api/v1/member/wallet/?status=available").json()["results"]

    assert [(r["status"], r["code"]) for r in wallet] == [("expired", None)]
    assert available == []


def test_offered_rewards_are_not_in_the_wallet_yet(member_api, member):
    send_make(member, reward_kind="free_item")

    assert member_api.get("/api/v1/member/wallet/").json()["results"] == []


def test_a_cancelled_send_cannot_be_opened(member_api, member):
    send = send_make(member, outcome="cancelled")

    response = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    assert response.status_code == 404
    with scopes_disabled():
        assert WalletReward.objects.get(send=send).status == "offered"


def test_another_members_message_is_404_and_nothing_changes(member_api, business):
    neighbour = member_make(business, first_name="Ana")
    send = send_make(neighbour, reward_kind="bonus_stamps")

    response = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    with scopes_disabled():
        assert CampaignSend.objects.get(pk=send.pk).opened_at is None
        assert WalletReward.objects.get(send=send).status == "offered"


def test_a_push_subscription_is_registered_updated_and_removed(member_api, member):
    subscription = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "expirationTime": None,
                    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                             "auth": "tBHItJI5svbpez7KI4CCXg"}}  # fmt: skip

    created = member_api.post("/api/v1/member/push-subscriptions/", subscription, format="json")
    again = member_api.post("/api/v1/member/push-subscriptions/", subscription, format="json")
    listed = member_api.get("/api/v1/member/push-subscriptions/").json()["results"]

    assert (created.status_code, again.status_code) == (201, 200)
    assert [s["endpoint"] for s in listed] == ["https://fcm.googleapis.com/fcm/send/abc"]
    with scope(business=member.business_id):
        assert Member.objects.get(pk=member.pk).consent_push is True
    removed = member_api.delete(f"/api/v1/member/push-subscriptions/{created.json()['id']}/")
    assert removed.status_code == 204
    with scopes_disabled():
        assert PushSubscription.objects.count() == 0


def test_a_push_subscription_needs_an_https_endpoint_and_keys(member_api):
    response = member_api.post("/api/v1/member/push-subscriptions/", {"endpoint": "http://x.example/"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "endpoint": ["A push endpoint is an https:// URL of a known push service (Chrome, Firefox, Safari, Edge)."],
        "keys": ["This field is required."],
    }


def test_a_member_token_does_not_open_owner_or_pos_endpoints(member_api, member):
    assert member_api.get("/api/v1/members/").status_code == 403
    assert member_api.get(f"/api/v1/pos/members/{member.pk}/").status_code == 403


def test_the_inbox_costs_the_same_queries_for_one_message_or_ten(member_api, member, django_assert_num_queries):
    for _ in range(10):
        send_make(member)

    # The token with its member and business; the campaigns' send-at times (for what is visible);
    # the page of sends with their campaign, business and last purchase; their rewards; the token's
    # last-used stamp.
    with django_assert_num_queries(5):
        response = member_api.get("/api/v1/member/inbox/")

    assert len(response.json()["results"]) == 10


def test_the_api_docs_page_renders(db):
    from django.test import Client

    assert Client().get("/api/docs/").status_code == 200


def test_another_members_reward_and_device_of_the_same_business_are_404(member_api, business):
    from notifications import inbox
    from tests.api.conftest import member_client_for

    neighbour = member_make(business, first_name="Ana")
    send = send_make(neighbour, reward_kind="free_item")
    with scope(business=business.pk):
        reward = inbox.reward_claim(send=send, at=timezone.now())
    device = member_client_for(neighbour).token

    seen = member_api.get(f"/api/v1/member/wallet/{reward.pk}/")
    revoked = member_api.delete(f"/api/v1/member/devices/{device.pk}/")

    assert (seen.status_code, revoked.status_code) == (404, 404)
    assert reward.code not in seen.content.decode()
    with scopes_disabled():
        assert MemberToken.objects.get(pk=device.pk).revoked_at is None


def test_the_open_says_whether_it_was_this_one_that_claimed(member_api, member):
    send = send_make(member, reward_kind="bonus_points")

    first = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/").json()
    second = member_api.post(f"/api/v1/member/inbox/{send.pk}/open/").json()

    assert (first["claimed"], second["claimed"]) == (True, False)
    assert first["reward"]["status"] == second["reward"]["status"] == "redeemed"


def test_claiming_a_badge_puts_it_on_the_member_once(member_api, member):
    send = send_make(member, reward_kind="badge")
    again = send_make(member, reward_kind="badge")  # the same badge from a later message

    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")
    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")
    member_api.post(f"/api/v1/member/inbox/{again.pk}/open/")

    assert member_api.get("/api/v1/member/card/").json()["badges"] == ["Regular"]
    with scopes_disabled():
        assert set(WalletReward.objects.filter(member=member).values_list("status", flat=True)) == {"available"}


def test_an_offered_badge_is_not_on_the_member_before_the_claim(member_api, member):
    send_make(member, reward_kind="badge")

    assert member_api.get("/api/v1/member/card/").json()["badges"] == []
