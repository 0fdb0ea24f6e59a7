"""The audience as a funnel: every lapsed member lands in the first stage that leaves them out,
and the last stage, messaged tonight, is what the dry run and the night write as sends."""

from datetime import date, timedelta

import pytest
import time_machine
from django_scopes import scope

from campaigns import engine
from tests.campaigns.helpers import at_local, night, sends
from tests.conftest import campaign_make, member_make, visit_make

D = date(2026, 5, 15)


def lapsed(business, *, days: int, **fields):
    """A member whose only purchase was ``days`` local days before D."""
    fields.setdefault("phone", "+60123456789")
    fields.setdefault("consents", {"sms": True})
    member = member_make(business, **fields)
    with time_machine.travel(at_local(business, D - timedelta(days=days), 12, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=days), 12))
    return member


def crafted(business_make):
    """A business where each stage of campaign X's funnel on D holds known members.

    X: 14 days, two sends, SMS and email, at most 100 days away, 20 % control. Y (7 days, from
    D-4 on) gives some members a message within the frequency cap; Z (30 days, from D on, longer
    threshold) takes members gone 30+ days tonight.
    """
    b = business_make(frequency_cap_days=7)
    x = campaign_make(b, inactivity_days=14, max_sends=2, channels=["sms", "email"], control_share=20,
                      conditions={"max_days_away": 100})  # fmt: skip
    y = campaign_make(b, inactivity_days=7, channels=["sms"], activated_at=at_local(b, D - timedelta(days=5), 12))
    m = {"max_sends": lapsed(b, days=100), "spacing": lapsed(b, days=40)}
    night(b, D - timedelta(days=60))  # X: max_sends' send 1
    night(b, D - timedelta(days=30))  # X: max_sends' send 2
    night(b, D - timedelta(days=10))  # X: spacing's send 1
    m["frequency_cap"] = lapsed(b, days=15)
    night(b, D - timedelta(days=3))  # Y: frequency_cap (gone 12 days: not X's yet)
    z = campaign_make(b, inactivity_days=30, channels=["email"], activated_at=at_local(b, D - timedelta(days=1), 12))
    m["recent"] = lapsed(b, days=5)
    m["conditions"] = lapsed(b, days=200)
    m["other_campaign"] = lapsed(b, days=45, email="o@example.com", consents={"sms": True, "email": True})
    m["no_contact"] = lapsed(b, days=20, phone="", email="")
    m["no_consent"] = lapsed(b, days=20, email="n@example.com", consents={})
    ok, control = [], []
    while not (ok and control) and len(ok) + len(control) < 40:
        member = lapsed(b, days=20)
        (control if engine.arm_bucket(campaign_id=x.pk, member_id=member.pk) < 20 else ok).append(member)
    return b, x, y, z, m, ok, control


@pytest.fixture
def world(db):
    from tests.conftest import business_make

    return crafted(business_make)


def test_each_stage_counts_the_members_it_leaves_out(world):
    b, x, _, _, m, ok, control = world

    with scope(business=b.pk):
        audience = engine.campaign_audience(x, local_date=D, limit=100)

    f = audience.funnel
    assert f.lapsed == 7 + len(ok) + len(control)  # not "recent"
    assert f.stages == {"conditions": 1, "max_sends": 1, "spacing": 1, "frequency_cap": 1, "other_campaign": 1,
                        "unreachable": 2, "control": len(control), "messaged": len(ok)}  # fmt: skip
    assert f.unreachable_by == {"sms": {"no_contact": 1, "no_consent": 1},
                                "email": {"no_contact": 1, "no_consent": 1}}  # fmt: skip
    assert f.reach == {"sms": len(ok), "email": 0}
    assert audience.count == len(ok)  # the control group is not counted as recipients
    assert {member.pk for member in audience.members} == {member.pk for member in ok}
    assert [s["key"] for s in f.steps()] == ["conditions", "max_sends", "spacing", "frequency_cap",
                                             "other_campaign", "unreachable", "control"]  # fmt: skip
    assert f.steps()[-1]["left"] == len(ok)


