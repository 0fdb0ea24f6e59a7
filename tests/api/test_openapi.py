"""The OpenAPI schema validates and documents every route; schemathesis fuzzes every operation as
a member, a point-of-sale key and an owner: no server error, no response outside the schema."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from django.core.cache import cache
from django.test import Client
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import member_client_for, pos_client_for, send_make, user_client_for
from tests.api.test_cross_tenant import api_routes
from tests.conftest import campaign_make, member_make, user_make, visit_make
from winback.wsgi import application


def openapi() -> dict:
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi(db):
    validate_schema(openapi())


def test_the_schema_documents_every_route_and_method():
    documented = {
        (path, method.upper())
        for path, operations in openapi()["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }

    routes = {("/" + re.sub(r"<(?:int|slug):(\w+)>", r"{\1}", route), method) for route, method in api_routes()}
    assert documented == routes


def test_every_operation_documents_its_errors_and_bodies():
    schema = openapi()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"400", "401", "403", "404", "429"} <= set(responses), (method, path)
            assert responses["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            success = [code for code in responses if code.startswith("2")]
            assert success, (method, path)
            if method in ("post", "patch", "put") and operation.get("requestBody"):
                assert operation["requestBody"]["content"]["application/json"]["schema"], (method, path)


def test_secrets_appear_only_where_they_are_issued():
    schemas = openapi()["components"]["schemas"]

    with_secret = {name for name, s in schemas.items() if {"secret", "token"} & set(s.get("properties", {}))}

    assert with_secret == {"ApiKeyCreated", "MemberTokenIssued", "LoginToken"}


# --- schemathesis --------------------------------------------------------------------------------

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# The coverage phase walks every boundary of every field: on the campaign body alone that is
# hundreds of requests. Hypothesis's fuzzing (and the explicit examples) keep this under a minute.
schema.config.phases.coverage.enabled = False
FUZZ = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
# A valid request may still name an id that is not the caller's (404) or be the wrong caller's
# (403): acceptance of valid data is not a property of this API. Unknown query parameters are
# ignored, not rejected.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]


@pytest.fixture
def fuzz_world(business, owner, member):
    """Real rows with low ids, so generated ids sometimes hit them."""
    business.channel_settings = {c: {"enabled": True} for c in ("push", "sms", "whatsapp", "email")}
    business.save()
    other = member_make(business, first_name="Ana", phone="+60129998888")
    visit_make(member, days_ago=30)
    campaign = campaign_make(business, reward={"kind": "free_item", "item": "tea"})
    send_make(member, campaign=campaign)
    send_make(other, reward_kind="bonus_stamps")
    user_make("manager", business)
    cache.clear()
    return {
        "member": _auth(member_client_for(member)),
        "pos": _auth(pos_client_for(business)),
        "owner": _auth(user_client_for(owner)),
    }


def _auth(client) -> dict:
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@FUZZ
def test_every_operation_as_a_member_a_point_of_sale_key_and_an_owner(case, fuzz_world):
    for caller in ("member", "pos", "owner"):
        cache.clear()  # throttles are not under test here
        case.call_and_validate(headers={**(case.headers or {}), **fuzz_world[caller]}, excluded_checks=EXCLUDED)


# --- deeply nested bodies ------------------------------------------------------------------------

# Far past any recursion limit (Hypothesis raises Python's while a test runs): the decoder alone
# raised RecursionError, a 500 HTML page.
NESTED = 100_000


def deep_bodies(generated) -> list[bytes]:
    """Raw JSON nested ``NESTED`` levels: arrays, objects, and inside a field of the generated body."""
    deep_array = "[" * NESTED + "]" * NESTED
    bodies = [deep_array, '{"a": ' * NESTED + "1" + "}" * NESTED]
    if isinstance(generated, dict) and generated:
        first, *rest = generated
        fields = [f"{json.dumps(first)}: {deep_array}"] + [f"{json.dumps(k)}: {json.dumps(generated[k])}" for k in rest]
        bodies.append("{" + ", ".join(fields) + "}")
    return [body.encode() for body in bodies]


@pytest.mark.django_db(transaction=True)
@schema.include(lambda ctx: "requestBody" in ctx.operation.definition.raw).parametrize()
@settings(FUZZ, max_examples=2)
def test_every_operation_with_a_body_answers_deeply_nested_json_with_a_4xx(case, fuzz_world):
    generated = case.body
    for caller in ("member", "pos", "owner"):
        for body in deep_bodies(generated):
            cache.clear()
            case.body = body
            response = case.call_and_validate(
                headers={**(case.headers or {}), **fuzz_world[caller], "Content-Type": "application/json"},
                excluded_checks=EXCLUDED,
            )
            assert 400 <= response.status_code < 500, (caller, response.status_code, response.text[:200])
