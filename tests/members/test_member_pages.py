import pytest
from django_scopes import scope

from members.models import ConsentEvent, Member, Suppression, Visit
from tests.conftest import member_make, visit_make


def test_the_members_list_searches_and_filters(owner_client, business, member):
    lapsed = member_make(business, first_name="Gone")
    visit_make(lapsed, days_ago=45)
    visit_make(member, days_ago=2)
    member_make(business, first_name="Never")

    def names(**params):
        return {m.first_name for m in owner_client.get("/members/", params).context["members"]}

    assert names() == {"Wei", "Gone", "Never"}
    assert names(q="gon") == {"Gone"}
    assert names(lapsed="30") == {"Gone"}
    assert names(lapsed="active") == {"Wei"}
    assert names(lapsed="never") == {"Never"}
    assert names(reach="email") == {"Wei"}


def test_the_members_list_makes_no_query_per_member(owner_client, business, django_assert_max_num_queries):
    for _ in range(30):
        visit_make(member_make(business), days_ago=3)

    with django_assert_max_num_queries(8):
        response = owner_client.get("/members/")

    assert len(response.context["members"]) == 30


def test_the_member_page_shows_the_visit_history(owner_client, member):
    visit_make(member, days_ago=3, note="x")
    visit_make(member, kind="balance_check", days_ago=1, stamps=0)

    body = owner_client.get(f"/members/{member.pk}/").content.decode()

    assert "Balance check" in body and "Purchase" in body


def test_erasure_removes_personal_data_keeps_counts_and_suppresses(owner_client, member):
    visit_make(member, days_ago=3)
    with scope(business=member.business_id):
        from members import services

        services.member_consent_set(member=member, channel="sms", granted=True, source="staff")

    response = owner_client.post(f"/members/{member.pk}/erase/")

    assert response.status_code == 302
    with scope(business=member.business_id):
        m = Member.objects.get(pk=member.pk)
        assert (m.first_name, m.last_name, m.phone, m.email, m.birthday, m.status) == ("", "", "", "", None, "erased")
        assert m.purchase_count == 1 and Visit.objects.filter(member=m).count() == 1
        assert not m.consent_sms
        assert ConsentEvent.objects.filter(member=m, channel="sms", granted=False, source="erasure").exists()
        assert Suppression.objects.count() == 2
        assert "Wei" not in owner_client.get(f"/members/{m.pk}/").content.decode()


def test_a_manager_cannot_erase(manager_client, member):
    assert manager_client.post(f"/members/{member.pk}/erase/").status_code == 403


@pytest.mark.parametrize("url", ["/members/", "/members/import/"])
def test_managers_reach_member_pages(manager_client, url):
    assert manager_client.get(url).status_code == 200
