import uuid

import pytest
from django_scopes import scope

from members.models import Member, Visit
from tests.conftest import member_make, visit_make


def reload(member):
    with scope(business=member.business_id):
        return Member.objects.get(pk=member.pk)


@pytest.mark.parametrize("query", ["wei", "Wei Lin", "0123456789", "+60123456789", "wei@example.com"])
def test_one_box_finds_a_member_by_name_phone_or_email(staff_client, member, query):
    response = staff_client.get("/stamp/", {"q": query})

    assert [m.pk for m in response.context["results"]] == [member.pk]


def test_a_card_code_goes_straight_to_the_card(staff_client, member):
    response = staff_client.get("/stamp/", {"q": member.card_code.lower()})

    assert response.status_code == 302
    assert response["Location"] == f"/stamp/{member.pk}/"


def test_the_htmx_search_answers_only_the_results(staff_client, member):
    response = staff_client.get("/stamp/", {"q": "Wei"}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert "<html" not in body and "Wei" in body


def test_one_tap_adds_a_stamp_and_moves_the_last_purchase(staff_client, member, staff):
    response = staff_client.post(f"/stamp/{member.pk}/", {"action": "stamp", "idempotency_key": uuid.uuid4()})

    assert response.status_code == 302
    m = reload(member)
    assert (m.stamps_balance, m.purchase_count) == (1, 1)
    assert m.last_purchase_at is not None
    with scope(business=member.business_id):
        visit = Visit.objects.get(member=member)
    assert (visit.kind, visit.source, visit.recorded_by) == ("purchase", "stamp_page", staff)


def test_a_double_tap_with_the_same_form_stamps_once(staff_client, member):
    key = uuid.uuid4()
    staff_client.post(f"/stamp/{member.pk}/", {"action": "stamp", "idempotency_key": key})

    response = staff_client.post(f"/stamp/{member.pk}/", {"action": "stamp", "idempotency_key": key}, follow=True)

    assert reload(member).stamps_balance == 1
    assert "Already recorded" in response.content.decode()


def test_issuing_points_records_the_amount_spent(staff_client, member):
    staff_client.post(
        f"/stamp/{member.pk}/", {"action": "points", "points": 25, "amount": "24.90", "idempotency_key": uuid.uuid4()}
    )

    m = reload(member)
    assert (m.points_balance, str(m.total_spent), m.purchase_count) == (25, "24.90", 1)


def test_points_without_a_number_is_a_field_error(staff_client, member):
    response = staff_client.post(f"/stamp/{member.pk}/", {"action": "points", "idempotency_key": uuid.uuid4()})

    assert response.status_code == 200
    assert "Enter the points to issue." in response.content.decode()
    assert reload(member).points_balance == 0


def test_a_full_card_is_obvious_and_can_be_redeemed(staff_client, business):
    member = member_make(business)
    for days in range(10):
        visit_make(member, days_ago=days + 1)

    page = staff_client.get(f"/stamp/{member.pk}/").content.decode()
    assert "Card full" in page and 'id="redeem"' in page

    staff_client.post(f"/stamp/{member.pk}/", {"action": "redeem", "idempotency_key": uuid.uuid4()})

    m = reload(member)
    assert m.stamps_balance == 0
    assert m.purchase_count == 10
    assert "Card full" not in staff_client.get(f"/stamp/{member.pk}/").content.decode()


def test_redeeming_a_card_that_is_not_full_is_refused(staff_client, member):
    visit_make(member)

    response = staff_client.post(f"/stamp/{member.pk}/", {"action": "redeem", "idempotency_key": uuid.uuid4()})

    assert "not full yet" in response.content.decode()
    assert reload(member).stamps_balance == 1


def test_another_kind_of_visit_does_not_move_the_last_purchase(staff_client, member):
    staff_client.post(
        f"/stamp/{member.pk}/",
        {"action": "other", "kind": "balance_check", "stamps": 0, "points": 0, "idempotency_key": uuid.uuid4()},
    )

    m = reload(member)
    assert (m.last_purchase_at, m.visit_count) == (None, 1)


def test_the_card_page_shows_balances_and_last_visits(staff_client, member, django_assert_max_num_queries):
    for days in range(12):
        visit_make(member, days_ago=days + 1, points=3)

    with django_assert_max_num_queries(12):
        body = staff_client.get(f"/stamp/{member.pk}/").content.decode()

    assert 'id="stamps-balance">12<' in body
    assert 'id="points-balance">36<' in body
    assert body.count("<tr>") == 8


def test_times_are_shown_in_the_business_time_zone(staff_client, member):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    visit_make(member, at=datetime(2026, 1, 5, 2, 30, tzinfo=ZoneInfo("UTC")))

    body = staff_client.get(f"/stamp/{member.pk}/").content.decode()

    assert "5 Jan, 10:30" in body  # Kuala Lumpur is UTC+8
