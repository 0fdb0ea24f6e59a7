"""The member app's sign-in: a one-time code by SMS or email, exchanged once for a device token."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from members.models import MemberToken, OneTimeCode
from notifications.models import RecordedMessage
from tests.conftest import sign_in_code_sent

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("UTC"))


def request_code(client, django_capture_on_commit_callbacks, **identifier):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/api/v1/member/auth/code/", {"business": "kopi", **identifier}, format="json")


def sent_code(to: str) -> str:
    return sign_in_code_sent(to)


def exchange(client, code: str, **identifier):
    body = {"business": "kopi", "code": code, "device_name": "Wei's phone", **identifier}
    return client.post("/api/v1/member/auth/token/", body, format="json")


def test_a_member_signs_in_with_a_code_sent_by_sms_and_uses_the_token(member, django_capture_on_commit_callbacks):
    client = APIClient()

    requested = request_code(client, django_capture_on_commit_callbacks, phone="012-345 6789")
    response = exchange(client, sent_code("+60123456789"), phone="+60123456789")

    assert requested.status_code == 202
    assert requested.json() == {
        "detail": "If this phone or email belongs to a member, a code is on its way.",
        "expires_in": 600,
    }
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("wbm_")
    assert body["member"]["id"] == member.pk
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert client.get("/api/v1/member/me/").json()["first_name"] == "Wei"


def test_the_code_goes_by_email_to_an_email_and_only_hashes_are_stored(member, django_capture_on_commit_callbacks):
    client = APIClient()

    request_code(client, django_capture_on_commit_callbacks, email="WEI@example.com")
    code = sent_code("wei@example.com")
    token = exchange(client, code, email="wei@example.com").json()["token"]

    with scopes_disabled():
        message = RecordedMessage.objects.get()
        stored = OneTimeCode.objects.get()
        device = MemberToken.objects.get()
    assert (message.channel, message.title) == ("email", "Your Kopi Corner sign-in code")
    assert code not in stored.code_digest and "wei@example.com" not in stored.identifier_digest
    assert token not in device.digest and len(device.digest) == 64
    assert device.device_name == "Wei's phone"


def test_an_unknown_phone_gets_the_same_answer_and_no_message(member, django_capture_on_commit_callbacks):
    response = request_code(APIClient(), django_capture_on_commit_callbacks, phone="+60199999999")

    assert response.status_code == 202
    with scopes_disabled():
        assert RecordedMessage.objects.count() == 0


def test_a_code_works_once(member, django_capture_on_commit_callbacks):
    client = APIClient()
    request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
    code = sent_code("+60123456789")

    first = exchange(client, code, phone="+60123456789")
    second = exchange(client, code, phone="+60123456789")

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["error"]["code"] == "invalid_code"
    with scopes_disabled():
        assert MemberToken.objects.count() == 1


def test_a_code_expires_after_ten_minutes(member, django_capture_on_commit_callbacks):
    client = APIClient()
    with time_machine.travel(T0, tick=False):
        request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
    code = sent_code("+60123456789")

    with time_machine.travel(T0 + timedelta(minutes=10, seconds=1), tick=False):
        late = exchange(client, code, phone="+60123456789")
    with time_machine.travel(T0 + timedelta(minutes=9, seconds=59), tick=False):
        in_time = exchange(client, code, phone="+60123456789")

    assert late.status_code == 400
    assert in_time.status_code == 200


def test_five_wrong_guesses_kill_the_code(member, django_capture_on_commit_callbacks):
    client = APIClient()
    request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
    code = sent_code("+60123456789")
    wrong = "000000" if code != "000000" else "111111"

    guesses = [exchange(client, wrong, phone="+60123456789").status_code for _ in range(5)]
    right = exchange(client, code, phone="+60123456789")

    assert guesses == [400] * 5
    assert right.status_code == 400


def test_codes_are_limited_per_phone_whatever_the_forwarded_for_header(member, django_capture_on_commit_callbacks):
    client = APIClient()

    statuses = [
        request_code(
            client, django_capture_on_commit_callbacks, phone="+60123456789", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(6)
    ]

    assert statuses == [202] * 5 + [429]


def test_codes_are_limited_per_client_address_across_phones(member, settings, django_capture_on_commit_callbacks):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"sign_in": "1000/min"}}
    client = APIClient()

    statuses = [
        request_code(
            client, django_capture_on_commit_callbacks, phone=f"+6012345{i:04d}", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}"
        ).status_code
        for i in range(21)
    ]
    limited = request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")

    assert statuses == [202] * 20 + [429]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"


def test_the_limits_lift_after_an_hour(member, django_capture_on_commit_callbacks):
    client = APIClient()
    with time_machine.travel(T0, tick=False):
        for _ in range(5):
            request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
        blocked = request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
    with time_machine.travel(T0 + timedelta(hours=1, seconds=1), tick=False):
        later = request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")

    assert (blocked.status_code, later.status_code) == (429, 202)


def test_an_unknown_business_is_a_field_error(db):
    response = APIClient().post(
        "/api/v1/member/auth/code/", {"business": "nope", "phone": "+60123456789"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "Some fields are not valid.",
            "fields": {"business": ["No such business."]},
        }
    }


def test_phone_and_email_together_is_a_field_error(business):
    body = {"business": "kopi", "phone": "+60123456789", "email": "wei@example.com"}

    response = APIClient().post("/api/v1/member/auth/code/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"phone": ["Give a phone number or an email address (one of them)."]}


def test_a_code_of_business_a_does_not_sign_in_at_business_b(
    member, other_business, django_capture_on_commit_callbacks
):
    client = APIClient()
    request_code(client, django_capture_on_commit_callbacks, phone="+60123456789")
    code = sent_code("+60123456789")

    response = client.post(
        "/api/v1/member/auth/token/", {"business": "other", "phone": "+60123456789", "code": code}, format="json"
    )

    assert response.status_code == 400


def test_signing_out_revokes_only_this_device(member):
    from tests.api.conftest import member_client_for

    phone, tablet = member_client_for(member, "phone"), member_client_for(member, "tablet")

    signed_out = phone.post("/api/v1/member/auth/sign-out/")

    assert signed_out.status_code == 204
    assert phone.get("/api/v1/member/me/").status_code == 401
    assert tablet.get("/api/v1/member/me/").status_code == 200


def test_a_device_can_be_revoked_from_the_device_list(member):
    from tests.api.conftest import member_client_for

    phone, tablet = member_client_for(member, "phone"), member_client_for(member, "tablet")

    devices = phone.get("/api/v1/member/devices/").json()["results"]
    revoked = phone.delete(f"/api/v1/member/devices/{tablet.token.pk}/")

    assert [(d["device_name"], d["current"]) for d in devices] == [("tablet", False), ("phone", True)]
    assert revoked.status_code == 204
    assert tablet.get("/api/v1/member/card/").status_code == 401


def test_an_expired_member_token_is_refused(member):
    from tests.api.conftest import member_client_for

    client = member_client_for(member)

    with time_machine.travel(timezone_now() + timedelta(days=181)):
        response = client.get("/api/v1/member/me/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def timezone_now():
    from django.utils import timezone

    return timezone.now()


@pytest.mark.parametrize("header", ["Bearer wbm_forged", "Bearer wbk_forged", "Token abc", "Bearer"])
def test_forged_credentials_are_refused(member, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/member/me/")

    assert response.status_code == 401
