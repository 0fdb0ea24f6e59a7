"""Prices and the budget on the pages: business settings, the wizard's review, the dashboard."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope

from campaigns.sms import unicode_forcing
from notifications.budget import month_of
from notifications.models import MonthlySpend
from tests.conftest import ALL_CHANNELS, campaign_make, member_make, visit_make

SETTINGS = {"form": "business", "name": "Kopi Corner", "timezone": "Asia/Kuala_Lumpur", "currency": "MYR",
            "country": "MY", "program_type": "both", "stamps_per_card": 10, "frequency_cap_days": 7}  # fmt: skip


def test_the_owner_sets_prices_country_prices_and_a_monthly_budget(owner_client, business):
    response = owner_client.post("/settings/", {**SETTINGS, "sms_price": "0.0450", "whatsapp_price": "0.03",
                                                "country_prices": '{"SG": {"sms": "0.05"}}',
                                                "monthly_budget": "120.00"})  # fmt: skip

    assert response.status_code == 302
    business.refresh_from_db()
    assert (business.sms_price, business.whatsapp_price) == (Decimal("0.0450"), Decimal("0.0300"))
    assert business.country_prices == {"SG": {"sms": "0.05"}}
    assert business.monthly_budget == Decimal("120.00")
    page = owner_client.get("/settings/").content.decode()
    assert "Monthly budget for SMS and WhatsApp" in page and "120.00" in page


def test_empty_prices_are_the_defaults_and_an_empty_budget_is_no_limit(owner_client, business, settings):
    business.monthly_budget = Decimal(10)
    business.save()

    owner_client.post("/settings/", {**SETTINGS, "sms_price": "", "whatsapp_price": "", "monthly_budget": ""})

    business.refresh_from_db()
    assert business.sms_price == Decimal(settings.DEFAULT_SMS_SEGMENT_PRICE)
    assert business.whatsapp_price == Decimal(settings.DEFAULT_WHATSAPP_MESSAGE_PRICE)
    assert business.monthly_budget is None and business.country_prices == {}


def test_bad_prices_are_field_errors(owner_client, business):
    bad = owner_client.post("/settings/", {**SETTINGS, "sms_price": "-1", "whatsapp_price": "cheap",
                                           "country_prices": '{"uk": {"sms": 1}}', "monthly_budget": "-5"})  # fmt: skip

    assert bad.status_code == 200
    errors = bad.context["form"].errors
    assert set(errors) == {"sms_price", "whatsapp_price", "country_prices", "monthly_budget"}
    assert "2-letter country code" in errors["country_prices"][0]
    business.refresh_from_db()
    assert business.monthly_budget is None


def test_only_the_owner_edits_prices(manager_client, business):
    response = manager_client.post("/settings/", {**SETTINGS, "monthly_budget": "1"})

    assert response.status_code == 403
    business.refresh_from_db()
    assert business.monthly_budget is None


@pytest.fixture
def lapsed_sms(business):
    business.channel_settings = ALL_CHANNELS
    business.sms_price, business.whatsapp_price = Decimal("0.05"), Decimal("0.03")
    business.monthly_budget = Decimal("20")
    business.save()
    for i in range(4):
        member = member_make(business, first_name=f"Wei{i}", phone="+60123456789", consents={"sms": True})
        visit_make(member, days_ago=40)
    for i in range(2):  # lapsing within the coming month
        member = member_make(business, first_name=f"Ana{i}", phone="+60123456780", consents={"sms": True})
        visit_make(member, days_ago=20)
    return business


def test_the_review_shows_messages_and_cost_tonight_and_in_30_days_and_the_encoding(owner_client, lapsed_sms):
    campaign = campaign_make(lapsed_sms, channels=["sms"], inactivity_days=30, status="draft",
                             title="We miss you, {first_name}!", body="Come back to {business} this week.")  # fmt: skip

    review = owner_client.get(f"/campaigns/{campaign.pk}/edit/review/")

    (sms,) = review.context["estimates"]
    assert (sms["messages"], sms["cost"]) == (4, Decimal("0.20"))
    assert (sms["month_messages"], sms["month_cost"]) == (6, Decimal("0.30"))
    page = review.content.decode()
    assert 'id="estimate-sms-cost">0.20 MYR' in page
    assert "SMS encoding: <strong>GSM-7</strong>" in page and "made Unicode by" not in page
    assert "0.00 MYR of a 20.00 MYR budget" in page


def test_the_review_names_the_characters_that_forced_unicode(owner_client, lapsed_sms):
    campaign = campaign_make(lapsed_sms, channels=["sms"], inactivity_days=30, status="draft",
                             title="We miss you 💛", body="Come back to {business} — this week only.")  # fmt: skip

    page = owner_client.get(f"/campaigns/{campaign.pk}/edit/review/").content.decode()

    assert "SMS encoding: <strong>Unicode</strong>" in page
    assert "made Unicode by <code>💛</code> <code>—</code>" in page


def test_unicode_forcing_lists_each_non_gsm_character_once():
    assert unicode_forcing("Hi “Wei” — café € ok 💛💛") == ["“", "”", "—", "💛"]
    assert unicode_forcing("Plain GSM-7 text with € and {braces}") == []


def test_the_dashboard_shows_this_months_spend_against_the_budget(owner_client, business):
    business.monthly_budget = Decimal("50")
    business.save()
    with scope(business=business.pk):
        MonthlySpend.objects.create(business=business, month=month_of(business=business, now=timezone.now()),
                                    amount=Decimal("12.5"), messages=250, updated_at=timezone.now())  # fmt: skip
        # last month's spend is not this month's
        MonthlySpend.objects.create(business=business, month=date(2000, 1, 1), amount=Decimal(99), messages=9,
                                    updated_at=timezone.now())  # fmt: skip

    page = owner_client.get("/dashboard/").content.decode()

    assert "Spent this month:</strong> 12.50 MYR of a 50.00 MYR budget (25 %)" in page


def test_the_dashboard_without_a_budget_says_so(owner_client, business):
    page = owner_client.get("/dashboard/").content.decode()

    assert "Spent this month:</strong> 0.00 MYR (no monthly budget set)" in page
