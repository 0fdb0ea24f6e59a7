"""Campaign management through the API: the wizard's validation, actions, audience, results, runs."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns import services
from campaigns.models import Campaign
from campaigns.services import EDITABLE_FIELDS
from tests.api.conftest import send_make
from tests.campaigns.helpers import night
from tests.conftest import ALL_CHANNELS, campaign_make, member_make, visit_make

BODY = {
    "name": "Come back",
    "inactivity_days": 30,
    "max_sends": 2,
    "title": "We miss you, {first_name}!",
    "body": "Come back to {business} for {reward}.",
    "reward": {"kind": "bonus_stamps", "count": 2, "expiry_days": 14},
    "escalation": [{"title": "", "body": "Last chance: {reward}", "reward": {"kind": "discount", "percent": 20}}],
    "channels": ["sms", "email"],
    "conditions": {"min_visits": 2, "joined_before": "2026-01-01", "has_phone": True},
    "ab_enabled": True,
    "variant_b_title": "Hey {first_name}",
    "variant_b_body": "It has been {days_away} days.",
    "ab_share_b": 30,
    "control_share": 10,
    "send_at": "10:30:00",
    "include_weekends": False,
    "pacing": {"whatsapp": {"interval_seconds": 60, "daily_cap": 480}},
    "skip_if_returned": True,
    "attribution_days": 21,
}


@pytest.fixture
def set_up(business):
    business.channel_settings = ALL_CHANNELS
    business.save()
    return business


def test_a_campaign_created_through_the_api_equals_one_saved_by_the_wizard_service(owner_api, owner, set_up):
    response = owner_api.post("/api/v1/campaigns/", BODY, format="json")

    assert response.status_code == 201
    with scope(business=set_up.pk):
        via_api = Campaign.objects.get(pk=response.json()["id"])
        via_service = services.campaign_save(business=set_up, data=dict(BODY), user=owner)
    for name in EDITABLE_FIELDS:
        assert getattr(via_api, name) == getattr(via_service, name), name
    assert (via_api.status, via_api.created_by, via_api.business_id) == ("draft", owner, set_up.pk)


def test_invalid_bodies_get_the_wizards_field_errors(owner_api, set_up):
    body = {"name": "", "inactivity_days": 400, "max_sends": 5, "reward": {"kind": "free_item"},
            "title": "Hi {nickname}", "channels": ["sms"], "conditions": {"min_visits": 5, "max_visits": 2}}  # fmt: skip
    with scope(business=set_up.pk), pytest.raises(ValidationError) as wizard:
        services.campaign_save(business=set_up, data=dict(body))

    response = owner_api.post("/api/v1/campaigns/", body, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == wizard.value.message_dict
    assert fields["reward_item"] == ["Name the free item (for example “a cup of coffee”)."]
    assert fields["conditions"] == ["Lifetime visits at least is more than at most."]
    assert "Maximum sends per member must be 1, 2 or 3." in fields["max_sends"]
    with scopes_disabled():
        assert Campaign.objects.count() == 0


def test_wrong_types_are_field_errors(owner_api, set_up):
    response = owner_api.post(
        "/api/v1/campaigns/", {"name": "x", "channels": ["fax"], "send_at": "noon", "reward": "lots"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"channels.0", "send_at", "reward.non_field_errors"}


def test_activate_validates_every_step_like_the_wizard(owner_api, set_up):
    draft = owner_api.post("/api/v1/campaigns/", {"name": "Draft", "channels": []}, format="json").json()

    response = owner_api.post(f"/api/v1/campaigns/{draft['id']}/activate/")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "title": ["The title is required."],
        "body": ["The message is required."],
        "channels": ["Choose at least one channel."],
    }


def test_activate_pause_resume_archive_and_duplicate(owner_api, set_up):
    created = owner_api.post("/api/v1/campaigns/", BODY, format="json").json()
    url = f"/api/v1/campaigns/{created['id']}"

    activated = owner_api.post(f"{url}/activate/").json()
    paused = owner_api.post(f"{url}/pause/").json()
    resumed = owner_api.post(f"{url}/resume/").json()
    archived = owner_api.post(f"{url}/archive/").json()
    copy = owner_api.post(f"{url}/duplicate/")

    assert [activated["status"], paused["status"], resumed["status"], archived["status"]] == [
        "active", "paused", "active", "archived"]  # fmt: skip
    assert activated["activated_at"] is not None
    assert copy.status_code == 201
    assert (copy.json()["name"], copy.json()["status"]) == ("Come back (copy)", "draft")
    assert owner_api.patch(url + "/", {"name": "x"}, format="json").status_code == 409


def test_patch_changes_only_the_given_fields_and_never_status(owner_api, set_up):
    created = owner_api.post("/api/v1/campaigns/", BODY, format="json").json()

    response = owner_api.patch(
        f"/api/v1/campaigns/{created['id']}/", {"name": "Renamed", "status": "active", "business": 999}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["status"]) == ("Renamed", "draft")
    assert response.json()["inactivity_days"] == 30


def test_the_audience_count_is_for_the_next_night(owner_api, set_up):
    for days in (40, 20):
        m = member_make(set_up, phone="+60123450000", consents={"sms": True})
        visit_make(m, days_ago=days)

    response = owner_api.post(
        "/api/v1/campaigns/audience/", {"inactivity_days": 30, "channels": ["sms"]}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert list(body["away"].values()) == [1]


def test_the_audience_count_reports_errors_only_for_the_fields_it_reads(owner_api, set_up):
    response = owner_api.post(
        "/api/v1/campaigns/audience/", {"inactivity_days": 0, "name": "", "channels": ["sms"]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["inactivity_days"]


def test_results_and_runs_of_a_campaign(owner_api, set_up):
    campaign = campaign_make(set_up, channels=["sms"], reward={"kind": "free_item", "item": "tea"})
    m = member_make(set_up, phone="+60123456780", consents={"sms": True})
    visit_make(m, days_ago=40)
    night(set_up, timezone.localdate(timezone.now(), set_up.tzinfo))

    results = owner_api.get(f"/api/v1/campaigns/{campaign.pk}/results/").json()
    runs = owner_api.get(f"/api/v1/campaigns/{campaign.pk}/runs/").json()["results"]

    local_date = timezone.localdate(timezone.now(), set_up.tzinfo).isoformat()
    zero = {"members": 0, "sends": 0, "reached": 0, "opened": 0, "won": 0, "win_rate": 0.0, "open_rate": 0.0,
            "revenue": "0.00"}  # fmt: skip
    one = {**zero, "members": 1, "sends": 1}
    assert results == {
        "campaign": campaign.pk,
        "attribution_days": 14,
        "arms": [{"arm": "a", **one}, {"arm": "b", **zero}, {"arm": "control", **zero}],
        "treatment": {"arm": "treatment", **one},
        "ab": None,
        "lift": None,
        "lift_by_arm": [],
        "state": None,
        "summary": "1 member has been picked; nothing has gone out yet, so there is nothing to measure.",
        "by_night": [{"local_date": local_date, "sends": 1, "control": 0, "reached": 0, "won": 0, "revenue": "0.00"}],
        "members_targeted": 1,
        "opened": 0,
        "sends": [{"arm": "a", "outcome": "scheduled", "count": 1}],
        "deliveries": [{"channel": "sms", "status": "scheduled", "count": 1}],
        "rewards": [{"status": "offered", "count": 1}],
    }
    assert len(runs) == 1
    assert runs[0]["stats"] == {"selected": 1, "capped": 0, "control": 0, "sends": 1, "deliveries": 1, "rewards": 1}


def test_results_count_opens(owner_api, set_up, member, member_api):
    send = send_make(member)
    member_api.post(f"/api/v1/member/inbox/{send.pk}/open/")

    results = owner_api.get(f"/api/v1/campaigns/{send.campaign_id}/results/").json()

    assert results["opened"] == 1
    assert results["deliveries"] == [{"channel": "sms", "status": "opened", "count": 1}]
    assert results["rewards"] == [{"status": "available", "count": 1}]


def test_staff_cannot_manage_campaigns(staff_api, set_up):
    assert staff_api.get("/api/v1/campaigns/").status_code == 403


def test_a_manager_can(manager_api, set_up):
    assert manager_api.post("/api/v1/campaigns/", BODY, format="json").status_code == 201


def test_session_auth_works_for_the_browser(owner_client, set_up):
    response = owner_client.get("/api/v1/campaigns/")

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_a_user_of_two_businesses_picks_one_with_x_business(owner, owner_api, other_business):
    from members.models import Membership

    with scopes_disabled():
        Membership.objects.create(business=other_business, user=owner, role="owner")
    campaign_make(other_business, name="Theirs")

    mine = owner_api.get("/api/v1/campaigns/").json()["results"]
    theirs = owner_api.get("/api/v1/campaigns/", HTTP_X_BUSINESS="other").json()["results"]
    stranger = owner_api.get("/api/v1/campaigns/", HTTP_X_BUSINESS="nope")

    assert mine == []
    assert [c["name"] for c in theirs] == ["Theirs"]
    assert stranger.status_code == 404
