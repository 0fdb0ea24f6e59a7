from django.utils import timezone
from django_scopes import scope, scopes_disabled

from members import services
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


def admin_form_data(response) -> dict:
    """What the browser would post back from an admin change or add page, as rendered."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
        forms += list(formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = value
    return data


def test_consent_changed_in_the_admin_is_recorded_as_a_consent_event(owner_client, owner, member):
    with scope(business=member.business_id):
        services.member_consent_set(member=member, channel="sms", granted=True, source="signup")
    page = owner_client.get(f"/admin/members/member/{member.pk}/change/")
    data = admin_form_data(page)
    data.pop("consent_sms")
    data["consent_email"] = "on"

    response = owner_client.post(f"/admin/members/member/{member.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    with scope(business=member.business_id):
        m = Member.objects.get(pk=member.pk)
        events = list(m.consent_events.order_by("id").values_list("channel", "granted", "source", "note"))
    assert (m.consent_sms, m.consent_email, m.first_name) == (False, True, "Wei")
    assert events == [
        ("sms", True, "signup", ""),
        ("sms", False, "staff", "changed in the admin by owner@kopi.example"),
        ("email", True, "staff", "changed in the admin by owner@kopi.example"),
    ]


def test_a_member_added_in_the_admin_with_consent_has_its_consent_events(owner_client, business):
    page = owner_client.get("/admin/members/member/add/")
    data = admin_form_data(page)
    data.update(first_name="Ana", phone="012-345 6789", card_code="ADMIN001", joined_on="2026-03-01",
                consent_sms="on")  # fmt: skip

    response = owner_client.post("/admin/members/member/add/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    with scope(business=business.pk):
        m = Member.objects.get(card_code="ADMIN001")
        events = list(m.consent_events.values_list("channel", "granted", "source"))
    assert (m.business_id, m.phone, m.consent_sms) == (business.pk, "+60123456789", True)
    assert events == [("sms", True, "staff")]
