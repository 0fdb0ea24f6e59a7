"""Owners' tokens and members management through the API."""

from django_scopes import scopes_disabled
from knox.models import AuthToken
from rest_framework.test import APIClient

from members.models import ConsentEvent, Member, MemberToken
from tests.api.conftest import member_client_for
from tests.conftest import member_make, visit_make


def test_an_owner_logs_in_for_a_token_and_logs_out(owner):
    client = APIClient()

    response = client.post("/api/v1/auth/token/", {"email": "OWNER@kopi.example", "password": "pw-Secret-123"},
                           format="json")  # fmt: skip

    assert response.status_code == 200
    secret = response.json()["token"]
    assert response.json()["businesses"][0]["slug"] == "kopi"
    assert secret[:8] not in "".join(AuthToken.objects.values_list("digest", flat=True))
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/members/").status_code == 200
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.get("/api/v1/members/").status_code == 401


def test_a_wrong_password_gets_no_token(owner):
    response = APIClient().post(
        "/api/v1/auth/token/", {"email": "owner@kopi.example", "password": "nope"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_credentials"


def test_logins_are_throttled_per_client_address_not_forwarded_for(owner, settings):
    settings.AXES_ENABLED = False  # the throttle alone: the password lockout takes six (test_login_lockout)
    client = APIClient()
    body = {"email": "owner@kopi.example", "password": "nope"}

    statuses = [
        client.post("/api/v1/auth/token/", body, format="json", HTTP_X_FORWARDED_FOR=f"10.1.1.{i}").status_code
        for i in range(11)
    ]

    assert statuses == [400] * 10 + [429]


def test_members_are_listed_newest_first_and_searched(owner_api, business, member, other_member):
    ana = member_make(business, first_name="Ana", last_name="Tan")

    listed = owner_api.get("/api/v1/members/").json()["results"]
    found = owner_api.get("/api/v1/members/", {"q": "ana"}).json()["results"]

    assert [m["id"] for m in listed] == [ana.pk, member.pk]
    assert [m["id"] for m in found] == [ana.pk]


def test_an_owner_creates_a_member_with_consent_recorded_by_staff(owner_api, business):
    body = {"first_name": "Siti", "phone": "012-888 7777", "consents": {"sms": True},
            "stamps_balance": 50, "status": "erased", "business": 999}  # fmt: skip

    response = owner_api.post("/api/v1/members/", body, format="json")

    assert response.status_code == 201
    assert response.json()["phone"] == "+60128887777"
    with scopes_disabled():
        saved = Member.objects.get(pk=response.json()["id"])
        event = ConsentEvent.objects.get(member=saved)
    assert (saved.business_id, saved.stamps_balance, saved.status, saved.consent_sms) == (
        business.pk,
        0,
        "active",
        True,
    )
    assert (event.channel, event.source) == ("sms", "staff")


def test_a_bad_phone_is_a_field_error(owner_api, business):
    response = owner_api.post("/api/v1/members/", {"first_name": "X", "phone": "12"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["phone"]


def test_an_owner_updates_and_erases_a_member(owner_api, member):
    updated = owner_api.patch(f"/api/v1/members/{member.pk}/", {"last_name": "Lim"}, format="json")
    member_app = member_client_for(member)
    erased = owner_api.post(f"/api/v1/members/{member.pk}/erase/")

    assert updated.json()["last_name"] == "Lim"
    assert erased.status_code == 200
    assert (erased.json()["status"], erased.json()["phone"]) == ("erased", "")
    assert member_app.get("/api/v1/member/me/").status_code == 401
    with scopes_disabled():
        assert MemberToken.objects.filter(revoked_at__isnull=True).count() == 0
    assert owner_api.patch(f"/api/v1/members/{member.pk}/", {"last_name": "X"}, format="json").status_code == 409


def test_an_owner_reads_a_members_visits(owner_api, member):
    visit_make(member, days_ago=1)

    visits = owner_api.get(f"/api/v1/members/{member.pk}/visits/").json()["results"]

    assert [(v["kind"], v["stamps_delta"]) for v in visits] == [("purchase", 1)]


def test_cors_is_closed_by_default_and_open_to_configured_origins(owner_api, settings):
    closed = owner_api.get("/api/v1/members/", HTTP_ORIGIN="https://evil.example")
    settings.CORS_ALLOWED_ORIGINS = ["https://app.kopi.example"]
    opened = owner_api.get("/api/v1/members/", HTTP_ORIGIN="https://app.kopi.example")
    preflight = APIClient().options(
        "/api/v1/member/me/", HTTP_ORIGIN="https://app.kopi.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )

    assert "Access-Control-Allow-Origin" not in closed
    assert closed["Vary"].lower().split(", ").count("origin") == 1
    assert opened["Access-Control-Allow-Origin"] == "https://app.kopi.example"
    # A preflight carries no credentials: answered (django-cors-headers: 200, empty) before
    # authentication, with what the member web app may send, and never with credentials.
    assert (preflight.status_code, preflight.content) == (200, b"")
    assert preflight["Access-Control-Allow-Origin"] == "https://app.kopi.example"
    assert preflight["Access-Control-Allow-Headers"] == "authorization, content-type, idempotency-key, x-business"
    assert preflight["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE"
    assert preflight["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in preflight


def test_cors_covers_the_api_only(settings, business):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.kopi.example"]

    unknown = APIClient().get("/api/v1/no-such-thing/", HTTP_ORIGIN="https://app.kopi.example")
    site = APIClient().get("/accounts/login/", HTTP_ORIGIN="https://app.kopi.example")
    site_preflight = APIClient().options(
        "/accounts/login/", HTTP_ORIGIN="https://app.kopi.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )

    assert (unknown.status_code, unknown["Access-Control-Allow-Origin"]) == (404, "https://app.kopi.example")
    assert "Access-Control-Allow-Origin" not in site
    assert "Access-Control-Allow-Origin" not in site_preflight


def test_options_without_cors_is_not_allowed(owner_api):
    response = owner_api.options("/api/v1/members/")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_throttles_count_per_member_token_not_per_forwarded_address(settings, member, business):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "member": "3/min"},
    }
    wei, ana = member_client_for(member), member_client_for(member_make(business, first_name="Ana"))

    statuses = [wei.get("/api/v1/member/card/", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}").status_code for i in range(4)]
    other = ana.get("/api/v1/member/card/")

    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200


def test_the_client_address_is_the_peer_unless_trusted_proxies_are_configured(settings):
    from django.test import RequestFactory

    from winback.api import client_ip

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    direct = client_ip(request)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}

    assert (direct, client_ip(request)) == ("10.0.0.1", "203.0.113.7")
