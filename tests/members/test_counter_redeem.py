"""Staff redeem a wallet reward at the counter (the stamp page) and in the admin: by its code or
from the member's card, exactly once, through the service the point-of-sale API uses."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from members import wallet
from members.models import Visit, WalletReward
from notifications import inbox
from tests.api.conftest import send_make
from tests.campaigns.test_concurrency import together
from tests.conftest import business_make, client_for, member_make, user_make


def claim(member, kind="free_item", **kwargs) -> WalletReward:
    send = send_make(member, reward_kind=kind, **kwargs)
    with scope(business=member.business_id):
        return inbox.reward_claim(send=send, at=timezone.now())


def stored(reward) -> WalletReward:
    with scopes_disabled():
        return WalletReward.objects.get(pk=reward.pk)


def visits(member) -> list[Visit]:
    with scopes_disabled():
        return list(Visit.objects.filter(member=member).select_related("recorded_by"))


def typed(code: str) -> str:
    """As staff type it off a phone: lower case, in groups."""
    return f" {code[:4].lower()}-{code[4:7].lower()} {code[7:]} "


# --- by its code ---------------------------------------------------------------------------------


def test_staff_redeem_a_typed_code_once_as_a_redemption_visit(staff_client, staff, member):
    reward = claim(member, "free_item")

    response = staff_client.post("/stamp/redeem/", {"code": typed(reward.code)}, follow=True)

    assert response.redirect_chain == [(f"/stamp/{member.pk}/", 302)]
    assert "Redeemed a free cup of coffee for Wei Lin." in response.content.decode()
    assert stored(reward).status == "redeemed"
    [visit] = visits(member)
    assert (visit.kind, visit.source, visit.recorded_by, visit.stamps_delta, visit.points_delta) == (
        "redemption", "stamp_page", staff, 0, 0)  # fmt: skip


def test_a_second_redeem_says_already_redeemed_and_writes_nothing(staff_client, member):
    reward = claim(member, "discount")
    staff_client.post("/stamp/redeem/", {"code": reward.code})
    first = stored(reward).redeemed_at

    response = staff_client.post("/stamp/redeem/", {"code": reward.code})

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="redeem-code-error"' in body and "This reward was already redeemed." in body
    assert stored(reward).redeemed_at == first
    assert len(visits(member)) == 1


def test_an_expired_code_says_expired_and_changes_nothing(staff_client, member):
    reward = claim(member, "free_item", expires_in_days=1)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = staff_client.post("/stamp/redeem/", {"code": reward.code})

    assert "This reward has expired." in response.content.decode()
    assert stored(reward).status == "available"
    assert visits(member) == []


def test_another_business_code_is_not_found_and_changes_nothing(staff_client, member, other_member):
    reward = claim(other_member, "free_item")

    response = staff_client.post("/stamp/redeem/", {"code": reward.code})

    body = response.content.decode()
    assert "No reward with this code." in body
    assert other_member.first_name not in body
    assert stored(reward).status == "available"
    assert visits(other_member) == []


@pytest.mark.parametrize("code", ["", "hello", "ABCDEFGHJK1", "ABCDE0GHJK"])
def test_something_that_is_no_code_says_so_at_the_field(staff_client, code):
    response = staff_client.post("/stamp/redeem/", {"code": code})

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="redeem-code-error"' in body
    assert "A reward code has 10 letters and digits" in body


def test_a_badge_is_redeemed_without_a_ledger_entry(staff_client, member):
    reward = claim(member, "badge")

    response = staff_client.post("/stamp/redeem/", {"code": reward.code}, follow=True)

    assert "Redeemed the “Regular” badge for Wei Lin." in response.content.decode()
    assert stored(reward).status == "redeemed"
    assert visits(member) == []


def test_the_stamp_page_has_the_code_field_at_the_top(staff_client):
    body = staff_client.get("/stamp/").content.decode()

    assert body.index('name="code"') < body.index('name="q"')
    assert 'action="/stamp/redeem/"' in body and 'method="post"' in body


# --- from the member's card ---------------------------------------------------------------------


def test_the_card_lists_available_rewards_with_expiry_and_a_redeem_button_each(staff_client, member):
    coffee = claim(member, "free_item")
    discount = claim(member, "discount", expires_in_days=3)
    used = claim(member, "badge")
    with scope(business=member.business_id):
        wallet.reward_redeem(code=used.code, at=timezone.now())
    claim(member, "free_item", expires_in_days=-1)  # lapsed already: not offered at the counter

    response = staff_client.get(f"/stamp/{member.pk}/")

    assert [r.pk for r in response.context["rewards"]] == [discount.pk, coffee.pk]
    body = response.content.decode()
    assert f'action="/stamp/{member.pk}/rewards/{coffee.pk}/redeem/"' in body
    assert "a free cup of coffee" in body and "20% off" in body and "Regular" not in body
    until = stored(discount).expires_at.astimezone(member.business.tzinfo)
    assert f"valid until {until:%-d %b %Y, %H:%M}" in body
    assert coffee.code not in body  # the member shows the code; the button does not need it


def test_redeeming_from_the_card_uses_the_same_service(staff_client, staff, member):
    reward = claim(member, "free_item")
    url = f"/stamp/{member.pk}/rewards/{reward.pk}/redeem/"

    first = staff_client.post(url, follow=True)
    second = staff_client.post(url, follow=True)

    assert "Redeemed a free cup of coffee for Wei Lin." in first.content.decode()
    assert "This reward was already redeemed." in second.content.decode()
    assert stored(reward).status == "redeemed"
    [visit] = visits(member)
    assert (visit.source, visit.recorded_by) == ("stamp_page", staff)


def test_another_business_member_or_reward_by_id_is_404_and_changes_nothing(staff_client, member, other_member):
    theirs = claim(other_member, "free_item")
    mine = claim(member, "free_item")

    assert staff_client.get(f"/stamp/{other_member.pk}/").status_code == 404
    assert staff_client.post(f"/stamp/{other_member.pk}/rewards/{theirs.pk}/redeem/").status_code == 404
    assert staff_client.post(f"/stamp/{member.pk}/rewards/{theirs.pk}/redeem/").status_code == 404
    assert staff_client.post(f"/stamp/{other_member.pk}/rewards/{mine.pk}/redeem/").status_code == 404
    assert stored(theirs).status == "available" and stored(mine).status == "available"
    assert visits(member) == [] and visits(other_member) == []


def test_another_member_reward_of_the_same_business_is_404(staff_client, member, business):
    other = member_make(business, first_name="Someone")
    reward = claim(other, "free_item")

    assert staff_client.post(f"/stamp/{member.pk}/rewards/{reward.pk}/redeem/").status_code == 404
    assert stored(reward).status == "available"


# --- who may, and how ----------------------------------------------------------------------------


def test_redeeming_is_post_only_with_a_csrf_token(staff, member):
    reward = claim(member, "free_item")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff, backend="members.auth.EmailBackend")

    assert client.get(f"/stamp/redeem/?code={reward.code}").status_code == 405
    assert client.get(f"/stamp/{member.pk}/rewards/{reward.pk}/redeem/").status_code == 405
    assert client.post("/stamp/redeem/", {"code": reward.code}).status_code == 403
    assert client.post(f"/stamp/{member.pk}/rewards/{reward.pk}/redeem/").status_code == 403
    assert stored(reward).status == "available"


@pytest.mark.parametrize("role", ["owner", "manager", "staff"])
def test_every_team_role_may_redeem(role, business, member):
    reward = claim(member, "free_item")
    client = client_for(user_make(role, business))

    client.post("/stamp/redeem/", {"code": reward.code})

    assert stored(reward).status == "redeemed"


def test_a_signed_out_visitor_or_someone_of_no_team_cannot_redeem(member, client):
    reward = claim(member, "free_item")

    assert client.post("/stamp/redeem/", {"code": reward.code}).status_code == 302
    assert client_for(user_make(None, None)).post("/stamp/redeem/", {"code": reward.code}).status_code == 403
    assert stored(reward).status == "available"


# --- in the admin ---------------------------------------------------------------------------------


def redeem_in_admin(client, *rewards):
    return client.post(
        "/admin/members/walletreward/",
        {"action": "redeem_selected", "_selected_action": [r.pk for r in rewards]},
        follow=True,
    )


def test_staff_redeem_selected_rewards_in_the_admin_with_the_same_messages(staff_client, staff, member):
    coffee = claim(member, "free_item")
    used = claim(member, "discount")
    with scope(business=member.business_id):
        wallet.reward_redeem(code=used.code, at=timezone.now())

    response = redeem_in_admin(staff_client, coffee, used)

    body = response.content.decode()
    assert "Redeemed a free cup of coffee for Wei Lin." in body
    assert "20% off (Wei Lin): This reward was already redeemed." in body
    assert stored(coffee).status == "redeemed"
    [visit] = [v for v in visits(member) if v.recorded_by is not None]
    assert (visit.kind, visit.source, visit.recorded_by) == ("redemption", "admin", staff)


def test_the_admin_lists_only_this_business_rewards_and_cannot_redeem_another(staff_client, member, other_member):
    mine = claim(member, "free_item")
    theirs = claim(other_member, "free_item")

    listing = staff_client.get("/admin/members/walletreward/")
    redeem_in_admin(staff_client, theirs)

    assert [r.pk for r in listing.context["cl"].result_list] == [mine.pk]
    assert staff_client.get(f"/admin/members/walletreward/{theirs.pk}/change/").status_code == 404
    assert stored(theirs).status == "available"
    assert visits(other_member) == []


def test_the_platform_superuser_redeems_in_the_reward_own_business(member, other_member):
    from members.services import User

    mine, theirs = claim(member, "free_item"), claim(other_member, "free_item")
    with scopes_disabled():
        WalletReward.objects.filter(pk=theirs.pk).update(code=mine.code)  # codes are unique per business only
    root = User.objects.create_superuser("root@winback.example", "root@winback.example", "pw-Secret-123")

    response = redeem_in_admin(client_for(root), mine)

    assert "Redeemed a free cup of coffee for Wei Lin." in response.content.decode()
    assert (stored(mine).status, stored(theirs).status) == ("redeemed", "available")


# --- concurrently ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tills_posting_one_code_at_once_redeem_it_once():
    business = business_make(name="Kopi Corner", slug="kopi")
    member = member_make(business, first_name="Wei", last_name="Lin", phone="+60123456789")
    reward = claim(member, "free_item")
    tills = [client_for(user_make("staff", business)) for _ in range(4)]

    bodies = together(4, lambda i: tills[i].post("/stamp/redeem/", {"code": reward.code}, follow=True).content.decode())

    assert sorted("Redeemed a free cup of coffee" in b for b in bodies) == [False, False, False, True]
    assert sum("This reward was already redeemed." in b for b in bodies) == 3
    assert len(visits(member)) == 1
