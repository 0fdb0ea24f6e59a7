"""The seven-step wizard through Django's test client: saving, validation, Back, resume, access."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope

from campaigns.models import Campaign
from tests.conftest import ALL_CHANNELS, campaign_make, client_for, member_make, user_make, visit_make


@pytest.fixture
def business(business):
    business.channel_settings = {"sms": {"enabled": True}, "email": {"enabled": True}}
    business.frequency_cap_days = 0
    business.save()
    return business


def step_url(campaign, step):
    return f"/campaigns/{campaign.pk}/edit/{step}/"


def get(campaign):
    with scope(business=campaign.business_id):
        return Campaign.objects.get(pk=campaign.pk)


def start(client, name="We miss you"):
    response = client.post("/campaigns/new/", {"type": "winback", "name": name, "description": ""})
    assert response.status_code == 302
    return _last()


def _last():
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return Campaign.objects.order_by("-pk").first()


TRIGGER = {"inactivity_days": 30, "max_sends": 2, "send_at": "10:00", "include_weekends": "on",
           "whatsapp_interval": 60, "whatsapp_cap": 480}  # fmt: skip
REWARD = {"s1_kind": "bonus_stamps", "s1_count": 2, "s1_expiry_days": 30, "s2_kind": "discount", "s2_percent": 20,
          "s2_expiry_days": 14}  # fmt: skip
MESSAGE = {"title": "We miss you, {first_name}!", "body": "Come back for {reward}.", "channels": ["sms", "email"],
           "title_2": "Still here for you", "body_2": ""}  # fmt: skip
CONDITIONS = {"active": "min_visits", "min_visits": 2}
AB = {"ab_enabled": "on", "variant_b_title": "B: {first_name}", "variant_b_body": "B body", "ab_share_b": 50,
      "control_share": 10}  # fmt: skip


def test_an_owner_builds_a_campaign_through_all_seven_steps_and_activates_it(owner_client, business):
    campaign = start(owner_client)
    assert owner_client.post(step_url(campaign, "trigger"), TRIGGER).url == step_url(campaign, "reward")
    assert owner_client.post(step_url(campaign, "reward"), REWARD).url == step_url(campaign, "message")
    assert owner_client.post(step_url(campaign, "message"), MESSAGE).url == step_url(campaign, "conditions")
    assert owner_client.post(step_url(campaign, "conditions"), CONDITIONS).url == step_url(campaign, "ab")
    assert owner_client.post(step_url(campaign, "ab"), AB).url == step_url(campaign, "review")
    review = owner_client.get(step_url(campaign, "review"))
    assert review.status_code == 200 and "Activate campaign" in review.content.decode()

    response = owner_client.post(step_url(campaign, "review"), {"nav": "activate"})

    assert response.url == f"/campaigns/{campaign.pk}/"
    c = get(campaign)
    assert c.status == "active" and c.activated_at is not None
    assert (c.inactivity_days, c.max_sends, str(c.send_at)) == (30, 2, "10:00:00")
    assert c.pacing == {"whatsapp": {"interval_seconds": 60, "daily_cap": 480}}
    assert c.reward == {"kind": "bonus_stamps", "count": 2, "expiry_days": 30}
    assert c.escalation == [{"title": "Still here for you", "body": "",
                             "reward": {"kind": "discount", "percent": 20, "expiry_days": 14}}]  # fmt: skip
    assert c.channels == ["sms", "email"] and c.conditions == {"min_visits": 2}
    assert (c.ab_enabled, c.variant_b_title, c.ab_share_b, c.control_share) == (True, "B: {first_name}", 50, 10)


@pytest.mark.parametrize(
    ("step", "data", "field", "message"),
    [
        ("type", {"type": "winback", "name": "  "}, "name", "Give the campaign a name."),
        ("trigger", {**TRIGGER, "inactivity_days": 0}, "inactivity_days", "between 1 and 365"),
        ("trigger", {**TRIGGER, "inactivity_days": 366}, "inactivity_days", "between 1 and 365"),
        ("trigger", {**TRIGGER, "inactivity_days": ""}, "inactivity_days", "Enter the inactivity period"),
        ("reward", {"s1_kind": "free_item", "s1_item": ""}, "s1_item", "Name the free item"),
        ("reward", {"s1_kind": "discount"}, "s1_percent", "percent or as an amount"),
        ("message", {**MESSAGE, "title": ""}, "title", "The title is required."),
        ("message", {**MESSAGE, "body": ""}, "body", "The message is required."),
        ("message", {**MESSAGE, "channels": []}, "channels", "Choose at least one channel."),
        ("message", {**MESSAGE, "channels": ["whatsapp"]}, "channels", "WhatsApp is not set up yet"),
        ("message", {**MESSAGE, "body": "Hi {name}"}, "body", "Unknown placeholder {name}"),
        ("conditions", {"active": "min_visits", "min_visits": ""}, "min_visits", "Enter a value, or remove"),
        ("ab", {**AB, "variant_b_title": ""}, "variant_b_title", "The title is required."),
        ("ab", {**AB, "control_share": 30}, "control_share", "less than or equal to 20"),
    ],
)
def test_each_step_is_validated_with_the_error_beside_its_field(owner_client, business, step, data, field, message):
    campaign = campaign_make(business, status="draft", channels=["sms"], max_sends=2)
    before = get(campaign)

    response = owner_client.post(step_url(campaign, step), data)

    assert response.status_code == 422
    assert any(message in e for e in response.context["form"].errors[field])
    assert message in response.content.decode().replace("&#x27;", "'")
    after = get(campaign)
    assert (after.name, after.inactivity_days, after.title, after.channels, after.conditions) == (
        before.name, before.inactivity_days, before.title, before.channels, before.conditions
    )  # fmt: skip


def test_back_keeps_invalid_input_and_shows_it_again(owner_client, business):
    campaign = campaign_make(business, status="draft", inactivity_days=14)

    response = owner_client.post(step_url(campaign, "trigger"), {**TRIGGER, "inactivity_days": 400, "nav": "back"})

    assert response.url == step_url(campaign, "type")
    page = owner_client.get(step_url(campaign, "trigger"))
    assert page.context["form"]["inactivity_days"].value() == "400"
    assert "between 1 and 365" in page.content.decode()
    assert get(campaign).inactivity_days == 14


def test_back_saves_valid_input(owner_client, business):
    campaign = campaign_make(business, status="draft")

    owner_client.post(step_url(campaign, "trigger"), {**TRIGGER, "inactivity_days": 45, "nav": "back"})

    assert get(campaign).inactivity_days == 45


def test_a_closed_tab_resumes_at_the_step_it_was_on(owner_client, business, owner):
    campaign = start(owner_client)
    owner_client.post(step_url(campaign, "trigger"), TRIGGER)
    owner_client.get(step_url(campaign, "message"))

    fresh = client_for(owner)
    response = fresh.get(f"/campaigns/{campaign.pk}/edit/")

    assert response.url == step_url(campaign, "message")
    assert fresh.get("/campaigns/?status=draft").context["cards"][0]["campaign"].pk == campaign.pk


def test_editing_an_active_campaign_opens_the_wizard_with_its_values(owner_client, business):
    campaign = campaign_make(business, inactivity_days=60, title="Hello {first_name}")

    page = owner_client.get(step_url(campaign, "message"))

    assert page.context["form"]["title"].value() == "Hello {first_name}"
    assert owner_client.get(step_url(campaign, "trigger")).context["form"]["inactivity_days"].value() == 60
    owner_client.post(step_url(campaign, "trigger"), {**TRIGGER, "inactivity_days": 20, "max_sends": 1})
    assert get(campaign).inactivity_days == 20 and get(campaign).status == "active"


def test_conditions_are_added_and_removed(owner_client, business):
    campaign = campaign_make(business, status="draft")

    added = owner_client.post(
        step_url(campaign, "conditions"), {"active": "", "nav": "add", "add_condition": "min_spend"}
    )
    assert [f.name for f in added.context["form"].rows()] == ["min_spend"]
    both = owner_client.post(
        step_url(campaign, "conditions"),
        {"active": "min_spend", "min_spend": "50", "nav": "add", "add_condition": "has_email"},
    )
    assert [f.name for f in both.context["form"].rows()] == ["min_spend", "has_email"]
    removed = owner_client.post(
        step_url(campaign, "conditions"),
        {"active": "min_spend,has_email", "min_spend": "50", "nav": "remove:min_spend"},
    )
    assert [f.name for f in removed.context["form"].rows()] == ["has_email"]
    owner_client.post(step_url(campaign, "conditions"), {"active": "has_email,min_spend", "min_spend": "50"})
    assert get(campaign).conditions == {"has_email": True, "min_spend": "50"}


def test_save_draft_leaves_it_a_draft(owner_client, business):
    campaign = campaign_make(business, status="draft")

    response = owner_client.post(step_url(campaign, "review"), {"nav": "save_draft"})

    assert response.url == "/campaigns/" and get(campaign).status == "draft"


def test_activating_an_incomplete_draft_lists_what_to_fix(owner_client, business):
    campaign = campaign_make(business, status="draft", title="", body="", channels=[])

    response = owner_client.post(step_url(campaign, "review"), {"nav": "activate"})

    assert response.status_code == 422
    body = response.content.decode()
    assert "The title is required." in body and "Choose at least one channel." in body
    assert get(campaign).status == "draft"


def test_the_live_count_follows_the_threshold_and_equals_the_dry_run(owner_client, business):
    now = timezone.now()
    for days in (10, 20, 35, 70):
        m = member_make(business, phone="+60123456789", consents={"sms": True})
        visit_make(m, at=now - timedelta(days=days))
    campaign = campaign_make(business, status="draft", channels=["sms"])

    counts = {
        days: owner_client.post(f"/campaigns/{campaign.pk}/audience/", {"inactivity_days": days})
        .context["audience"]
        .count
        for days in (14, 30, 60, 90)
    }
    assert counts == {14: 3, 30: 2, 60: 1, 90: 0}
    conditioned = owner_client.post(
        f"/campaigns/{campaign.pk}/audience/", {"inactivity_days": 14, "active": "max_days_away", "max_days_away": 40}
    )
    assert conditioned.context["audience"].count == 2

    owner_client.post(step_url(campaign, "trigger"), {**TRIGGER, "inactivity_days": 14, "max_sends": 1})
    owner_client.post(step_url(campaign, "review"), {"nav": "activate"})
    with scope(business=business.pk):
        Campaign.objects.filter(pk=campaign.pk).update(activated_at=now - timedelta(days=2))
    tomorrow = (timezone.localdate(now, business.tzinfo) + timedelta(days=1)).isoformat()
    out = io.StringIO()
    call_command("run_winback", "--business", business.slug, "--date", tomorrow, "--dry-run", stdout=out)
    assert "selected 3, would send 3" in out.getvalue()


def test_the_preview_renders_each_channel_for_a_real_member_with_sms_segments(owner_client, business):
    member = member_make(business, first_name="Aisha", phone="+60123456789", consents={"sms": True})
    visit_make(member, days_ago=40)
    campaign = campaign_make(business, status="draft", reward={"kind": "free_item", "item": "latte"})

    response = owner_client.post(
        f"/campaigns/{campaign.pk}/preview/",
        {"title": "Hi {first_name}", "body": "A {reward} awaits at {business}", "channels": ["sms", "email"]},
    )

    body = response.content.decode()
    assert "Hi Aisha" in body and "A a free latte awaits at Kopi Corner" in body
    assert response.context["size"].encoding == "GSM-7" and response.context["size"].segments == 1
    emoji = owner_client.post(
        f"/campaigns/{campaign.pk}/preview/", {"title": "Hi 🎉", "body": "x" * 80, "channels": ["sms"]}
    )
    # Unicode (67 units a segment when split): the text and its short link make two (the long
    # signed link made three).
    assert emoji.context["size"].encoding == "Unicode" and emoji.context["size"].segments == 2
    assert emoji.context["size"].units > 70


@pytest.mark.parametrize("send", ["", "12", "23", "4", "0", "x", "\x00"])
def test_the_preview_shows_the_first_send_for_a_send_number_it_does_not_have(owner_client, business, send):
    campaign = campaign_make(business, status="draft", reward={"kind": "free_item", "item": "latte"})

    response = owner_client.post(
        f"/campaigns/{campaign.pk}/preview/", {"send": send, "title": "First {reward}", "body": "Send one"}
    )

    assert response.status_code == 200
    assert "First a free latte" in response.content.decode()


def test_the_preview_of_send_two_shows_its_own_message_and_reward(owner_client, business):
    campaign = campaign_make(
        business, status="draft", max_sends=2, reward={"kind": "free_item", "item": "latte"},
        escalation=[{"title": "", "body": "", "reward": {"kind": "discount", "percent": 20, "expiry_days": 7}}],
    )  # fmt: skip

    response = owner_client.post(
        f"/campaigns/{campaign.pk}/preview/",
        {"send": "2", "title": "First", "body": "One", "title_2": "Second {reward}", "body_2": "Two"},
    )

    assert "Second 20% off" in response.content.decode()


def test_pause_resume_duplicate_and_archive(owner_client, business):
    campaign = campaign_make(business)

    paused = owner_client.post(f"/campaigns/{campaign.pk}/pause/", follow=True)
    assert "is paused" in paused.content.decode() and get(campaign).status == "paused"
    owner_client.post(f"/campaigns/{campaign.pk}/resume/")
    assert get(campaign).status == "active"
    dup = owner_client.post(f"/campaigns/{campaign.pk}/duplicate/")
    copy = _last()
    assert dup.url == step_url(copy, "type")
    assert (copy.name, copy.status, copy.title) == (f"{campaign.name} (copy)", "draft", campaign.title)
    owner_client.post(f"/campaigns/{campaign.pk}/archive/")
    assert get(campaign).status == "archived"


def test_a_manager_of_a_cannot_reach_business_b_campaigns(manager_client, other_business):
    other_business.channel_settings = ALL_CHANNELS
    other_business.save()
    theirs = campaign_make(other_business)

    for url in [f"/campaigns/{theirs.pk}/", f"/campaigns/{theirs.pk}/edit/", step_url(theirs, "trigger")]:
        assert manager_client.get(url).status_code == 404, url
    for url in [
        f"/campaigns/{theirs.pk}/{a}/" for a in ("pause", "resume", "duplicate", "archive", "audience", "preview")
    ]:
        assert manager_client.post(url).status_code == 404, url
    assert manager_client.post(step_url(theirs, "trigger"), TRIGGER).status_code == 404
    assert get(theirs).status == "active" and get(theirs).inactivity_days == 14


def test_staff_cannot_open_the_wizard_or_the_campaigns(staff_client, business):
    campaign = campaign_make(business)

    for url in ["/campaigns/", "/campaigns/new/", step_url(campaign, "type"), f"/campaigns/{campaign.pk}/"]:
        assert staff_client.get(url).status_code == 403, url
    assert staff_client.post(f"/campaigns/{campaign.pk}/pause/").status_code == 403


def test_the_campaigns_list_makes_no_query_per_card(owner_client, business, django_assert_max_num_queries):
    for _ in range(12):
        campaign_make(business)

    with django_assert_max_num_queries(8):
        response = owner_client.get("/campaigns/")

    assert len(response.context["cards"]) == 12


def test_the_campaign_page_shows_runs_and_deliveries_without_a_query_per_row(owner_client, business,
                                                                             django_assert_max_num_queries):  # fmt: skip
    from tests.campaigns.helpers import night

    campaign = campaign_make(business, channels=["sms"])
    now = timezone.now()
    for _ in range(15):
        m = member_make(business, phone="+60123456789", consents={"sms": True})
        visit_make(m, at=now - timedelta(days=30))
    night(business, timezone.localdate(now, business.tzinfo))

    with django_assert_max_num_queries(13):  # one more than before: what went out of the runs
        response = owner_client.get(f"/campaigns/{campaign.pk}/")

    assert response.context["runs"][0]["stats"]["sends"] == 15
    assert len(response.context["page"].object_list) == 15
    filtered = owner_client.get(f"/campaigns/{campaign.pk}/", {"status": "sent"})
    assert len(filtered.context["page"].object_list) == 0


def test_owner_settings_change_the_business_and_its_channels(owner_client, business, manager_client):
    response = owner_client.post("/settings/", {"form": "business", "name": "Kopi Two", "timezone": "Europe/London",
                                                "currency": "GBP", "country": "GB", "program_type": "points",
                                                "stamps_per_card": 8, "frequency_cap_days": 3})  # fmt: skip
    assert response.status_code == 302
    business.refresh_from_db()
    assert (business.name, business.timezone, business.frequency_cap_days) == ("Kopi Two", "Europe/London", 3)
    owner_client.post("/settings/", {"form": "channels", "push_enabled": "on", "whatsapp_enabled": "on",
                                     "whatsapp_template": "winback_offer"})  # fmt: skip
    business.refresh_from_db()
    assert business.enabled_channels() == ["push", "whatsapp"]
    bad = owner_client.post("/settings/", {"form": "business", "name": "", "timezone": "Mars/Base", "currency": "x",
                                           "country": "GB", "program_type": "points", "stamps_per_card": 8,
                                           "frequency_cap_days": 3})  # fmt: skip
    assert set(bad.context["form"].errors) == {"name", "timezone", "currency"}
    assert manager_client.get("/settings/").status_code == 403


def test_user_make_is_not_a_member_of_other_businesses(business, other_business):
    user = user_make("manager", business)
    assert client_for(user).get("/campaigns/").status_code == 200
