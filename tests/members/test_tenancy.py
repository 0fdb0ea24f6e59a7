import pytest
from django.test import Client
from django_scopes import ScopeError, scope, scopes_disabled

from members.models import Member, Role
from tests.conftest import client_for, member_make, user_make


def test_a_tenant_query_outside_any_scope_raises(member):
    with pytest.raises(ScopeError):
        list(Member.objects.all())


def test_a_scope_shows_only_its_business(member, other_member):
    with scope(business=member.business_id):
        assert list(Member.objects.values_list("pk", flat=True)) == [member.pk]


@pytest.mark.parametrize(
    "url",
    ["/stamp/{id}/", "/admin/members/member/{id}/change/", "/admin/members/member/{id}/history/"],
)
def test_staff_of_a_gets_404_for_business_b_members(staff_client, other_member, url):
    response = staff_client.get(url.format(id=other_member.pk))

    assert response.status_code == 404


@pytest.mark.parametrize("url", ["/members/{id}/", "/stamp/{id}/"])
def test_owner_of_a_gets_404_for_business_b_members(owner_client, other_member, url):
    assert owner_client.get(url.format(id=other_member.pk)).status_code == 404


def test_posting_a_stamp_for_another_business_member_changes_nothing(staff_client, other_member):
    response = staff_client.post(
        f"/stamp/{other_member.pk}/", {"action": "stamp", "idempotency_key": "7c2b3a56-0e5e-4a2b-9b3b-2f3d1c0b9a11"}
    )

    assert response.status_code == 404
    with scopes_disabled():
        assert Member.objects.get(pk=other_member.pk).stamps_balance == 0


def test_erasing_another_business_member_is_404(owner_client, other_member):
    assert owner_client.post(f"/members/{other_member.pk}/erase/").status_code == 404
    with scopes_disabled():
        assert Member.objects.get(pk=other_member.pk).first_name == "Outsider"


def test_the_admin_lists_only_the_current_business_members(staff_client, member, other_member):
    response = staff_client.get("/admin/members/member/")

    assert response.status_code == 200
    assert member.card_code in response.content.decode()
    assert other_member.card_code not in response.content.decode()


def test_the_admin_visit_member_autocomplete_shows_only_the_business(staff_client, member, other_member):
    response = staff_client.get(
        "/admin/autocomplete/",
        {"app_label": "members", "model_name": "visit", "field_name": "member", "term": ""},
    )

    ids = {int(r["id"]) for r in response.json()["results"]}
    assert ids == {member.pk}


def test_the_platform_superuser_sees_every_business_in_the_admin(member, other_member):
    admin = user_make(None, None, "root@winback.example")
    admin.is_superuser = admin.is_staff = True
    admin.save()

    body = client_for(admin).get("/admin/members/member/").content.decode()

    assert member.card_code in body and other_member.card_code in body


@pytest.mark.parametrize("url", ["/members/", "/members/import/", "/settings/team/", "/members/1/"])
def test_staff_cannot_reach_owner_pages(staff_client, url):
    assert staff_client.get(url).status_code == 403


def test_a_manager_cannot_manage_the_team(manager_client):
    assert manager_client.get("/settings/team/").status_code == 403


def test_staff_cannot_change_members_in_the_admin(staff_client, member):
    response = staff_client.post(f"/admin/members/member/{member.pk}/change/", {"first_name": "Hacked"})

    assert response.status_code == 403
    with scope(business=member.business_id):
        assert Member.objects.get(pk=member.pk).first_name == "Wei"


def test_anonymous_users_are_sent_to_sign_in(member):
    response = Client().get("/stamp/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_of_two_businesses_switches_between_them(business, other_business, member, other_member):
    user = user_make(Role.OWNER, business)
    with scopes_disabled():
        from members.models import Membership

        Membership.objects.create(business=other_business, user=user, role=Role.STAFF)
    client = client_for(user)
    assert client.get(f"/members/{member.pk}/").status_code == 200

    response = client.post("/switch/", {"business": other_business.pk, "next": "/stamp/"})

    assert response.status_code == 302 and response["Location"] == "/stamp/"
    assert client.get(f"/stamp/{other_member.pk}/").status_code == 200
    assert client.get(f"/stamp/{member.pk}/").status_code == 404
    assert client.get("/members/").status_code == 403  # staff there


def test_switching_to_a_business_one_does_not_belong_to_is_404(owner_client, other_business):
    assert owner_client.post("/switch/", {"business": other_business.pk}).status_code == 404
    assert owner_client.post("/switch/", {"business": "nope"}).status_code == 404


def test_a_member_of_the_other_business_is_not_found_by_search(staff_client, member, other_member):
    response = staff_client.get("/stamp/", {"q": "Outsider"})

    assert response.context["results"] == []
    assert "No member matches" in response.content.decode()


def test_member_make_keeps_other_tenants_apart(business, other_business):
    member_make(business, card_code="SAME0001")
    member_make(other_business, card_code="SAME0001")  # the same card code in two businesses is fine
    with scopes_disabled():
        assert Member.objects.filter(card_code="SAME0001").count() == 2


# --- the pages added since the first matrix: import jobs, redeeming at the counter, unlocking ----


def _rows(business, owner, member, code: str) -> dict[str, int]:
    """A business's import job, available reward (with its code) and its owner's membership."""
    from django.utils import timezone

    from members.models import ImportJob, Membership, WalletReward

    now = timezone.now()
    with scope(business=business.pk):
        job = ImportJob.objects.create(business=business, created_by=owner, members_name="theirs.csv",
                                       total_rows=3, created_at=now, updated_at=now)  # fmt: skip
        reward = WalletReward.objects.create(business=business, member=member, kind="free_item",
                                             title="A free coffee", code=code, status="available",
                                             offered_at=now, claimed_at=now)  # fmt: skip
        membership = Membership.objects.get(business=business, user=owner)
    return {"job": job.pk, "member": member.pk, "reward": reward.pk, "membership": membership.pk}


@pytest.fixture
def outsider_rows(other_business, other_owner, other_member):
    return _rows(other_business, other_owner, other_member, "ZZZZ234567")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/members/import/{job}/"),
        ("get", "/members/import/{job}/progress/"),
        ("post", "/stamp/{member}/rewards/{reward}/redeem/"),
        ("post", "/settings/team/{membership}/unlock/"),
        ("get", "/admin/members/walletreward/{reward}/change/"),
    ],
)
def test_the_owner_of_a_gets_404_for_business_b_jobs_rewards_and_team(owner_client, outsider_rows, method, url):
    response = getattr(owner_client, method)(url.format(**outsider_rows))

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/members/import/{job}/"),
        ("get", "/members/import/{job}/progress/"),
        ("post", "/stamp/{member}/rewards/{reward}/redeem/"),
        ("get", "/admin/members/walletreward/{reward}/change/"),
    ],
)
def test_the_same_pages_answer_the_owner_for_their_own_rows(owner_client, business, owner, member, method, url):
    """The control for the matrix above: the URLs are right, so its 404s come from the scoping."""
    response = getattr(owner_client, method)(url.format(**_rows(business, owner, member, "YYYY234567")))

    assert response.status_code in (200, 302)


def test_a_code_of_business_b_typed_at_the_counter_of_a_is_unknown_and_stays_available(staff_client, outsider_rows):
    from members.models import WalletReward

    response = staff_client.post("/stamp/redeem/", {"code": "zzzz-234567"})

    assert "No reward with this code" in response.content.decode()
    with scopes_disabled():
        assert WalletReward.objects.get(pk=outsider_rows["reward"]).status == "available"
