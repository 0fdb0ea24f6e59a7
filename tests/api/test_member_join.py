"""The member app's self sign-up: a person joins a business with a name, a phone or an email and
the consents they tick, gets a one-time code and exchanges it for a token as at sign-in."""

from datetime import datetime

import pytest
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from members.models import ConsentEvent, Member, OneTimeCode
from notifications import erasure
from notifications.models import RecordedMessage
from tests.conftest import business_make, member_make, sign_in_code_sent

JOIN = "/api/v1/member/auth/join/"
SAME_ANSWER = {"detail": "A code is on its way to this phone or email: enter it to see your card.", "expires_in": 600}


def join(client, django_capture_on_commit_callbacks, slug="kopi", **body):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(JOIN, {"business": slug, **body}, format="json")


def messages_to(to: str) -> list:
    with scopes_disabled():
        return list(RecordedMessage.objects.filter(to=to).order_by("pk"))


def code_owner(business) -> int | None:
    """The member the newest sign-in code of ``business`` was issued for."""
    with scopes_disabled():
        return OneTimeCode.objects.filter(business=business).latest("pk").member_id


def code_in(message) -> str:
    """The sign-in code of this recorded message (recorded masked: read from the outbox)."""
    return sign_in_code_sent(message.to)


def exchange(client, code: str, slug="kopi", **identifier):
    body = {"business": slug, "code": code, "device_name": "New phone", **identifier}
    return client.post("/api/v1/member/auth/token/", body, format="json")


def members_of(business) -> list:
    with scopes_disabled():
        return list(Member.objects.filter(business=business).order_by("pk"))


def consent_events(member) -> set:
    with scopes_disabled():
        return set(ConsentEvent.objects.filter(member=member).values_list("channel", "granted", "source"))


def test_a_person_joins_with_a_local_phone_gets_a_code_and_signs_in(business, django_capture_on_commit_callbacks):
    client = APIClient()

    response = join(client, django_capture_on_commit_callbacks, first_name=" Aisyah ", last_name="Rahman",
                    phone="012-987 6543", consents={"sms": True, "whatsapp": False})  # fmt: skip

    assert response.status_code == 202
    assert response.json() == SAME_ANSWER
    [member] = members_of(business)
    assert (member.first_name, member.last_name, member.phone, member.email) == ("Aisyah", "Rahman", "+60129876543", "")
    assert (member.consent_sms, member.consent_whatsapp, member.consent_email, member.consent_push) == (
        True, False, False, False)  # fmt: skip
    assert consent_events(member) == {("sms", True, "signup")}
    [message] = messages_to("+60129876543")
    assert (message.channel, message.title) == ("sms", "Your Kopi Corner sign-in code")
    assert code_owner(business) == member.pk

    signed_in = exchange(client, code_in(message), phone="+60129876543")

    assert signed_in.status_code == 200
    assert signed_in.json()["member"]["id"] == member.pk
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.json()['token']}")
    card = client.get("/api/v1/member/card/").json()
    assert card["card_code"] == member.card_code
    assert card["stamps_balance"] == 0
    preferences = {row["channel"]: (row["granted"], row["source"]) for row in client.get(
        "/api/v1/member/preferences/").json()}  # fmt: skip
    assert preferences == {"push": (False, None), "sms": (True, "signup"), "whatsapp": (False, None),
                           "email": (False, None)}  # fmt: skip


def test_a_person_joins_by_email_with_every_consent_they_ticked(business, django_capture_on_commit_callbacks):
    response = join(APIClient(), django_capture_on_commit_callbacks, first_name="Tan", email="Tan@Example.COM",
                    consents={"email": True, "push": True})  # fmt: skip

    assert response.status_code == 202
    [member] = members_of(business)
    assert (member.email, member.phone, member.last_name) == ("tan@example.com", "", "")
    assert consent_events(member) == {("email", True, "signup"), ("push", True, "signup")}
    assert (member.consent_email, member.consent_push, member.consent_sms, member.consent_whatsapp) == (
        True, True, False, False)  # fmt: skip
    [message] = messages_to("tan@example.com")
    assert message.channel == "email"


def test_without_consents_nothing_is_granted(business, django_capture_on_commit_callbacks):
    join(APIClient(), django_capture_on_commit_callbacks, first_name="Lee", phone="+60121112222")

    [member] = members_of(business)
    assert not any(member.has_consent(c) for c in ("push", "sms", "whatsapp", "email"))
    assert consent_events(member) == set()
    assert len(messages_to("+60121112222")) == 1  # the code still goes out: it is not marketing


