"""Point of sale: API keys, member lookup, idempotent stamping, redeeming a reward once."""

from datetime import timedelta

import time_machine
from django.utils import timezone
from django_scopes import scopes_disabled

from members.models import ApiKey, Member, Visit, WalletReward
from tests.api.conftest import pos_client_for, send_make
from tests.conftest import member_make


def claim(member, kind="free_item", **kwargs) -> WalletReward:
    from notifications import inbox

    send = send_make(member, reward_kind=kind, **kwargs)
    from django_scopes import scope

    with scope(business=member.business_id):
        return inbox.reward_claim(send=send, at=timezone.now())


def test_an_owner_creates_a_key_sees_its_secret_once_and_lists_it_without(owner_api, business):
    created = owner_api.post("/api/v1/api-keys/", {"name": "Front till"}, format="json")
    listed = owner_api.get("/api/v1/api-keys/").json()["results"]

    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("wbk_") and len(secret) > 40
    assert [set(k) for k in listed] == [
        {"id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"}
    ]
    assert secret not in str(listed)
    with scopes_disabled():
        assert secret not in str(list(ApiKey.objects.values()))


def test_a_revoked_key_is_refused(owner_api, business, member):
    secret = owner_api.post("/api/v1/api-keys/", {"name": "Till"}, format="json").json()["secret"]
    key_id = owner_api.get("/api/v1/api-keys/").json()["results"][0]["id"]
    from rest_framework.test import APIClient

    pos = APIClient()
    pos.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    before = pos.get(f"/api/v1/pos/members/{member.pk}/")

    revoked = owner_api.delete(f"/api/v1/api-keys/{key_id}/")
    after = pos.get(f"/api/v1/pos/members/{member.pk}/")

    assert (before.status_code, revoked.status_code, after.status_code) == (200, 204, 401)


def test_a_key_with_an_expiry_stops_working_then(owner_api, member):
    secret = owner_api.post("/api/v1/api-keys/", {"name": "Till", "expires_in_days": 1}, format="json").json()["secret"]
    from rest_framework.test import APIClient

    pos = APIClient()
    pos.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert pos.get(f"/api/v1/pos/members/{member.pk}/").status_code == 401


