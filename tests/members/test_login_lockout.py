"""Password guessing: the sign-in form (and the API's token endpoint) lock out an account after
five wrong passwords, and an address after five wrong tries on any accounts; the sixth try is
refused with a clear message, the right password included, until the cool-off ends or the owner
unlocks the account from the team page (a superuser from the admin)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from tests.conftest import client_for, user_make

LOGIN = "/accounts/login/"
LOCKED = "Too many failed sign-ins"
WRONG = "Please enter a correct username and password"


def sign_in(email: str, password: str, address: str = "10.0.0.1", **extra):
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": email, "password": password}, **extra)
    response.signed_in = "_auth_user_id" in client.session
    return response


def membership_of(user):
    with scopes_disabled():
        return user.memberships.get()


def wrong_tries(email: str, n: int, address: str = "10.0.0.1") -> list[int]:
    return [sign_in(email, "wrong-password", address).status_code for _ in range(n)]


def test_five_wrong_passwords_are_told_so_and_the_sixth_locks_the_account(owner):
    told = [sign_in("owner@kopi.example", "wrong-password") for _ in range(5)]
    sixth = sign_in("owner@kopi.example", "wrong-password")

    assert [r.status_code for r in told] == [200] * 5
    assert all(WRONG in r.content.decode() for r in told)
    assert sixth.status_code == 429
    assert LOCKED in sixth.content.decode()
    assert 'name="password"' in sixth.content.decode()  # the sign-in page, not a bare error text


def test_a_locked_account_is_refused_with_the_right_password_from_anywhere(owner):
    wrong_tries("owner@kopi.example", 6)

    right = sign_in("owner@kopi.example", "pw-Secret-123", address="192.0.2.99")

    assert right.status_code == 429
    assert LOCKED in right.content.decode()
    assert not right.signed_in


def test_changing_the_case_or_spacing_of_the_email_counts_as_the_same_account(owner):
    for email in ["OWNER@kopi.example", " owner@KOPI.example", "Owner@Kopi.Example", "owner@kopi.example ",
                  "OWNER@KOPI.EXAMPLE", "owner@kopi.example"]:  # fmt: skip
        sign_in(email, "wrong-password", address=f"198.51.100.{len(email)}")

    assert sign_in("owner@kopi.example", "pw-Secret-123", address="192.0.2.1").status_code == 429


def test_one_address_trying_many_accounts_is_locked_for_every_account(owner, staff):
    statuses = [sign_in(f"guess{i}@kopi.example", "wrong-password").status_code for i in range(6)]

    assert statuses == [200] * 5 + [429]
    assert sign_in("owner@kopi.example", "pw-Secret-123").status_code == 429
    # The accounts themselves are not locked: from another address the owner signs in.
    assert sign_in("owner@kopi.example", "pw-Secret-123", address="10.9.9.9").signed_in


def test_a_forged_forwarded_for_does_not_reset_the_address_count(owner):
    statuses = [sign_in(f"guess{i}@kopi.example", "x", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
                for i in range(6)]  # fmt: skip

    assert statuses == [200] * 5 + [429]


def test_behind_a_trusted_proxy_the_address_is_the_one_the_api_throttles_use(owner, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # One proxy at 10.0.0.1 appends the client's address: two clients, counted apart.
    for i in range(5):
        sign_in(f"guess{i}@kopi.example", "x", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert sign_in("guess9@kopi.example", "x", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert sign_in("owner@kopi.example", "pw-Secret-123", HTTP_X_FORWARDED_FOR="203.0.113.8").signed_in
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


def test_the_lockout_ends_after_the_cool_off(owner, settings):
    wrong_tries("owner@kopi.example", 6)

    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert sign_in("owner@kopi.example", "pw-Secret-123").signed_in


def test_the_api_token_endpoint_refuses_a_locked_account_in_the_apis_error_shape(owner):
    wrong_tries("owner@kopi.example", 6)

    response = APIClient(REMOTE_ADDR="192.0.2.50").post(
        "/api/v1/auth/token/", {"email": "owner@kopi.example", "password": "pw-Secret-123"}, format="json"
    )

    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "locked_out"
    assert LOCKED in response.json()["error"]["message"]
    assert int(response["Retry-After"]) > 0


def test_the_apis_lockout_answer_keeps_its_cors_headers(owner, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example"]
    wrong_tries("owner@kopi.example", 6)

    response = APIClient().post("/api/v1/auth/token/", {"email": "owner@kopi.example", "password": "x"},
                                format="json", HTTP_ORIGIN="https://app.example")  # fmt: skip

    assert (response.status_code, response["Access-Control-Allow-Origin"]) == (429, "https://app.example")


def test_wrong_passwords_through_the_api_count_toward_the_account_lock(owner):
    api = APIClient(REMOTE_ADDR="192.0.2.51")
    body = {"email": "owner@kopi.example", "password": "nope"}

    statuses = [api.post("/api/v1/auth/token/", body, format="json").status_code for _ in range(6)]

    assert statuses == [400] * 5 + [429]
    assert sign_in("owner@kopi.example", "pw-Secret-123", address="192.0.2.52").status_code == 429


def test_a_right_password_signs_in_and_force_login_sessions_are_unaffected(owner, owner_client):
    assert sign_in("owner@kopi.example", "pw-Secret-123").signed_in
    assert owner_client.get("/settings/team/").status_code == 200


# --- unlocking -----------------------------------------------------------------------------------


def test_the_owner_sees_a_locked_team_member_and_unlocks_them(owner_client, staff):
    wrong_tries("staff@kopi.example", 6)
    page = owner_client.get("/settings/team/").content.decode()
    membership = membership_of(staff)

    response = owner_client.post(f"/settings/team/{membership.pk}/unlock/")

    assert "Locked out" in page
    assert response.status_code == 302
    assert "Locked out" not in owner_client.get("/settings/team/").content.decode()
    assert sign_in("staff@kopi.example", "pw-Secret-123", address="10.9.9.9").signed_in


def test_an_owner_cannot_unlock_another_business_user(owner_client, other_owner):
    wrong_tries("owner@other.example", 6)
    membership = membership_of(other_owner)

    response = owner_client.post(f"/settings/team/{membership.pk}/unlock/")

    assert response.status_code == 404
    assert sign_in("owner@other.example", "pw-Secret-123", address="10.9.9.9").status_code == 429


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_only_the_owner_unlocks(role, request, business):
    target = user_make("staff", business, "locked@kopi.example")
    wrong_tries("locked@kopi.example", 6)

    response = client_for(request.getfixturevalue(role)).post(f"/settings/team/{membership_of(target).pk}/unlock/")

    assert response.status_code == 403
    assert sign_in("locked@kopi.example", "pw-Secret-123", address="10.9.9.9").status_code == 429


def test_a_superuser_unlocks_an_account_from_the_admin(owner, db):
    root = user_make(None, None, "root@winback.example")
    root.is_superuser = root.is_staff = True
    root.save()
    wrong_tries("owner@kopi.example", 6)
    attempt = AccessAttempt.objects.get(username="owner@kopi.example")

    response = client_for(root).post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert sign_in("owner@kopi.example", "pw-Secret-123", address="10.9.9.9").signed_in
