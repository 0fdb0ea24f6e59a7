"""Sign-in codes go out through a task with retries: a provider error never reaches the member app,
and a provider that stays down shows on the code's row (and in the admin)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from members import apiauth
from members.models import OneTimeCode
from members.tasks import code_send_task
from notifications import codes
from notifications.channels import TransientSendError

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("UTC"))
PHONE = "+60123456789"


def ask_for_a_code(phone=PHONE):
    return APIClient(raise_request_exception=False).post(
        "/api/v1/member/auth/code/", {"business": "kopi", "phone": phone}, format="json"
    )


def the_code() -> OneTimeCode:
    with scopes_disabled():
        return OneTimeCode.objects.get()


def queued(business, django_capture_on_commit_callbacks) -> tuple[OneTimeCode, str]:
    """A code requested and queued, its task not run: (the row, the code the task carries)."""
    with scope(business=business.pk), django_capture_on_commit_callbacks() as enqueued:
        apiauth.code_request(business=business, phone=PHONE, client_ip="10.0.0.1", now=T0)
    (task,) = enqueued
    return the_code(), task.keywords["code"]


@pytest.mark.django_db(transaction=True)  # the request commits, as in production: its on-commit work runs
@pytest.mark.parametrize(
    ("status", "code", "attempts", "error"),
    [(503, None, 4, "gave up after 4 attempts: Twilio 503"), (400, 21211, 1, "invalid phone number")],
    ids=["transient", "permanent"],
)
def test_a_provider_error_answers_202_and_the_code_says_failed(member, twilio, status, code, attempts, error):
    twilio.script[PHONE] = (status, code, "provider trouble", {})

    response = ask_for_a_code()

    assert response.status_code == 202, response.content
    assert response.json()["detail"] == "If this phone or email belongs to a member, a code is on its way."
    row = the_code()
    assert (row.delivery_status, row.delivery_attempts, row.sent_at) == ("failed", attempts, None)
    assert error in row.delivery_error
    assert len(twilio.requests) == attempts


@pytest.mark.django_db(transaction=True)
def test_the_answer_is_the_same_for_a_sent_a_failed_and_an_unknown_phone(member, twilio):
    sent = ask_for_a_code()
    twilio.script[PHONE] = (503, None, "down", {})
    failed = ask_for_a_code()
    unknown = ask_for_a_code("+60199999999")

    assert sent.status_code == failed.status_code == unknown.status_code == 202
    assert sent.content == failed.content == unknown.content
    with scopes_disabled():
        assert list(OneTimeCode.objects.order_by("pk").values_list("delivery_status", flat=True)) == [
            "sent", "failed", "none"
        ]  # fmt: skip


def test_a_transient_error_then_success_is_sent_and_the_code_signs_in(business, member, twilio,
                                                                      django_capture_on_commit_callbacks):  # fmt: skip
    row, code = queued(business, django_capture_on_commit_callbacks)
    assert (row.delivery_status, row.delivery_attempts) == ("queued", 0)
    twilio.script[PHONE] = (503, None, "try later", {})

    with scope(business=business.pk), pytest.raises(TransientSendError):
        codes.code_send(code_id=row.pk, code=code, now=T0 + timedelta(seconds=1))
    row = the_code()
    assert (row.delivery_status, row.delivery_attempts) == ("queued", 1)
    assert "Twilio 503" in row.delivery_error
    del twilio.script[PHONE]
    with scope(business=business.pk):
        status = codes.code_send(code_id=row.pk, code=code, now=T0 + timedelta(seconds=11))

    row = the_code()
    assert (status, row.delivery_status, row.delivery_attempts, row.delivery_error) == ("sent", "sent", 2, "")
    assert row.sent_at == T0 + timedelta(seconds=11)
    assert [code in r["form"]["Body"] for r in twilio.requests] == [True, True]
    with scope(business=business.pk):
        issued = apiauth.code_exchange(business=business, phone=PHONE, code=code, now=T0 + timedelta(minutes=1))
    assert issued.token.member_id == member.pk


def test_through_celery_a_transient_error_is_retried_and_then_sent(business, member, twilio,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
    row, code = queued(business, django_capture_on_commit_callbacks)
    twilio.script_once[PHONE] = [(429, 20429, "slow down", {}), (503, None, "down", {})]

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        result = code_send_task.apply(kwargs={"business_id": business.pk, "code_id": row.pk, "code": code})

    assert result.get() == "sent"
    row = the_code()
    assert (row.delivery_status, row.delivery_attempts) == ("sent", 3)
    assert len(twilio.requests) == 3


def test_the_retries_back_off_exponentially_within_the_codes_lifetime():
    delays = [codes.code_send_retry_in(retries=n) for n in range(codes.CODE_SEND_ATTEMPTS - 1)]

    assert delays == [10, 20, 40]
    assert sum(delays) < apiauth.CODE_TTL.total_seconds()
    assert codes.code_send_retry_in(retries=0, retry_after=90) == 90
    assert codes.code_send_retry_in(retries=0, retry_after=3600) == 120


def test_a_redelivered_task_does_not_send_the_code_twice(business, member, twilio,
                                                         django_capture_on_commit_callbacks):  # fmt: skip
    row, code = queued(business, django_capture_on_commit_callbacks)
    kwargs = {"business_id": business.pk, "code_id": row.pk, "code": code}

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        code_send_task.apply(kwargs=kwargs)
        again = code_send_task.apply(kwargs=kwargs)

    assert again.get() == "sent"
    assert len(twilio.requests) == 1 and the_code().delivery_attempts == 1


def test_a_code_still_queued_when_it_expires_is_not_sent(business, member, twilio,
                                                         django_capture_on_commit_callbacks):  # fmt: skip
    row, code = queued(business, django_capture_on_commit_callbacks)

    with scope(business=business.pk):
        status = codes.code_send(code_id=row.pk, code=code, now=T0 + apiauth.CODE_TTL)

    assert status == "failed" and the_code().delivery_error == "expired before it could be sent"
    assert twilio.requests == []


def test_another_business_id_sends_nothing_and_changes_nothing(business, other_business, member, twilio,
                                                               django_capture_on_commit_callbacks):  # fmt: skip
    row, code = queued(business, django_capture_on_commit_callbacks)

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        result = code_send_task.apply(kwargs={"business_id": other_business.pk, "code_id": row.pk, "code": code})

    assert result.get() == ""
    assert twilio.requests == []
    assert (the_code().delivery_status, the_code().delivery_attempts) == ("queued", 0)


def test_the_plaintext_code_is_never_stored(business, member, twilio, django_capture_on_commit_callbacks):
    row, code = queued(business, django_capture_on_commit_callbacks)

    with time_machine.travel(T0 + timedelta(seconds=1), tick=False):
        code_send_task.apply(kwargs={"business_id": business.pk, "code_id": row.pk, "code": code})

    with scopes_disabled():
        (stored,) = OneTimeCode.objects.values()
    assert stored["delivery_status"] == "sent"
    assert not [name for name, value in stored.items() if code in str(value)]


@pytest.mark.django_db(transaction=True)
def test_the_owner_sees_failed_codes_and_their_reason_in_the_admin(member, twilio, other_member):
    from tests.conftest import client_for, user_make

    twilio.script[PHONE] = (400, 21211, "not a number", {})
    ask_for_a_code()
    with scopes_disabled():
        other = OneTimeCode.objects.create(business=other_member.business, member=other_member, channel="sms",
                                           identifier_digest="x", ip_digest="y", code_digest="z", created_at=T0,
                                           expires_at=T0, delivery_status="failed", delivery_error="elsewhere")  # fmt: skip
    owner = client_for(user_make("owner", member.business))

    page = owner.get("/admin/members/onetimecode/").content.decode()

    assert "Failed" in page and "invalid phone number" in page and "elsewhere" not in page
    assert owner.get(f"/admin/members/onetimecode/{the_code_of(member).pk}/change/").status_code == 200
    assert owner.get(f"/admin/members/onetimecode/{other.pk}/change/").status_code == 404
    assert client_for(user_make("staff", member.business)).get("/admin/members/onetimecode/").status_code == 403


def the_code_of(member) -> OneTimeCode:
    with scopes_disabled():
        return OneTimeCode.objects.get(member=member)
