"""Spend under a budget: prices, the month's reservation, and what a message past the budget does."""

import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import transaction
from django_scopes import scope, scopes_disabled

from campaigns.models import CampaignSend
from notifications import budget, dispatcher
from notifications.channels import PermanentSendError
from notifications.channels.recording import RecordingBackend
from notifications.inbox import sends_visible_at
from notifications.models import Delivery, DeliveryEvent, MonthlySpend, RecordedMessage
from tests.campaigns.test_concurrency import together
from tests.conftest import business_make, campaign_make, member_make

NOW = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)  # 11:00 in Kuala Lumpur, a Tuesday
KL = ZoneInfo("Asia/Kuala_Lumpur")
MAY = date(2026, 5, 1)
CHANNELS = {"sms": {"enabled": True}, "whatsapp": {"enabled": True}, "email": {"enabled": True}}


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://winback.example"


def shop_make(**fields):
    fields.setdefault("sms_price", Decimal("0.05"))
    fields.setdefault("whatsapp_price", Decimal("0.03"))
    return business_make(name="Kopi", channel_settings=CHANNELS, **fields)


@pytest.fixture
def shop(db):
    return shop_make(monthly_budget=Decimal("0.25"))  # exactly five one-segment SMS


def due(business, n, *, channel="sms", email=True, **campaign_fields):
    """``n`` sends, each with one delivery due now on ``channel``, of one campaign."""
    campaign = campaign_make(business, channels=[channel], title="Hi {first_name}", body="Come back soon.",
                             **campaign_fields)  # fmt: skip
    ids = []
    for i in range(n):
        member = member_make(business, first_name=f"M{i}", phone="+60123456789",
                             email=f"m{i}@example.com" if email else "",
                             consents={"sms": True, "whatsapp": True, "email": email})  # fmt: skip
        with scope(business=business.pk):
            send = CampaignSend.objects.create(business=business, campaign=campaign, member=member, send_number=1,
                                               local_date=NOW.date(), created_at=NOW)  # fmt: skip
            ids.append(Delivery.objects.create(business=business, send=send, campaign=campaign, member=member,
                                               channel=channel, status="scheduled", scheduled_at=NOW,
                                               created_at=NOW, updated_at=NOW).pk)  # fmt: skip
    return campaign, ids


def dispatch(now=NOW, *, backends=None, batch_size=500):
    def enqueue(business_id, ids):
        with scope(business=business_id):
            kwargs = {"backends": backends} if backends else {}
            dispatcher.deliveries_send(delivery_ids=ids, now_fn=lambda: now, **kwargs)

    with scopes_disabled():
        return dispatcher.dispatch_due(now=now, enqueue=enqueue, batch_size=batch_size)


def spend(business, month=MAY):
    with scopes_disabled():
        row = MonthlySpend.objects.filter(business=business, month=month).first()
    return (row.amount, row.messages) if row else (Decimal(0), 0)


def statuses(business):
    with scopes_disabled():
        return sorted(Delivery.objects.filter(business=business).values_list("channel", "status"))


# --- prices ----------------------------------------------------------------------------------------


def test_an_sms_costs_its_segments_and_whatsapp_one_message_at_the_countrys_price(db):
    business = shop_make(country_prices={"GB": {"sms": "0.04"}, "MY": {"whatsapp": "0.01"}})
    long_body = "x" * 200  # with the title and link: two segments

    def cost(channel, to, body="Hi"):
        return budget.message_cost(business=business, channel=channel, to=to, title="Hi", body=body,
                                   url="https://winback.example/m/abcdefghijk")  # fmt: skip

    assert cost("sms", "+60123456789") == Decimal("0.05")
    assert cost("sms", "+60123456789", long_body) == Decimal("0.10")
    assert cost("sms", "+447400123456", long_body) == Decimal("0.08")
    assert cost("whatsapp", "+60123456789", long_body) == Decimal("0.01")
    assert cost("whatsapp", "+447400123456") == Decimal("0.03")
    assert cost("email", "a@example.com") == cost("push", "") == Decimal(0)


