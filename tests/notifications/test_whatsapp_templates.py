"""WhatsApp templates synchronised from Twilio's Content API (a fake on 127.0.0.1 that the real
twilio client talks to): every approval transition, templates that vanish, other businesses, and
answers that are not a list."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask
from django_scopes import scope, scopes_disabled

from notifications import services, tasks
from notifications.channels import twilio as twilio_channel
from notifications.models import WhatsAppTemplate
from notifications.selectors import whatsapp_templates_approved
from tests.conftest import TWILIO_ACCOUNT as PLATFORM
from tests.conftest import TWILIO_SUBACCOUNT as SUBACCOUNT
from tests.conftest import business_make
from tests.fakes import content_template

OFFER, REMINDER, THIRD = "HX" + "1" * 32, "HX" + "2" * 32, "HX" + "3" * 32
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def shop(db):
    return business_make(name="Kopi", channel_settings={"whatsapp": {"enabled": True, "sender": "+15005550007"}})


@pytest.fixture
def salon(db):
    """Another business, on its own Twilio subaccount."""
    return business_make(
        name="Salon",
        channel_settings={"whatsapp": {"enabled": True, "sender": "+15005550099", "account_sid": SUBACCOUNT}},
    )


def sync(business, at=T0):
    with scope(business=business.pk):
        return services.whatsapp_templates_sync(business=business, now=at)


def templates(business) -> dict[str, tuple]:
    with scope(business=business.pk):
        return {
            t.content_sid: (t.name, t.status, t.rejected_reason)
            for t in WhatsAppTemplate.objects.filter(business=business)
        }


def test_an_approved_template_is_synchronised_with_its_body_variables_and_verdict(content_api, shop):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer", language="en_GB")]

    report = sync(shop)

    assert report == services.TemplateSyncReport(synced=1, disabled=0)
    with scope(business=shop.pk):
        t = WhatsAppTemplate.objects.get()
    assert (t.business_id, t.content_sid, t.name, t.language, t.status, t.category, t.quality_rating) == (
        shop.pk, OFFER, "winback_offer", "en_GB", "approved", "marketing", "unknown"
    )  # fmt: skip
    assert (t.body, t.variables, t.rejected_reason, t.last_synced_at) == (
        "Hi {{1}}, come back to {{2}}: {{3}}", {"1": "Wei", "2": "Kopi", "3": "https://x.example"}, "", T0
    )  # fmt: skip
    assert content_api.requests[0]["account"] == PLATFORM


@pytest.mark.parametrize(
    ("twilio_says", "stored"),
    [("received", "pending"), ("pending", "pending"), ("unsubmitted", "pending"), ("approved", "approved"),
     ("paused", "paused"), ("rejected", "rejected"), ("disabled", "disabled")],
)  # fmt: skip
def test_each_twilio_approval_status_is_stored_as_ours(content_api, shop, twilio_says, stored):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer", status=twilio_says)]

    sync(shop)

    assert templates(shop)[OFFER][1] == stored


def test_a_template_goes_pending_approved_paused_approved_rejected_as_whatsapp_decides(content_api, shop):
    seen = []
    steps = [("pending", ""), ("approved", ""), ("paused", ""), ("approved", ""),
             ("rejected", "The template promotes a prohibited offer")]  # fmt: skip
    for hour, (status, reason) in enumerate(steps):
        content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer", status=status,
                                                           rejection_reason=reason)]  # fmt: skip
        sync(shop, at=T0 + timedelta(hours=hour))
        seen.append(templates(shop)[OFFER][1:])

    assert seen == [("pending", ""), ("approved", ""), ("paused", ""), ("approved", ""),
                    ("rejected", "The template promotes a prohibited offer")]  # fmt: skip
    with scope(business=shop.pk):
        assert WhatsAppTemplate.objects.get().last_synced_at == T0 + timedelta(hours=4)


def test_only_approved_templates_are_offered(content_api, shop):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "b_offer"), content_template(REMINDER, "a_reminder"),
                                      content_template(THIRD, "c_paused", status="paused")]  # fmt: skip
    sync(shop)

    with scope(business=shop.pk):
        assert [t.name for t in whatsapp_templates_approved(business=shop)] == ["a_reminder", "b_offer"]


def test_a_template_that_disappears_from_twilio_is_disabled_and_comes_back_when_it_returns(content_api, shop):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer"), content_template(REMINDER, "reminder")]
    sync(shop)
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer")]

    report = sync(shop, at=T0 + timedelta(hours=1))

    assert report == services.TemplateSyncReport(synced=1, disabled=1)
    assert {sid: status for sid, (_, status, _) in templates(shop).items()} == {OFFER: "approved", REMINDER: "disabled"}
    assert sync(shop, at=T0 + timedelta(hours=2)).disabled == 0  # already disabled: not counted again

    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer"), content_template(REMINDER, "reminder")]
    sync(shop, at=T0 + timedelta(hours=3))
    assert templates(shop)[REMINDER][1] == "approved"


def test_an_empty_account_disables_every_template(content_api, shop):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer")]
    sync(shop)
    content_api.accounts[PLATFORM] = []

    assert sync(shop, at=T0 + timedelta(hours=1)) == services.TemplateSyncReport(synced=0, disabled=1)
    assert templates(shop)[OFFER][1] == "disabled"


def test_a_sync_touches_only_its_own_businesss_templates_from_its_own_account(content_api, shop, salon):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "kopi_offer")]
    content_api.accounts[SUBACCOUNT] = [content_template(OFFER, "salon_offer", status="paused"),
                                        content_template(REMINDER, "salon_reminder")]  # fmt: skip
    sync(salon)
    before = templates(salon)

    content_api.accounts[PLATFORM] = []  # everything of the platform's account gone
    sync(shop)
    sync(shop, at=T0 + timedelta(hours=1))

    assert (
        templates(salon)
        == before
        == {OFFER: ("salon_offer", "paused", ""), REMINDER: ("salon_reminder", "approved", "")}
    )
    assert [r["account"] for r in content_api.requests] == [SUBACCOUNT, PLATFORM, PLATFORM]
    with scopes_disabled():
        assert WhatsAppTemplate.objects.filter(business=salon).count() == 2


@pytest.mark.parametrize(
    "answer",
    [(500, {"code": 20500, "message": "Internal Server Error", "status": 500}),
     (401, {"code": 20003, "message": "Authenticate", "status": 401}),
     (200, b"<html>not json</html>"),
     (200, {"contents": [{"sid": "not-a-content-sid", "approval_requests": {}}],
            "meta": {"key": "contents", "next_page_url": None}}),
     (200, {"contents": [{"sid": "HX" + "4" * 32, "approval_requests": "approved"}],
            "meta": {"key": "contents", "next_page_url": None}}),
     (200, {"something": 1, "else": 2})],
    ids=["500", "401", "not-json", "bad-sid", "bad-approval", "no-list"],
)  # fmt: skip
def test_an_answer_that_is_not_a_list_of_templates_changes_nothing_and_is_logged(content_api, shop, caplog, answer):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer"), content_template(REMINDER, "reminder")]
    sync(shop)
    before = templates(shop)
    content_api.script[PLATFORM] = answer

    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        report = sync(shop, at=T0 + timedelta(hours=1))

    assert report is None
    assert templates(shop) == before
    with scope(business=shop.pk):
        assert set(WhatsAppTemplate.objects.values_list("last_synced_at", flat=True)) == {T0}
    assert f"WhatsApp templates of business {shop.pk} not synced from {PLATFORM}" in caplog.text


def test_twilio_unreachable_changes_nothing_and_is_logged(content_api, shop, settings, caplog):
    content_api.accounts[PLATFORM] = [content_template(OFFER, "winback_offer")]
    sync(shop)
    settings.TWILIO_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    twilio_channel.twilio_client.cache_clear()

    assert sync(shop, at=T0 + timedelta(hours=1)) is None
    assert templates(shop)[OFFER][1] == "approved"
    assert "Twilio unreachable" in caplog.text


def test_a_business_on_a_subaccount_without_its_token_is_not_synced(content_api, shop, caplog):
    shop.channel_settings["whatsapp"]["account_sid"] = "AC" + "9" * 32
    shop.save(update_fields=["channel_settings"])

    assert sync(shop) is None
    assert content_api.requests == []
    assert "no Twilio account" in caplog.text


def test_every_page_is_read_and_the_upsert_is_one_statement_whatever_the_count(content_api, shop, monkeypatch):
    monkeypatch.setattr(twilio_channel, "CONTENT_PAGE_SIZE", 2)
    few = [content_template(f"HX{n:032x}", f"t{n}") for n in range(3)]
    many = [content_template(f"HX{n:032x}", f"t{n}") for n in range(25)]

    def queries(contents, hour):
        content_api.accounts[PLATFORM] = contents
        with CaptureQueriesContext(connection) as captured:
            sync(shop, at=T0 + timedelta(hours=hour))
        return len(captured)

    assert queries(few, 0) == queries(many, 1) == queries(few, 2)
    assert len(templates(shop)) == 25
    assert [r["query"].get("Page", "0") for r in content_api.requests[-2:]] == ["0", "1"]  # the last sync: 2 pages
    assert len([r for r in content_api.requests if r["query"].get("PageToken")]) == 1 + 12 + 1


def test_the_tick_syncs_every_business_with_whatsapp_set_up_in_its_own_task(content_api, shop, salon, monkeypatch):
    business_make(name="No WhatsApp", channel_settings={"sms": {"enabled": True}})
    business_make(name="Closed", is_active=False, channel_settings={"whatsapp": {"enabled": True}})
    content_api.accounts[PLATFORM] = [content_template(OFFER, "kopi_offer")]
    content_api.accounts[SUBACCOUNT] = [content_template(REMINDER, "salon_reminder", status="rejected")]
    sent = []
    monkeypatch.setattr(tasks.whatsapp_templates_sync_task, "delay",
                        lambda **kwargs: sent.append(kwargs) or tasks.whatsapp_templates_sync_task.apply(kwargs=kwargs))  # fmt: skip

    assert tasks.whatsapp_templates_sync_all_task.apply().get() == 2

    assert sent == [{"business_id": shop.pk}, {"business_id": salon.pk}]
    assert templates(shop) == {OFFER: ("kopi_offer", "approved", "")}
    assert templates(salon) == {REMINDER: ("salon_reminder", "rejected", "")}


def test_the_sync_is_scheduled_in_beat(db):
    task = PeriodicTask.objects.get(task="notifications.whatsapp_templates_sync_all")
    assert (task.enabled, task.interval.every, task.interval.period) == (True, 900, "seconds")