def test_the_funnels_last_stage_is_the_dry_run_and_the_night(world):
    b, x, _, z, m, ok, control = world
    with scope(business=b.pk):
        funnel, _ = engine.campaign_funnel(x, local_date=D)

    dry = night(b, D, dry_run=True).stats[x.pk]
    night(b, D)

    written = sends(b, local_date=D, campaign_id=x.pk)
    assert funnel.messaged == dry["sends"] == len([s for s in written if s.outcome == "scheduled"]) == len(ok)
    assert funnel.stages["control"] == dry["control"] == len([s for s in written if s.outcome == "control"])
    assert {s.member_id for s in written if s.outcome == "scheduled"} == {member.pk for member in ok}
    # Z took the member gone 45 days: the longest threshold wins.
    assert m["other_campaign"].pk in {s.member_id for s in sends(b, local_date=D, campaign_id=z.pk)}


def test_the_funnel_rows_name_each_members_stage(world):
    b, x, _, _, m, ok, control = world

    with scope(business=b.pk):
        rows = engine.campaign_funnel_rows(x, local_date=D, limit=100)

    stage = {r["member_id"]: r["stage"] for r in rows}
    assert all(stage[member.pk] == key for key, member in m.items() if key not in ("recent", "no_contact",
                                                                                  "no_consent"))  # fmt: skip
    assert stage[m["no_contact"].pk] == stage[m["no_consent"].pk] == "unreachable"
    assert m["recent"].pk not in stage
    assert [r["stage"] for r in rows[: len(ok)]] == ["messaged"] * len(ok)  # messaged first
    assert {r["member_id"]: (r["arm"], r["channels"]) for r in rows if r["stage"] == "messaged"} == {
        member.pk: ("a", ["sms"]) for member in ok
    }


def test_nobody_lapsed_and_nobody_reachable_are_both_a_zero_with_its_reason(business):
    x = campaign_make(business, inactivity_days=14, channels=["email"])
    lapsed(business, days=20)  # a phone, no email

    with scope(business=business.pk):
        funnel, _ = engine.campaign_funnel(x, local_date=D)
        x.inactivity_days = 60
        none_lapsed, _ = engine.campaign_funnel(x, local_date=D)

    assert (funnel.lapsed, funnel.messaged, funnel.stages) == (1, 0, {"unreachable": 1})
    assert funnel.unreachable_by == {"email": {"no_contact": 1, "no_consent": 0}}
    assert (none_lapsed.lapsed, none_lapsed.messaged, none_lapsed.steps()) == (0, 0, [])