@pytest.mark.parametrize(
    "prices",
    [{"gb": {"sms": "1"}}, {"GB": {"fax": "1"}}, {"GB": {"sms": "-1"}}, {"GB": {"sms": "lots"}}, {"GB": {}}, "GB"],
)
def test_country_prices_that_are_not_prices_are_refused(db, prices):
    business = shop_make()
    business.country_prices = prices

    with pytest.raises(ValidationError) as exc:
        business.full_clean()

    assert "country_prices" in exc.value.message_dict


def test_a_reservation_takes_the_messages_that_fit_in_order(shop):
    costs = [Decimal("0.10"), Decimal("0.10"), Decimal("0.10")]
    with scope(business=shop.pk):
        assert budget.spend_reserve(business=shop, month=MAY, costs=costs, now=NOW) == 2
        assert budget.spend_reserve(business=shop, month=MAY, costs=[Decimal("0.05")], now=NOW) == 1
        assert budget.spend_reserve(business=shop, month=MAY, costs=[Decimal("0.01")], now=NOW) == 0
        assert budget.spend_reserve(business=shop, month=date(2026, 6, 1), costs=costs, now=NOW) == 2
    assert spend(shop) == (Decimal("0.25"), 3)


def test_without_a_budget_everything_is_reserved_and_counted(db):
    business = shop_make()
    with scope(business=business.pk):
        assert budget.spend_reserve(business=business, month=MAY, costs=[Decimal(7)] * 4, now=NOW) == 4
    assert spend(business) == (Decimal(28), 4)


def test_the_month_is_the_businesss_local_month(shop):
    late_on_april_30_utc = datetime(2026, 4, 30, 17, 0, tzinfo=UTC)  # already 1 May in Kuala Lumpur
    assert budget.month_of(business=shop, now=late_on_april_30_utc) == MAY
    assert budget.next_month_start(business=shop, now=NOW) == datetime(2026, 6, 1, tzinfo=KL)


# --- the dispatcher --------------------------------------------------------------------------------


def test_past_the_budget_sms_falls_back_to_email(shop):
    campaign, ids = due(shop, 7)

    dispatch()

    # the fallback is due at once: the same pass sends it, for free
    assert statuses(shop) == sorted([("sms", "sent")] * 5 + [("sms", "skipped")] * 2 + [("email", "sent")] * 2)
    assert spend(shop) == (Decimal("0.25"), 5)
    with scopes_disabled():
        skipped = Delivery.objects.filter(business=shop, status="skipped")
        assert {d.last_error for d in skipped} == {"over the monthly budget: sent on a free channel instead"}
        fallback = Delivery.objects.filter(business=shop, channel="email").first()
        assert fallback.events.order_by("at", "id").first().detail == (
            "fallback: the billable channel is over the monthly budget"
        )
    with scopes_disabled():
        assert set(CampaignSend.objects.filter(business=shop).values_list("outcome", flat=True)) == {"sent"}


def test_past_the_budget_without_a_free_channel_the_inbox_alone_has_it(shop):
    due(shop, 6, email=False)

    dispatch()

    assert statuses(shop) == sorted([("sms", "sent")] * 5 + [("sms", "skipped")])
    with scopes_disabled():
        # the send went out in the inbox: sent, and visible there
        assert list(CampaignSend.objects.filter(business=shop).values_list("outcome", flat=True)) == ["sent"] * 6
        assert sends_visible_at(CampaignSend.objects.filter(business=shop), now=NOW).count() == 6


