"""Deeply nested JSON is a 400 in the API's one error shape on every endpoint that reads a body —
never a RecursionError answered as a 500 HTML page — and nothing is written."""

from __future__ import annotations

import pytest
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from members.models import Member, Visit
from tests.api.conftest import member_client_for, pos_client_for, user_client_for

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
VERY_DEEP = "[" * 100_000 + "]" * 100_000
MIXED = '{"a":[' * 500 + "1" + "]}" * 500
# Deep inside a real field of an otherwise valid body.
IN_A_FIELD = '{"business": "kopi", "first_name": ' + "[" * 1000 + "]" * 1000 + ', "phone": "+60129876543"}'
JUST_TOO_DEEP = "[" * 33 + "]" * 33

BODIES = {"array": DEEP_ARRAY, "object": DEEP_OBJECT, "very_deep": VERY_DEEP, "mixed": MIXED,
          "in_a_field": IN_A_FIELD, "33_levels": JUST_TOO_DEEP}  # fmt: skip


def endpoints(member, business, owner) -> dict[str, tuple]:
    """(client, method, path) of endpoints that read a JSON body, each as its own caller."""
    return {
        "public join": (APIClient(), "post", "/api/v1/member/auth/join/"),
        "sign-in code": (APIClient(), "post", "/api/v1/member/auth/code/"),
        "owner login": (APIClient(), "post", "/api/v1/auth/token/"),
        "member profile": (member_client_for(member), "patch", "/api/v1/member/me/"),
        "POS stamp": (pos_client_for(business), "post", f"/api/v1/pos/members/{member.pk}/visits/"),
        "POS redeem": (pos_client_for(business, "Till 2"), "post", "/api/v1/pos/rewards/redeem/"),
        "campaign create": (user_client_for(owner), "post", "/api/v1/campaigns/"),
        "member create": (user_client_for(owner), "post", "/api/v1/members/"),
    }


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(
    "endpoint",
    ["public join", "sign-in code", "owner login", "member profile", "POS stamp", "POS redeem", "campaign create",
     "member create"],
)  # fmt: skip
def test_deeply_nested_json_is_the_apis_400_and_writes_nothing(endpoint, body, member, business, owner):
    client, method, path = endpoints(member, business, owner)[endpoint]

    response = getattr(client, method)(path, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "parse_error", "message": "JSON parse error - nested deeper than 32 levels.", "fields": {}}
    }
    with scopes_disabled():
        assert (Member.objects.count(), Visit.objects.count()) == (1, 0)


def test_nesting_up_to_the_limit_is_parsed_and_answered_as_a_field_error(business, owner):
    body = '{"name": ' + "[" * 31 + "]" * 31 + "}"  # 32 levels with the body itself

    response = user_client_for(owner).post("/api/v1/campaigns/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "text",
    ['"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["', '"\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
     '{"a": "}}}}}}}}", "b": "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"}'],
)  # fmt: skip
def test_brackets_inside_strings_do_not_count_as_nesting(text, business):
    response = APIClient().post("/api/v1/member/auth/code/", data=text, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"  # a field error, so the body was parsed


def test_a_body_that_is_not_json_is_still_the_apis_parse_error(business):
    response = APIClient().post("/api/v1/member/auth/code/", data='{"business": ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
