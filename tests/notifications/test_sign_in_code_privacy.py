"""Nobody of the business can read a member's one-time sign-in code: not in the recorded
messages, not in the admin (a manager who could would sign in as any member). Tests read it from
the recording backend's in-memory outbox."""

import logging

import pytest
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from notifications.models import RecordedMessage
from tests.conftest import sign_in_code_sent


def ask_code(capture, **identifier):
    with capture(execute=True):
        return APIClient().post("/api/v1/member/auth/code/", {"business": "kopi", **identifier}, format="json")


def recorded(to: str) -> RecordedMessage:
    with scopes_disabled():
        return RecordedMessage.objects.get(to=to)


@pytest.mark.parametrize("identifier", [{"phone": "+60123456789"}, {"email": "wei@example.com"}])
def test_the_recorded_sign_in_message_keeps_no_code(member, identifier, django_capture_on_commit_callbacks):
    ask_code(django_capture_on_commit_callbacks, **identifier)
    to = next(iter(identifier.values()))
    code = sign_in_code_sent(to)
    row = recorded(to)

    assert len(code) == 6 and code.isdigit()
    assert code not in row.title and code not in row.body and code not in str(row.payload)
    assert row.body == "•••••• is your Kopi Corner sign-in code. It expires in 10 minutes."
    assert row.payload == {"url": "", "purpose": "sign_in"}


@pytest.mark.parametrize("who", ["owner_client", "manager_client"])
def test_owners_and_managers_cannot_read_the_code_in_the_admin(
    member, who, request, django_capture_on_commit_callbacks
):
    client = request.getfixturevalue(who)
    ask_code(django_capture_on_commit_callbacks, phone="+60123456789")
    code = sign_in_code_sent("+60123456789")
    row = recorded("+60123456789")

    pages = [
        client.get("/admin/notifications/recordedmessage/"),
        client.get(f"/admin/notifications/recordedmessage/{row.pk}/change/"),
    ]
    search = client.get("/admin/notifications/recordedmessage/", {"q": code})

    assert [p.status_code for p in pages] == [200, 200]
    assert all(code not in p.content.decode() for p in pages)
    assert "sign-in code" in pages[0].content.decode()  # the message is listed, its code masked
    assert search.context["cl"].result_count == 0  # nor can the code be searched for


def test_the_code_is_logged_for_the_demo_in_development_only(member, settings, caplog,
                                                             django_capture_on_commit_callbacks):  # fmt: skip
    caplog.set_level(logging.INFO)
    settings.DEBUG = False
    ask_code(django_capture_on_commit_callbacks, phone="+60123456789")
    first = sign_in_code_sent("+60123456789")
    in_production = caplog.text
    caplog.clear()
    settings.DEBUG = True
    ask_code(django_capture_on_commit_callbacks, phone="+60123456789")
    second = sign_in_code_sent("+60123456789")

    assert first not in in_production
    assert f"{second} is your Kopi Corner sign-in code" in caplog.text