def test_past_the_budget_a_waiting_campaign_sends_from_the_1st_of_next_month(shop):
    due(shop, 7, over_budget="wait", pacing={"sms": {"interval_seconds": 60, "daily_cap": 0}})

    dispatch()

    with scopes_disabled():
        waiting = list(Delivery.objects.filter(business=shop, status="scheduled").order_by("scheduled_at"))
        assert [d.scheduled_at for d in waiting] == [datetime(2026, 6, 1, 8, 0, tzinfo=KL),
                                                     datetime(2026, 6, 1, 8, 1, tzinfo=KL)]  # fmt: skip
        assert DeliveryEvent.objects.filter(delivery=waiting[0]).last().detail == (
            "over the monthly budget: waiting for next month"
        )
    assert statuses(shop).count(("sms", "sent")) == 5 and ("email", "scheduled") not in statuses(shop)

    # in June the budget is new: they go out and count there
    dispatch(datetime(2026, 6, 1, 8, 2, tzinfo=KL))
    assert statuses(shop).count(("sms", "sent")) == 7
    assert spend(shop, date(2026, 6, 1)) == (Decimal("0.10"), 2)


def test_a_message_the_provider_refused_gives_its_reservation_back(shop):
    due(shop, 3)

    class Refusing(RecordingBackend):
        def send(self, message):
            if message.title == "Hi M1":
                raise PermanentSendError("unreachable", code="21211")
            return super().send(message)

    dispatch(backends=lambda channel, business=None: Refusing(channel))

    assert statuses(shop) == [("sms", "failed"), ("sms", "sent"), ("sms", "sent")]
    assert spend(shop) == (Decimal("0.10"), 2)


def test_whatsapp_is_reserved_per_message_and_push_and_email_cost_nothing(db):
    business = shop_make(monthly_budget=Decimal("0.06"))
    due(business, 3, channel="whatsapp")
    due(business, 2, channel="email")

    dispatch()

    with scope(business=business.pk):
        sent = sorted(RecordedMessage.objects.values_list("channel", flat=True))
    assert sent.count("whatsapp") == 2 and sent.count("email") == 3  # two of their own, one fallback
    assert spend(business) == (Decimal("0.06"), 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_send_exactly_the_budget_and_fall_back_for_the_rest(monkeypatch):
    # given a budget for exactly 5 SMS and 16 SMS due, sent two at a time (many reservations)
    monkeypatch.setattr(dispatcher.send, "CHUNK", 2)
    business = shop_make(monthly_budget=Decimal("0.25"))
    due(business, 16)

    # when two dispatchers claim and send at the same moment, each on its own connection
    with time_machine.travel(NOW, tick=False):
        together(2, lambda i: dispatch(batch_size=2))

    # then exactly five went out by SMS and the other eleven fell back to email
    assert statuses(business).count(("sms", "sent")) == 5
    assert statuses(business).count(("sms", "skipped")) == 11
    assert statuses(business).count(("email", "sent")) == 11
    assert spend(business) == (Decimal("0.25"), 5)
    with scopes_disabled():
        assert RecordedMessage.objects.filter(business=business, channel="sms").count() == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reservation_waits_for_a_concurrent_one_and_reads_what_it_reserved():
    # given a budget of five messages, and one reservation of three still open (its row locked)
    business = shop_make(monthly_budget=Decimal("0.25"))
    with scope(business=business.pk):
        MonthlySpend.objects.create(business=business, month=MAY, updated_at=NOW)
    holding, done = threading.Event(), []

    def first():
        with scope(business=business.pk), transaction.atomic():
            done.append(("first", budget.spend_reserve(business=business, month=MAY, costs=[Decimal("0.05")] * 3,
                                                       now=NOW)))  # fmt: skip
            holding.set()
            time.sleep(0.5)  # the second starts meanwhile and must wait

    def second():
        holding.wait()
        with scope(business=business.pk):
            done.append(("second", budget.spend_reserve(business=business, month=MAY,
                                                        costs=[Decimal("0.05")] * 5, now=NOW)))  # fmt: skip

    # when a second reservation of five starts before the first commits
    together(2, lambda i: (first, second)[i]())

    # then it waited, and took only the two left
    assert done == [("first", 3), ("second", 2)]
    assert spend(business) == (Decimal("0.25"), 5)
