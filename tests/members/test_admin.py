from django.utils import timezone
from django_scopes import scope, scopes_disabled

from members.models import Member, Visit


def add_visit(client, member, **fields):
    now = timezone.localtime(timezone.now())
    data = {
        "member": member.pk,
        "kind": "purchase",
        "stamps_delta": 1,
        "points_delta": 0,
        "amount": "",
        "occurred_at_0": now.strftime("%Y-%m-%d"),
        "occurred_at_1": now.strftime("%H:%M:%S"),
        "note": "",
    }
    data.update(fields)
    return client.post("/admin/members/visit/add/", data)


def test_staff_add_a_visit_in_the_admin_through_the_ledger_service(staff_client, member, staff):
    response = add_visit(staff_client, member)

    assert response.status_code == 302
    with scope(business=member.business_id):
        visit = Visit.objects.get(member=member)
        m = Member.objects.get(pk=member.pk)
    assert (visit.source, visit.recorded_by, m.stamps_balance, m.purchase_count) == ("admin", staff, 1, 1)
    assert m.last_purchase_at is not None


def test_the_admin_refuses_another_business_member_for_a_visit(staff_client, other_member):
    response = add_visit(staff_client, other_member)

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    with scopes_disabled():
        assert Visit.objects.count() == 0


def test_the_admin_refuses_a_redemption_beyond_the_balance(staff_client, member):
    response = add_visit(staff_client, member, kind="redemption", stamps_delta=-5)

    assert "The card has only 0 stamps." in response.content.decode()


def test_visits_are_append_only_in_the_admin(staff_client, owner_client, member):
    add_visit(staff_client, member)
    with scope(business=member.business_id):
        visit = Visit.objects.get(member=member)

    assert owner_client.post(f"/admin/members/visit/{visit.pk}/delete/", {"post": "yes"}).status_code == 403
    owner_client.post(f"/admin/members/visit/{visit.pk}/change/", {"stamps_delta": 50})
    visit.refresh_from_db()
    assert visit.stamps_delta == 1