def test_an_existing_phone_gets_the_same_answer_a_code_and_no_duplicate(member, django_capture_on_commit_callbacks):
    client = APIClient()
    with scopes_disabled():
        before = Member.objects.filter(pk=member.pk).values().get()

    response = join(client, django_capture_on_commit_callbacks, first_name="Mallory", last_name="Impostor",
                    phone="+60 12-345 6789", consents={"sms": True, "whatsapp": True, "push": True})  # fmt: skip

    assert response.status_code == 202
    assert response.json() == SAME_ANSWER
    assert members_of(member.business) == [member]
    with scopes_disabled():
        assert Member.objects.filter(pk=member.pk).values().get() == before  # name and consents stay the member's
    assert consent_events(member) == set()
    [message] = messages_to("+60123456789")
    assert code_owner(member.business) == member.pk
    signed_in = exchange(client, code_in(message), phone="+60123456789")
    assert signed_in.json()["member"]["id"] == member.pk
    assert signed_in.json()["member"]["first_name"] == "Wei"


def test_an_existing_email_in_another_case_is_the_same_member(member, django_capture_on_commit_callbacks):
    response = join(APIClient(), django_capture_on_commit_callbacks, first_name="Wei", email="WEI@example.com")

    assert response.status_code == 202
    assert members_of(member.business) == [member]
    [message] = messages_to("wei@example.com")
    assert code_owner(member.business) == member.pk


def test_new_and_existing_contacts_get_byte_identical_answers(member, django_capture_on_commit_callbacks):
    existing = join(APIClient(), django_capture_on_commit_callbacks, first_name="X", phone="+60123456789")
    new = join(APIClient(), django_capture_on_commit_callbacks, first_name="X", phone="+60123450000")

    assert (existing.status_code, existing.content) == (new.status_code, new.content)
    assert sorted(existing.headers) == sorted(new.headers)


def test_a_suppressed_phone_joins_without_any_consent(business, django_capture_on_commit_callbacks):
    erased = member_make(business, first_name="Gone", phone="+60125550000", consents={"sms": True})
    with scope(business=business.pk):
        erasure.member_erase(member=erased)

    response = join(APIClient(), django_capture_on_commit_callbacks, first_name="Back", phone="0125550000",
                    consents={"sms": True, "whatsapp": True, "push": True})  # fmt: skip

    assert response.status_code == 202
    assert response.json() == SAME_ANSWER
    with scopes_disabled():
        rejoined = Member.objects.get(business=business, phone="+60125550000")
    assert rejoined.pk != erased.pk and rejoined.status == "active"
    assert not any(rejoined.has_consent(c) for c in ("push", "sms", "whatsapp", "email"))
    assert consent_events(rejoined) == set()
    [message] = messages_to("+60125550000")  # a sign-in code is asked for, not a campaign message
    assert code_owner(business) == rejoined.pk