def test_the_funnel_costs_the_same_queries_for_3_or_40_members(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import business_make

    counts = []
    for n in (3, 40):
        b = business_make(frequency_cap_days=7)
        x = campaign_make(b, inactivity_days=14, channels=["sms", "email"], control_share=10)
        campaign_make(b, inactivity_days=30, channels=["sms"])
        for i in range(n):
            lapsed(b, days=20 + i, consents={"sms": i % 2 == 0})
        with scope(business=b.pk), CaptureQueriesContext(connection) as ctx:
            engine.campaign_audience(x, local_date=D, limit=10)
            engine.campaign_funnel_rows(x, local_date=D, limit=10)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 6, counts


# --- the wizard's steps and the API ---------------------------------------------------------------


def _owner(b):
    from tests.conftest import client_for, user_make

    return client_for(user_make("owner", b))


def _evening_before(b):
    """The wizard counts the next night: the evening before D, it is D."""
    return time_machine.travel(at_local(b, D - timedelta(days=1), 18), tick=False)


@pytest.mark.parametrize("days", ["0", "400", "-5", "abc"])
def test_an_invalid_inactivity_period_shows_the_error_and_no_count(world, days):
    b, x, *_ = world
    client = _owner(b)

    with _evening_before(b):
        live = client.post(f"/campaigns/{x.pk}/audience/", {"inactivity_days": days, "max_sends": "2"})
        step = client.post(f"/campaigns/{x.pk}/edit/trigger/", {"inactivity_days": days, "max_sends": "2",
                                                                 "send_at": "09:00", "nav": "next"})  # fmt: skip

    for response in (live, step):
        html = response.content.decode()
        assert 'id="audience-error"' in html
        assert 'id="audience-count"' not in html and 'id="audience-funnel"' not in html
    assert step.status_code == 422


def test_the_trigger_message_and_review_steps_show_the_funnel(world):
    b, x, _, _, m, ok, control = world
    client = _owner(b)

    with _evening_before(b):
        pages = {step: client.get(f"/campaigns/{x.pk}/edit/{step}/") for step in ("trigger", "message", "review")}

    for step, response in pages.items():
        html = response.content.decode()
        assert response.status_code == 200, step
        assert f'id="funnel-messaged">{len(ok)}<' in html, step
        assert 'id="funnel-control">−' + str(len(control)) in html, step
        assert "SMS: 1 with no phone number, 1 with no consent" in html, step
        assert "Email: 1 with no email address, 1 with no consent" in html, step
    review = pages["review"]
    assert review.context["audience"].count == len(ok)
    # The SMS estimate counts messaged members only: the control group costs nothing.
    assert [(e["name"], e["members"]) for e in review.context["estimates"]] == [("SMS", len(ok))]


def test_picking_a_channel_nobody_is_reachable_on_says_why_the_count_is_zero(world):
    b, x, *_ = world
    client = _owner(b)

    with _evening_before(b):
        response = client.post(f"/campaigns/{x.pk}/audience/", {"audience_step": "message", "channels": ["email"]})

    html = response.content.decode()
    assert 'id="audience-count">0<' in html
    assert 'id="audience-why"' in html and "not reachable on the chosen channels" in html
    *_, ok, control = world  # every one of them has a phone but no email address
    assert response.context["audience"].funnel.unreachable_by["email"] == {
        "no_contact": len(ok) + len(control) + 1, "no_consent": 1}  # fmt: skip


def test_the_api_audience_is_the_funnel_and_another_business_gets_404(world, other_business):
    from tests.api.conftest import user_client_for
    from tests.conftest import user_make

    b, x, _, _, m, ok, control = world
    api = user_client_for(user_make("owner", b))
    outsider = user_client_for(user_make("owner", other_business))

    with _evening_before(b):
        body = api.get(f"/api/v1/campaigns/{x.pk}/audience/").json()
        missing = outsider.get(f"/api/v1/campaigns/{x.pk}/audience/")
        invalid = api.post("/api/v1/campaigns/audience/", {"inactivity_days": -5, "channels": ["sms"]}, format="json")

    assert body["count"] == body["funnel"]["messaged"] == len(ok)
    assert body["funnel"]["lapsed"] == 7 + len(ok) + len(control)
    assert body["funnel"]["stages"] == [
        {"stage": "conditions", "count": 1}, {"stage": "max_sends", "count": 1}, {"stage": "spacing", "count": 1},
        {"stage": "frequency_cap", "count": 1}, {"stage": "other_campaign", "count": 1},
        {"stage": "unreachable", "count": 2}, {"stage": "control", "count": len(control)},
    ]  # fmt: skip
    assert body["funnel"]["unreachable_by_channel"] == [{"channel": "sms", "no_contact": 1, "no_consent": 1},
                                                        {"channel": "email", "no_contact": 1, "no_consent": 1}]  # fmt: skip
    assert body["funnel"]["messaged_by_channel"] == [{"channel": "sms", "count": len(ok)},
                                                     {"channel": "email", "count": 0}]  # fmt: skip
    assert missing.status_code == 404
    assert invalid.status_code == 400 and "count" not in invalid.json()
