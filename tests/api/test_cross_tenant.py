"""The outsider gets nothing: every /api/v1/ route and method, built from the URL configuration,
called as an owner, a point-of-sale key and a member of business A with the objects of business
B, answers 404 (or 403), changes no row of B, and shows no row of B. A new route without an entry
here fails ``test_every_api_route_has_a_matrix_entry``.

Then mass assignment: posting business, balances, status, role and ownership fields to every
writable route (on A's own objects) changes none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, CampaignSend, EvaluationRun
from members.models import (
    ApiKey,
    ConsentEvent,
    Member,
    Membership,
    MemberToken,
    OneTimeCode,
    Suppression,
    Visit,
    WalletReward,
)
from notifications import inbox
from notifications.models import Delivery, DeliveryEvent, PushSubscription, RecordedMessage
from tests.api.conftest import member_client_for, pos_client_for, send_make, user_client_for
from tests.conftest import campaign_make, visit_make
from winback.api import ManagerAPIView, MemberAPIView, PointOfSaleAPIView, PublicAPIView

# --- the routes, from the URL configuration ------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns, prefix=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p


def api_routes() -> dict[tuple[str, str], type]:
    """(route, METHOD) → view class, for every route under api/v1/."""
    found = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/") or pattern.name == "not-found":  # the JSON 404 for the rest
            continue
        view = pattern.callback.cls
        for method in METHODS:
            if hasattr(view, method):
                found[(route, method.upper())] = view
    return found


def audience(view) -> set[str]:
    """Which of the three callers a route is for."""
    if issubclass(view, MemberAPIView):
        return {"member"}
    if issubclass(view, PointOfSaleAPIView):
        return {"owner", "pos"}
    if issubclass(view, ManagerAPIView):
        return {"owner"}
    if issubclass(view, PublicAPIView):
        return {"owner", "pos", "member"}
    return {"owner"}  # signed-in users' own routes (log out)


# --- the two businesses --------------------------------------------------------------------------


@dataclass
class World:
    a: object
    b: object
    clients: dict
    objects: dict = field(default_factory=dict)  # B's objects by name
    own: dict = field(default_factory=dict)  # A's objects by name
    markers: list = field(default_factory=list)  # strings only B's rows contain


@pytest.fixture
def world(business, other_business, owner, other_owner, member, other_member):
    b = other_business
    campaign_b = campaign_make(b, name="Theirs-Campaign-B", reward={"kind": "free_item", "item": "scone"})
    visit_make(other_member, days_ago=40)
    send_b = send_make(other_member, campaign=campaign_b, reward_kind="free_item")
    with scope(business=b.pk):
        reward_b = inbox.reward_claim(send=send_b, at=timezone.now())
        subscription_b = PushSubscription.objects.create(
            business=b, member=other_member, endpoint="https://push.example.com/b-only", p256dh="k", auth="a"
        )
        run_b = EvaluationRun.objects.create(
            business=b, local_date=timezone.now().date(), started_at=timezone.now(), stats={str(campaign_b.pk): {}}
        )
    member_b_client = member_client_for(other_member, "b-phone")
    pos_b = pos_client_for(b, "B-till")

    campaign_a = campaign_make(business, name="Ours", status="draft", activated_at=None)
    send_a = send_make(member, reward_kind="free_item")
    with scope(business=business.pk):
        reward_a = inbox.reward_claim(send=send_a, at=timezone.now())
    clients = {
        "owner": user_client_for(owner),
        "pos": pos_client_for(business),
        "member": member_client_for(member),
    }
    world = World(a=business, b=b, clients=clients)
    world.objects = {
        "member": other_member, "campaign": campaign_b, "send": send_b, "reward": reward_b,
        "subscription": subscription_b, "device": member_b_client.token, "api_key": pos_b.key, "run": run_b,
        "business": b,
    }  # fmt: skip
    world.own = {"member": member, "campaign": campaign_a, "send": send_a, "reward": reward_a,
                 "device": clients["member"].token, "api_key": clients["pos"].key}  # fmt: skip
    world.markers = [
        "Outsider",
        other_member.card_code,
        "Theirs-Campaign-B",
        reward_b.code,
        "b-only",
        "B-till",
        "+447400123456",
    ]
    return world


TENANT_MODELS = [Member, Visit, ConsentEvent, WalletReward, Suppression, Membership, MemberToken, ApiKey, OneTimeCode,
                 Campaign, CampaignSend, EvaluationRun, Delivery, DeliveryEvent, PushSubscription, RecordedMessage]  # fmt: skip


def snapshot(business) -> dict:
    """Every row of ``business``, as stored (last-used stamps aside: they are A's to move)."""
    with scopes_disabled():
        return {
            m.__name__: [
                {k: v for k, v in row.items() if k != "last_used_at"}
                for row in m.objects.filter(business=business).order_by("pk").values()
            ]
            for m in TENANT_MODELS
        }


# --- the matrix ----------------------------------------------------------------------------------


@dataclass
class Entry:
    # "object": B's id in the URL; "query": B's object in the body or query; "own": the caller's
    # own; "public": no caller at all, B's business named; "join": B's sign-up with B's member's phone
    kind: str
    url: dict = field(default_factory=dict)  # path kwarg → name in world.objects (its pk, or slug for <slug:…>)
    body: object = None  # dict, or a function of the world
    query: object = None
    headers: dict = field(default_factory=dict)
    statuses: tuple = (202, 400)  # what a public route may answer


def _b(name, attr="pk"):
    return lambda w: getattr(w.objects[name], attr)


MATRIX: dict[tuple[str, str], Entry] = {
    # the member app
    ("api/v1/member/auth/code/", "POST"): Entry(
        "public", body=lambda w: {"business": w.b.slug, "phone": "+60123456789"}
    ),
    ("api/v1/member/auth/token/", "POST"): Entry(
        "public", body=lambda w: {"business": w.b.slug, "phone": "+447400123456", "code": "123456"}
    ),
    # Joining B with the phone of B's member: the same answer as for a new phone, and B's member
    # only gets a sign-in code (its name and consents stay as they were, nobody new is created).
    ("api/v1/member/auth/join/", "POST"): Entry(
        "join",
        body=lambda w: {
            "business": w.b.slug,
            "first_name": "Mallory",
            "phone": "+447400123456",
            "consents": {"sms": True, "whatsapp": True, "push": True},
        },  # fmt: skip
    ),
    # Public: the key is the server's, not B's; 503 while push is not set up.
    ("api/v1/businesses/<slug:slug>/push-key/", "GET"): Entry("public", url={"slug": "business"}, statuses=(200, 503)),
    ("api/v1/member/auth/sign-out/", "POST"): Entry("own"),
    ("api/v1/member/devices/", "GET"): Entry("own"),
    ("api/v1/member/devices/<int:device_id>/", "DELETE"): Entry("object", url={"device_id": "device"}),
    ("api/v1/member/me/", "GET"): Entry("own"),
    ("api/v1/member/me/", "PATCH"): Entry("own", body={"first_name": "Changed"}),
    ("api/v1/member/me/erase/", "POST"): Entry("own"),
    ("api/v1/member/card/", "GET"): Entry("own"),
    ("api/v1/member/card/qr.svg", "GET"): Entry("own"),
    ("api/v1/member/visits/", "GET"): Entry("own"),
    ("api/v1/member/preferences/", "GET"): Entry("own"),
    ("api/v1/member/preferences/", "PATCH"): Entry("own", body={"sms": True}),
    ("api/v1/member/wallet/", "GET"): Entry("own"),
    ("api/v1/member/wallet/<int:reward_id>/", "GET"): Entry("object", url={"reward_id": "reward"}),
    ("api/v1/member/inbox/", "GET"): Entry("own"),
    ("api/v1/member/inbox/<int:send_id>/open/", "POST"): Entry("object", url={"send_id": "send"}),
    ("api/v1/member/push-subscriptions/", "GET"): Entry("own"),
    ("api/v1/member/push-subscriptions/", "POST"): Entry(
        "own",
        body={"endpoint": "https://fcm.googleapis.com/fcm/send/a-new", "keys": {"p256dh": "BKey", "auth": "AKey"}},
    ),
    ("api/v1/member/push-subscriptions/<int:subscription_id>/", "DELETE"): Entry(
        "object", url={"subscription_id": "subscription"}
    ),
    # point of sale
    ("api/v1/pos/members/lookup/", "GET"): Entry("query", query=lambda w: {"card_code": w.objects["member"].card_code}),
    ("api/v1/pos/members/<int:member_id>/", "GET"): Entry("object", url={"member_id": "member"}),
    ("api/v1/pos/members/<int:member_id>/visits/", "POST"): Entry(
        "object", url={"member_id": "member"}, body={"stamps": 1}, headers={"HTTP_IDEMPOTENCY_KEY": "matrix-1"}
    ),
    ("api/v1/pos/rewards/redeem/", "POST"): Entry("query", body=lambda w: {"code": w.objects["reward"].code}),
    # owners and managers
    ("api/v1/auth/token/", "POST"): Entry("public", body={"email": "owner@other.example", "password": "wrong"}),
    ("api/v1/auth/logout/", "POST"): Entry("own"),
    ("api/v1/api-keys/", "GET"): Entry("own"),
    ("api/v1/api-keys/", "POST"): Entry("own", body={"name": "New till"}),
    ("api/v1/api-keys/<int:key_id>/", "DELETE"): Entry("object", url={"key_id": "api_key"}),
    ("api/v1/members/", "GET"): Entry("own"),
    ("api/v1/members/", "POST"): Entry("own", body={"first_name": "New", "card_code": "NEWCARD1"}),
    ("api/v1/members/<int:member_id>/", "GET"): Entry("object", url={"member_id": "member"}),
    ("api/v1/members/<int:member_id>/", "PATCH"): Entry("object", url={"member_id": "member"}, body={"last_name": "X"}),
    ("api/v1/members/<int:member_id>/erase/", "POST"): Entry("object", url={"member_id": "member"}),
    ("api/v1/members/<int:member_id>/visits/", "GET"): Entry("object", url={"member_id": "member"}),
    ("api/v1/campaigns/", "GET"): Entry("own"),
    ("api/v1/campaigns/", "POST"): Entry("own", body={"name": "Made by A"}),
    ("api/v1/campaigns/audience/", "POST"): Entry("own", body={"inactivity_days": 14, "channels": ["sms"]}),
    ("api/v1/campaigns/<int:campaign_id>/", "GET"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/", "PATCH"): Entry(
        "object", url={"campaign_id": "campaign"}, body={"name": "Hijacked"}
    ),
    ("api/v1/campaigns/<int:campaign_id>/activate/", "POST"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/pause/", "POST"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/resume/", "POST"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/archive/", "POST"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/duplicate/", "POST"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/audience/", "GET"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/results/", "GET"): Entry("object", url={"campaign_id": "campaign"}),
    ("api/v1/campaigns/<int:campaign_id>/runs/", "GET"): Entry("object", url={"campaign_id": "campaign"}),
}

CALLERS = ("owner", "pos", "member")


def test_every_api_route_has_a_matrix_entry():
    routes = set(api_routes())

    assert routes - set(MATRIX) == set(), "add these routes to the cross-tenant matrix"
    assert set(MATRIX) - routes == set(), "these matrix entries name no route"


def _url(route: str, kwargs: dict) -> str:
    """The route with each kwarg's object: its pk for ``<int:…>``, its slug for ``<slug:…>``."""
    path = "/" + route
    for name, obj in kwargs.items():
        path = path.replace(f"<int:{name}>", str(obj.pk)).replace(f"<slug:{name}>", str(getattr(obj, "slug", "")))
    assert "<" not in path, path
    return path


def _call(client, method: str, url: str, entry: Entry, w: World, extra_body: dict | None = None):
    body = entry.body(w) if callable(entry.body) else dict(entry.body or {})
    body.update(extra_body or {})
    query = entry.query(w) if callable(entry.query) else entry.query
    if method == "GET":
        return client.get(url, query or {}, **entry.headers)
    return getattr(client, method.lower())(url, body, format="json", **entry.headers)


@pytest.mark.parametrize("route,method", sorted(MATRIX), ids=[f"{m} {r}" for r, m in sorted(MATRIX)])
def test_callers_of_business_a_get_nothing_of_business_b(world, route, method, django_capture_on_commit_callbacks):
    entry = MATRIX[(route, method)]
    view = api_routes()[(route, method)]
    url = _url(route, {k: world.objects[v] for k, v in entry.url.items()})

    for caller in CALLERS:
        allowed = caller in audience(view)
        before = snapshot(world.b)

        with django_capture_on_commit_callbacks(execute=True):
            response = _call(world.clients[caller], method, url, entry, world)

        after = snapshot(world.b)
        text = response.content.decode(errors="replace")
        seen = (caller, response.status_code, text[:300])
        if entry.kind in ("object", "query"):
            assert response.status_code == (404 if allowed else 403), seen
        elif entry.kind == "own":
            assert response.status_code < 300 if allowed else response.status_code == 403, seen
        elif entry.kind == "join":
            assert response.status_code == 202, seen
            # B's member is sent a sign-in code (a code row and the recorded SMS, to its own phone).
            codes_before, sent_before = before.pop("OneTimeCode"), before.pop("RecordedMessage")
            new_codes = [r for r in after.pop("OneTimeCode") if r not in codes_before]
            assert {r["member_id"] for r in new_codes} == {world.objects["member"].pk}, seen
            sent = [r for r in after.pop("RecordedMessage") if r not in sent_before]
            assert [(r["to"], r["title"]) for r in sent] == [("+447400123456", "Your Other Shop sign-in code")]
        else:  # public: B's business named in the body or URL, with A's member or wrong secrets
            assert response.status_code in entry.statuses, seen
            # Asking B's sign-in for a code is open to anyone: the request itself is counted (for
            # B's rate limits) as a code row without a member. Nothing else of B may change.
            assert {r["member_id"] for r in after.pop("OneTimeCode")} <= {None}
            before.pop("OneTimeCode")
        assert after == before, caller
        for marker in world.markers:
            assert marker not in text, (caller, marker)


# --- mass assignment -----------------------------------------------------------------------------

FORBIDDEN = {
    "business": None, "business_id": None, "member": None, "member_id": None, "stamps_balance": 999,
    "points_balance": 999, "status": "erased", "role": "owner", "purchase_count": 999, "total_spent": "999.00",
    "created_at": "2000-01-01T00:00:00Z", "revoked_at": None, "opened_at": "2000-01-01T00:00:00Z",
    "activated_at": "2000-01-01T00:00:00Z", "code": None, "prefix": "wbk_forged", "digest": "0" * 64,
}  # fmt: skip

STAMPS = {Member: "created_at", Campaign: "created_at", ApiKey: "created_at", PushSubscription: "created_at",
          Visit: "recorded_at", WalletReward: "created_at", MemberToken: "created_at"}  # fmt: skip
# Sign-up is tested for protected fields in test_member_join.py (it creates a member of its own).
WRITES = sorted(k for k in MATRIX if k[1] in ("POST", "PATCH", "PUT") and MATRIX[k].kind not in ("public", "join"))


@pytest.mark.parametrize("route,method", WRITES, ids=[f"{m} {r}" for r, m in WRITES])
def test_posting_protected_fields_to_a_writable_route_changes_none_of_them(world, route, method, staff):
    entry = MATRIX[(route, method)]
    view = api_routes()[(route, method)]
    caller = next(c for c in CALLERS if c in audience(view))
    url = _url(route, {k: world.own[v] for k, v in entry.url.items()})
    if route.endswith("redeem/"):
        entry = Entry("query", body={"code": world.own["reward"].code})
    extra = {k: (world.b.pk if v is None and k != "code" else v) for k, v in FORBIDDEN.items()}
    extra["code"] = "FORGED" if not route.endswith("redeem/") else world.own["reward"].code
    extra["member"] = extra["member_id"] = world.objects["member"].pk
    before_b = snapshot(world.b)
    with scopes_disabled():
        roles = list(Membership.objects.order_by("pk").values_list("user_id", "business_id", "role"))

    response = _call(world.clients[caller], method, url, entry, world, extra_body=extra)

    assert response.status_code < 500
    assert snapshot(world.b) == before_b
    with scopes_disabled():
        assert list(Membership.objects.order_by("pk").values_list("user_id", "business_id", "role")) == roles
        member = Member.objects.get(pk=world.own["member"].pk)
        assert (member.stamps_balance, member.points_balance, member.purchase_count) != (999, 999, 999)
        assert member.stamps_balance <= 1 and member.points_balance == 0
        assert member.status == ("erased" if route.endswith("erase/") else "active")
        assert member.created_at.year > 2000
        for model, stamp in STAMPS.items():
            assert not model.objects.filter(**{f"{stamp}__year": 2000}).exists(), model
        assert not CampaignSend.objects.filter(opened_at__year=2000).exists()
        assert not Campaign.objects.filter(activated_at__year=2000).exists()
        assert not ApiKey.objects.filter(prefix="wbk_forged").exists()
        assert not WalletReward.objects.filter(code="FORGED").exists()
        assert set(Campaign.objects.exclude(business=world.b).values_list("status", flat=True)) <= {
            "draft", "active", "paused", "archived"}  # fmt: skip
    if route == "api/v1/campaigns/<int:campaign_id>/" and method == "PATCH":
        with scopes_disabled():
            assert Campaign.objects.get(pk=world.own["campaign"].pk).status == "draft"


def test_lists_show_only_the_callers_rows(world):
    owner = world.clients["owner"]

    members = owner.get("/api/v1/members/").json()["results"]
    campaigns = owner.get("/api/v1/campaigns/").json()["results"]
    keys = owner.get("/api/v1/api-keys/").json()["results"]
    inbox = world.clients["member"].get("/api/v1/member/inbox/").json()["results"]

    assert {m["id"] for m in members} == {world.own["member"].pk}
    assert {c["id"] for c in campaigns} == {world.own["campaign"].pk, world.own["send"].campaign_id}
    assert {k["id"] for k in keys} == {world.own["api_key"].pk}
    assert {i["id"] for i in inbox} == {world.own["send"].pk}


def test_an_expired_token_of_a_then_b_sees_nothing(world):
    with scopes_disabled():
        MemberToken.objects.filter(pk=world.own["device"].pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert world.clients["member"].get("/api/v1/member/me/").status_code == 401
