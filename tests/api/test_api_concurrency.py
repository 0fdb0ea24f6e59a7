"""Every claim runs concurrently with itself (PostgreSQL's row locks; deselected on SQLite)."""

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from members import apiauth
from members.models import Member, MemberToken, Visit, WalletReward
from notifications import inbox
from notifications.models import DeliveryEvent
from tests.api.conftest import member_client_for, pos_client_for, send_make
from tests.campaigns.test_concurrency import together
from tests.conftest import business_make, member_make, sign_in_code_sent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop():
    business = business_make(name="Kopi Corner", slug="kopi")
    member = member_make(business, first_name="Wei", phone="+60123456789")
    return business, member


def test_two_devices_opening_one_message_at_once_get_one_reward(shop):
    _, member = shop
    send = send_make(member, reward_kind="bonus_stamps")
    devices = [member_client_for(member, f"device {i}") for i in range(4)]

    statuses = together(4, lambda i: devices[i].post(f"/api/v1/member/inbox/{send.pk}/open/").status_code)

    assert statuses == [200] * 4
    with scopes_disabled():
        assert Visit.objects.filter(member=member).count() == 1
        assert Member.objects.get(pk=member.pk).stamps_balance == 2
        assert WalletReward.objects.get(send=send).status == "redeemed"
        assert DeliveryEvent.objects.filter(status="opened").count() == 1


def test_concurrent_opens_of_a_free_item_issue_one_code_and_tell_one_device_it_claimed(shop):
    _, member = shop
    send = send_make(member, reward_kind="free_item")
    devices = [member_client_for(member, f"device {i}") for i in range(4)]

    bodies = together(4, lambda i: devices[i].post(f"/api/v1/member/inbox/{send.pk}/open/").json())

    with scopes_disabled():
        stored = WalletReward.objects.get(send=send)
    assert {body["reward"]["code"] for body in bodies} == {stored.code}
    assert stored.status == "available"
    assert sorted(body["claimed"] for body in bodies) == [False, False, False, True]


def test_badges_claimed_at_once_land_on_the_member_each_once(shop):
    business, member = shop
    regular = send_make(member, reward_kind="badge")
    owl = send_make(member, reward_kind="badge")
    with scopes_disabled():
        WalletReward.objects.filter(send=owl).update(details={"kind": "badge", "badge": "Night owl"})
    devices = [member_client_for(member, f"device {i}") for i in range(4)]

    together(4, lambda i: devices[i].post(f"/api/v1/member/inbox/{(regular, owl)[i % 2].pk}/open/").status_code)

    with scopes_disabled():
        assert sorted(Member.objects.get(pk=member.pk).badges) == ["Night owl", "Regular"]


def test_two_tills_redeeming_one_code_at_once_redeem_it_once(shop):
    business, member = shop
    send = send_make(member, reward_kind="free_item")
    with scope(business=business.pk):
        code = inbox.reward_claim(send=send, at=timezone.now()).code
    tills = [pos_client_for(business, f"till {i}") for i in range(4)]

    statuses = together(
        4, lambda i: tills[i].post("/api/v1/pos/rewards/redeem/", {"code": code}, format="json").status_code
    )

    assert sorted(statuses) == [200, 409, 409, 409]
    with scopes_disabled():
        assert Visit.objects.filter(member=member, kind="redemption").count() == 1


def test_a_retried_stamp_racing_its_original_stamps_once(shop):
    business, member = shop
    tills = [pos_client_for(business, f"till {i}") for i in range(4)]
    url = f"/api/v1/pos/members/{member.pk}/visits/"

    bodies = together(
        4, lambda i: tills[i].post(url, {"stamps": 1}, format="json", HTTP_IDEMPOTENCY_KEY="race-1").json()
    )

    assert len({b["id"] for b in bodies}) == 1
    with scopes_disabled():
        assert Member.objects.get(pk=member.pk).stamps_balance == 1


def test_one_code_exchanged_twice_at_once_signs_in_once(shop):
    business, member = shop
    with scope(business=business.pk):
        request = apiauth.code_request(business=business, phone="+60123456789", client_ip="127.0.0.1")
    assert request.sent
    code = sign_in_code_sent("+60123456789")  # sent on commit: with autocommit it is already out
    body = {"business": "kopi", "phone": "+60123456789", "code": code}

    statuses = together(4, lambda i: APIClient().post("/api/v1/member/auth/token/", body, format="json").status_code)

    assert sorted(statuses) == [200, 400, 400, 400]
    with scopes_disabled():
        assert MemberToken.objects.count() == 1
