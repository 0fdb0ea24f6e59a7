"""SMS pumping: the public join and code endpoints text only numbers that can receive a text, in
the business's allowed countries, and at most so many codes per business an hour and a day.
Every refusal says why; none of them depends on whether the number is a member's."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from members.models import Member, OneTimeCode
from notifications.models import RecordedMessage
from tests.conftest import business_make, member_make

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=ZoneInfo("UTC"))
CODE = "/api/v1/member/auth/code/"
JOIN = "/api/v1/member/auth/join/"
NOT_TEXTABLE = {"phone": ["This number can't receive text messages."]}


def ask(capture, phone, slug="kopi", endpoint=CODE, ip="10.1.0.1"):
    body = {"business": slug, "phone": phone}
    if endpoint == JOIN:
        body["first_name"] = "Ana"
    with capture(execute=True):
        return APIClient().post(endpoint, body, format="json", REMOTE_ADDR=ip)


def rows(**filters) -> int:
    with scopes_disabled():
        return OneTimeCode.objects.filter(**filters).count()


def texts() -> int:
    with scopes_disabled():
        return RecordedMessage.objects.count()


@pytest.fixture
def uk(db):
    return business_make(name="Tea Room", slug="tea", country="GB", timezone="Europe/London")


@pytest.mark.parametrize("endpoint", [CODE, JOIN])
def test_a_premium_rate_number_is_refused_with_the_reason(uk, endpoint, django_capture_on_commit_callbacks):
    response = ask(django_capture_on_commit_callbacks, "09012 345678", slug="tea", endpoint=endpoint)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == NOT_TEXTABLE
    assert rows() == 0 and texts() == 0
    with scopes_disabled():
        assert Member.objects.count() == 0


@pytest.mark.parametrize("endpoint", [CODE, JOIN])
def test_a_landline_is_refused_the_same_way(business, endpoint, django_capture_on_commit_callbacks):
    response = ask(django_capture_on_commit_callbacks, "+60323856789", endpoint=endpoint)

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == NOT_TEXTABLE
    assert rows() == 0


@pytest.mark.parametrize("endpoint", [CODE, JOIN])
def test_a_foreign_mobile_is_refused_with_the_business_country_by_default(
    business, endpoint, django_capture_on_commit_callbacks
):
    member_make(business, first_name="Tan", phone="+6581234567")  # a member's or not, the same answer

    response = ask(django_capture_on_commit_callbacks, "+6581234567", endpoint=endpoint)
    stranger = ask(django_capture_on_commit_callbacks, "+6581234568", endpoint=endpoint)

    assert response.status_code == stranger.status_code == 400
    assert response.json()["error"]["fields"] == {"phone": ["We can only text numbers in Malaysia."]}
    assert response.json() == stranger.json()
    assert rows() == 0 and texts() == 0


@pytest.mark.parametrize("endpoint", [CODE, JOIN])
def test_a_foreign_country_the_business_allows_is_texted(uk, endpoint, django_capture_on_commit_callbacks):
    business_make(name="Kopi Corner", slug="kopi", channel_settings={"sign_in": {"sms_countries": ["MY", "SG"]}})

    singapore = ask(django_capture_on_commit_callbacks, "+6581234567", endpoint=endpoint)
    thailand = ask(django_capture_on_commit_callbacks, "+66812345678", endpoint=endpoint)
    in_the_uk = ask(django_capture_on_commit_callbacks, "+6581234567", slug="tea", endpoint=endpoint)

    assert singapore.status_code == 202
    assert thailand.status_code == 400
    assert thailand.json()["error"]["fields"] == {"phone": ["We can only text numbers in Malaysia or Singapore."]}
    assert in_the_uk.json()["error"]["fields"] == {"phone": ["We can only text numbers in the United Kingdom."]}


@pytest.mark.parametrize("endpoint", [CODE, JOIN])
def test_the_hourly_cap_of_the_business_then_the_next_hour(
    business, endpoint, settings, django_capture_on_commit_callbacks
):
    settings.SIGN_IN_CODES_PER_BUSINESS_HOUR = 3
    member_make(business, first_name="Wei", phone="+60123456789")
    with time_machine.travel(T0, tick=False):
        first = [ask(django_capture_on_commit_callbacks, f"+6012300{i:04d}", endpoint=endpoint, ip=f"10.2.0.{i}")
                 for i in range(3)]  # fmt: skip
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        capped = ask(django_capture_on_commit_callbacks, "+60123456789", endpoint=endpoint, ip="10.2.1.1")
    with time_machine.travel(T0 + timedelta(hours=1, seconds=1), tick=False):
        later = ask(django_capture_on_commit_callbacks, "+60123456789", endpoint=endpoint, ip="10.2.1.1")

    assert [r.status_code for r in first] == [202] * 3
    assert capped.status_code == 429
    assert capped.json()["error"] == {
        "code": "too_many_codes",
        "message": "Too many sign-in codes were sent for this business in the last hour; try again in 40 minutes.",
        "fields": {},
    }
    assert int(capped["Retry-After"]) == 40 * 60 + 1
    assert later.status_code == 202
    assert rows(business=business) == 4


def test_the_daily_cap_of_the_business(business, settings, django_capture_on_commit_callbacks):
    settings.SIGN_IN_CODES_PER_BUSINESS_DAY = 4
    statuses = []
    for hour in range(5):
        with time_machine.travel(T0 + timedelta(hours=hour), tick=False):
            statuses.append(ask(django_capture_on_commit_callbacks, f"+6012300{hour:04d}", ip=f"10.3.0.{hour}"))
    with time_machine.travel(T0 + timedelta(hours=24, seconds=1), tick=False):
        next_day = ask(django_capture_on_commit_callbacks, "+60123009999", ip="10.3.1.1")

    assert [r.status_code for r in statuses] == [202] * 4 + [429]
    assert statuses[-1].json()["error"]["message"] == (
        "Too many sign-in codes were sent for this business in the last 24 hours; try again in 20 hours."
    )
    assert next_day.status_code == 202


def test_the_cap_is_set_per_business_in_its_settings(db, settings, django_capture_on_commit_callbacks):
    business_make(name="Kopi Corner", slug="kopi", channel_settings={"sign_in": {"codes_per_hour": 1}})

    statuses = [ask(django_capture_on_commit_callbacks, f"+6012300{i:04d}", ip=f"10.4.0.{i}").status_code
                for i in range(2)]  # fmt: skip

    assert statuses == [202, 429]


def test_another_business_codes_do_not_count_toward_this_cap(business, settings, django_capture_on_commit_callbacks):
    settings.SIGN_IN_CODES_PER_BUSINESS_HOUR = 2
    business_make(name="Next Door", slug="next")
    for i in range(2):
        ask(django_capture_on_commit_callbacks, f"+6012300{i:04d}", slug="next", ip=f"10.5.0.{i}")

    theirs = ask(django_capture_on_commit_callbacks, "+60123000099", slug="next", ip="10.5.1.1")
    ours = ask(django_capture_on_commit_callbacks, "+60123000099", ip="10.5.1.2")

    assert (theirs.status_code, ours.status_code) == (429, 202)


def test_a_join_tells_the_phone_refusal_with_the_other_field_errors(business):
    body = {"business": "kopi", "first_name": "", "phone": "+6581234567"}

    response = APIClient().post(JOIN, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "first_name": ["Enter your first name."],
        "phone": ["We can only text numbers in Malaysia."],
    }