@pytest.mark.parametrize(
    "body,field",
    [
        ({"first_name": "Ana", "phone": "12345"}, "phone"),
        ({"first_name": "Ana", "phone": "+1 202 555 0100 ext"}, "phone"),
        ({"first_name": "Ana", "email": "not-an-email"}, "email"),
        ({"phone": "+60121234567"}, "first_name"),
        ({"first_name": "   ", "phone": "+60121234567"}, "first_name"),
        ({"first_name": "A" * 81, "phone": "+60121234567"}, "first_name"),
        ({"first_name": "Ana"}, "phone"),
        ({"first_name": "Ana", "phone": "+60121234567", "email": "ana@example.com"}, "phone"),
        ({"first_name": "Ana", "phone": "+60121234567", "consents": {"email": True}}, "consents.email"),
        ({"first_name": "Ana", "email": "ana@example.com", "consents": {"sms": True}}, "consents.sms"),
        ({"first_name": "Ana", "email": "ana@example.com", "consents": {"whatsapp": True}}, "consents.whatsapp"),
        ({"first_name": "Ana", "email": "ana@example.com", "consents": {"push": "perhaps"}}, "consents.push"),
        ({"first_name": "Ana", "email": "ana@example.com", "consents": ["sms"]}, "consents.non_field_errors"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(business, body, field, django_capture_on_commit_callbacks):
    response = join(APIClient(), django_capture_on_commit_callbacks, **body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert members_of(business) == []
    with scopes_disabled():
        assert RecordedMessage.objects.count() == 0
        assert OneTimeCode.objects.count() == 0


def test_every_bad_field_is_named_in_one_answer(business, django_capture_on_commit_callbacks):
    response = join(APIClient(), django_capture_on_commit_callbacks, first_name="", last_name="B" * 81, phone="12345")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {
        "first_name": ["Enter your first name."],
        "last_name": ["Ensure this field has no more than 80 characters."],
        "phone": ["“12345” is not a valid phone number in Malaysia: enter it like 012-345 6789 or with +60."],
    }


def test_an_unknown_business_is_a_field_error(db, django_capture_on_commit_callbacks):
    response = join(APIClient(), django_capture_on_commit_callbacks, slug="nobody", first_name="A",
                    phone="+60121234567")  # fmt: skip

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["business"]


def test_joins_are_limited_per_phone_and_the_limit_creates_nobody(business, django_capture_on_commit_callbacks):
    client = APIClient()

    statuses = [
        join(client, django_capture_on_commit_callbacks, first_name="A", phone="+60121234567",
             HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(6)
    ]  # fmt: skip

    assert statuses == [202] * 5 + [429]
    assert len(members_of(business)) == 1
    assert len(messages_to("+60121234567")) == 5


def test_joins_and_code_requests_share_the_per_client_limit(business, settings, django_capture_on_commit_callbacks):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"sign_in": "1000/min"}}
    client = APIClient()
    for i in range(20):
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/api/v1/member/auth/code/", {"business": "kopi", "phone": f"+6012345{i:04d}"}, format="json")

    limited = join(client, django_capture_on_commit_callbacks, first_name="A", phone="+60121234567")

    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"
    assert members_of(business) == []


def test_the_sign_in_rate_throttles_joins_per_client_address(business, settings, django_capture_on_commit_callbacks):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"sign_in": "2/min"}}
    client = APIClient()

    statuses = [
        join(client, django_capture_on_commit_callbacks, first_name="A", phone=f"+6012123{i:04d}").status_code
        for i in range(3)
    ]

    assert statuses == [202, 202, 429]
    assert len(members_of(business)) == 2


def test_another_business_slug_never_reaches_this_business_member(member, other_business,
                                                                  django_capture_on_commit_callbacks):  # fmt: skip
    other_business.channel_settings = {"sign_in": {"sms_countries": ["GB", "MY"]}}  # a Malaysian phone in the UK
    other_business.save()
    client = APIClient()

    response = join(client, django_capture_on_commit_callbacks, slug="other", first_name="Wei",
                    phone="+60123456789", consents={"sms": True})  # fmt: skip
    [message] = messages_to("+60123456789")
    wrong_business = exchange(client, code_in(message), slug="kopi", phone="+60123456789")
    right_business = exchange(client, code_in(message), slug="other", phone="+60123456789")

    assert response.status_code == 202
    [theirs] = members_of(other_business)
    assert theirs.pk != member.pk and theirs.phone == "+60123456789"
    assert code_owner(other_business) == theirs.pk and message.business_id == other_business.pk
    assert wrong_business.status_code == 400
    assert right_business.json()["member"]["id"] == theirs.pk
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {right_business.json()['token']}")
    assert client.get("/api/v1/member/card/").json()["card_code"] == theirs.card_code
    assert members_of(member.business) == [member]
    assert consent_events(member) == set()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_joins_of_one_phone_at_once_make_one_member():
    from tests.campaigns.test_concurrency import together

    business = business_make(name="Kopi Corner", slug="kopi")
    body = {"business": "kopi", "phone": "+60127770000", "consents": {"sms": True}}

    statuses = together(4, lambda i: APIClient().post(JOIN, {**body, "first_name": f"Twin{i}"}, format="json",
                                                      REMOTE_ADDR=f"10.1.0.{i}").status_code)  # fmt: skip

    assert statuses == [202] * 4
    [member] = members_of(business)
    assert len(consent_events(member)) == 1
    assert len(messages_to("+60127770000")) == 4


def test_the_join_time_is_the_consent_time(business, django_capture_on_commit_callbacks):
    import time_machine

    at = datetime.fromisoformat("2026-05-04T10:00:00+00:00")
    with time_machine.travel(at, tick=False):
        join(APIClient(), django_capture_on_commit_callbacks, first_name="A", phone="+60121234567",
             consents={"sms": True})  # fmt: skip

    [member] = members_of(business)
    with scopes_disabled():
        event = ConsentEvent.objects.get(member=member)
    assert event.occurred_at == at
    assert member.joined_on.isoformat() == "2026-05-04"


def test_protected_fields_posted_with_a_join_change_nothing(business, other_business,
                                                            django_capture_on_commit_callbacks):  # fmt: skip
    forged = {"business_id": other_business.pk, "member": 1, "stamps_balance": 999, "points_balance": 999,
              "status": "erased", "card_code": "FORGED01", "purchase_count": 9, "total_spent": "999.00",
              "created_at": "2000-01-01T00:00:00Z", "joined_on": "2000-01-01", "consent_sms": True,
              "code": "123456", "role": "owner"}  # fmt: skip

    response = join(APIClient(), django_capture_on_commit_callbacks, first_name="Ana", phone="+60121234567", **forged)

    assert response.status_code == 202
    [member] = members_of(business)
    assert (member.stamps_balance, member.points_balance, member.purchase_count, member.status) == (0, 0, 0, "active")
    assert member.card_code != "FORGED01" and member.created_at.year > 2000 and member.joined_on.year > 2000
    assert not member.consent_sms
    assert members_of(other_business) == []