def test_staff_cannot_manage_keys(staff_api):
    response = staff_api.post("/api/v1/api-keys/", {"name": "Till"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_lookup_by_card_code_or_phone(pos_api, member):
    by_card = pos_api.get("/api/v1/pos/members/lookup/", {"card_code": member.card_code.lower()})
    by_phone = pos_api.get("/api/v1/pos/members/lookup/", {"phone": "012-345 6789"})
    missing = pos_api.get("/api/v1/pos/members/lookup/", {"card_code": "NOPE1234"})

    assert by_card.json()["id"] == by_phone.json()["id"] == member.pk
    assert by_card.json()["available_rewards"] == []
    assert missing.status_code == 404


def test_lookup_needs_one_of_card_code_or_phone(pos_api, member):
    response = pos_api.get("/api/v1/pos/members/lookup/")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"card_code": ["Give a card code or a phone number (one of them)."]}


def test_stamping_records_a_purchase_from_the_api(pos_api, member):
    response = pos_api.post(
        f"/api/v1/pos/members/{member.pk}/visits/",
        {"stamps": 1, "amount": "12.50"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="till1-0001",
    )

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("member", "kind", "stamps_delta", "points_delta", "amount", "source")} == {
        "member": member.pk, "kind": "purchase", "stamps_delta": 1, "points_delta": 0, "amount": "12.50",
        "source": "api"}  # fmt: skip
    with scopes_disabled():
        saved = Member.objects.get(pk=member.pk)
    assert (saved.stamps_balance, saved.purchase_count) == (1, 1)


def test_a_replayed_idempotency_key_stamps_once_and_answers_the_first_result(pos_api, member):
    url = f"/api/v1/pos/members/{member.pk}/visits/"

    first = pos_api.post(url, {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="till1-0002")
    second = pos_api.post(url, {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="till1-0002")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() == second.json()
    assert "Idempotent-Replayed" not in first and second["Idempotent-Replayed"] == "true"
    with scopes_disabled():
        assert Visit.objects.filter(member=member).count() == 1
        assert Member.objects.get(pk=member.pk).stamps_balance == 1


def test_the_idempotency_key_can_come_in_the_body(pos_api, member):
    url = f"/api/v1/pos/members/{member.pk}/visits/"

    pos_api.post(url, {"stamps": 1, "idempotency_key": "body-1"}, format="json")
    pos_api.post(url, {"stamps": 1, "idempotency_key": "body-1"}, format="json")

    with scopes_disabled():
        assert Visit.objects.filter(member=member).count() == 1


def test_a_visit_without_an_idempotency_key_is_refused(pos_api, member):
    response = pos_api.post(f"/api/v1/pos/members/{member.pk}/visits/", {"stamps": 1}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["idempotency_key"]


def test_a_key_reused_for_another_member_is_a_conflict(pos_api, member, business):
    other = member_make(business)
    pos_api.post(f"/api/v1/pos/members/{member.pk}/visits/", {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    response = pos_api.post(
        f"/api/v1/pos/members/{other.pk}/visits/", {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


def test_a_redemption_cannot_take_more_stamps_than_the_card_has(pos_api, member):
    response = pos_api.post(
        f"/api/v1/pos/members/{member.pk}/visits/", {"kind": "redemption", "stamps": -10}, format="json",
        HTTP_IDEMPOTENCY_KEY="r-1",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"stamps": ["The card has only 0 stamps."]}


def test_a_purchase_cannot_take_stamps_away(pos_api, member):
    response = pos_api.post(
        f"/api/v1/pos/members/{member.pk}/visits/", {"stamps": -1}, format="json", HTTP_IDEMPOTENCY_KEY="r-2"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"stamps": ["A purchase cannot take stamps or points away."]}


def test_a_staff_user_can_stamp_with_their_token(staff_api, staff, member):
    response = staff_api.post(
        f"/api/v1/pos/members/{member.pk}/visits/", {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="s-1"
    )

    assert response.status_code == 201
    with scopes_disabled():
        assert Visit.objects.get(member=member).recorded_by == staff


def test_redeeming_a_reward_once(pos_api, member):
    reward = claim(member, "free_item")

    first = pos_api.post("/api/v1/pos/rewards/redeem/", {"code": reward.code.lower()}, format="json")
    second = pos_api.post("/api/v1/pos/rewards/redeem/", {"code": reward.code}, format="json")

    assert first.status_code == 200
    assert first.json()["status"] == "redeemed"
    assert second.status_code == 409
    assert second.json()["error"] == {"code": "already_redeemed", "message": "This reward was already redeemed.",
                                      "fields": {}}  # fmt: skip
    with scopes_disabled():
        visit = Visit.objects.get(member=member)
        saved = Member.objects.get(pk=member.pk)
    assert (visit.kind, visit.stamps_delta, visit.points_delta, visit.note) == (
        "redemption", 0, 0, "Redeemed a free cup of coffee")  # fmt: skip
    assert (saved.purchase_count, saved.last_purchase_at) == (0, None)


def test_a_badge_is_redeemed_without_a_ledger_entry(pos_api, member):
    reward = claim(member, "badge")

    response = pos_api.post("/api/v1/pos/rewards/redeem/", {"code": reward.code}, format="json")

    assert response.status_code == 200
    with scopes_disabled():
        assert Visit.objects.filter(member=member).count() == 0


def test_an_expired_reward_cannot_be_redeemed_and_nothing_changes(pos_api, member):
    reward = claim(member, "discount", expires_in_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = pos_api.post("/api/v1/pos/rewards/redeem/", {"code": reward.code}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "expired"
    with scopes_disabled():
        assert WalletReward.objects.get(pk=reward.pk).status == "available"
        assert Visit.objects.filter(member=member).count() == 0


def test_another_business_code_is_not_found_and_nothing_changes(pos_api, other_member):
    reward = claim(other_member, "free_item")

    response = pos_api.post("/api/v1/pos/rewards/redeem/", {"code": reward.code}, format="json")

    assert response.status_code == 404
    with scopes_disabled():
        assert WalletReward.objects.get(pk=reward.pk).status == "available"


def test_the_member_card_lists_available_rewards_without_codes(pos_api, member):
    reward = claim(member, "free_item")

    body = pos_api.get(f"/api/v1/pos/members/{member.pk}/").json()

    assert body["available_rewards"] == [
        {"id": reward.pk, "kind": "free_item", "title": "a free cup of coffee",
         "expires_at": body["available_rewards"][0]["expires_at"]}
    ]  # fmt: skip
    assert reward.code not in str(body)


def test_a_key_of_business_b_cannot_stamp_business_a(member, other_business):
    pos_b = pos_client_for(other_business)

    response = pos_b.post(
        f"/api/v1/pos/members/{member.pk}/visits/", {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="x-1"
    )

    assert response.status_code == 404
    with scopes_disabled():
        assert Visit.objects.count() == 0
