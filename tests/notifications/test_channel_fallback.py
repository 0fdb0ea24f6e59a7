"""Channel fallback at delivery (issue 15): a permanent failure moves a first-reachable send to the
next channel of the campaign's order the member is reachable on now, once per channel, paced like
any delivery, recorded in the history; the end of the list is the end."""

from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from campaigns.models import ChannelMode
from members.services import member_consent_set
from notifications.channels import PermanentSendError
from notifications.channels.recording import RecordingBackend
from notifications.channels.twilio import PERMANENT
from notifications.dispatcher.fallback import deliveries_fall_back
from notifications.models import Delivery, DeliveryEvent, PushSubscription
from notifications.services import delivery_report_apply, email_event_apply
from tests.campaigns.helpers import at_local, deliveries, night, sends
from tests.conftest import business_make, campaign_make, member_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)  # a Friday
EVERYWHERE = {"push": True, "sms": True, "whatsapp": True, "email": True}

PUSH_410 = PermanentSendError("push service answered 410: the subscription expired", code="410",
                              action="delete_subscription")  # fmt: skip
SMS_21610 = PermanentSendError("Twilio 21610: Attempt to send to unsubscribed recipient (the recipient replied STOP)",
                               code="21610", action="withdraw_consent")  # fmt: skip
SMS_21614 = PermanentSendError("Twilio 21614: not a valid mobile number (not a mobile number)", code="21614",
                               action="withdraw_consent")  # fmt: skip
WHATSAPP_63016 = PermanentSendError("Twilio 63016: outside the allowed window", code="63016")


@pytest.fixture
def business(db):
    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed(business, n=1, **fields):
    fields.setdefault("consents", EVERYWHERE)
    out = []
    for i in range(n):
        member = member_make(business, phone="+60123456789", email=f"m{i}@example.com", **fields)
        with time_machine.travel(at_local(business, D, 0, 30), tick=False):
            visit_make(member, at=at_local(business, D - timedelta(days=30), 12))
        with scope(business=business.pk):
            PushSubscription.objects.create(business=business, member=member, endpoint=f"https://push.example/{member.pk}",
                                            p256dh="k", auth="a")  # fmt: skip
        out.append(member)
    return out


class Refusing(RecordingBackend):
    def __init__(self, channel, error):
        super().__init__(channel)
        self.error = error

    def send(self, message):
        if self.error is not None:
            raise self.error
        return super().send(message)


def refusing(errors: dict):
    """Backends that refuse on the channels of ``errors`` and record elsewhere."""
    return lambda channel, business=None: Refusing(channel, errors.get(channel))


def history(delivery) -> list[tuple[str, str]]:
    with scope(business=delivery.business_id):
        return list(DeliveryEvent.objects.filter(delivery=delivery).order_by("id").values_list("status", "detail"))


@pytest.mark.parametrize(
    ("channels", "error", "to", "words"),
    [
        (["push", "sms", "email"], PUSH_410, "sms", "Web push to SMS: push service answered 410"),
        (["sms", "email", "push"], SMS_21610, "email", "SMS to Email: Twilio 21610"),
        (["sms", "whatsapp"], SMS_21614, "whatsapp", "SMS to WhatsApp: Twilio 21614"),
        (["whatsapp", "sms"], WHATSAPP_63016, "sms", "WhatsApp to SMS: Twilio 63016"),
    ],
)
def test_a_permanent_error_moves_the_send_to_the_next_channel_once(business, channels, error, to, words):
    campaign_make(business, channels=channels)
    (member,) = lapsed(business)
    night(business, D)
    nine = at_local(business, D, 9)

    first_batch, fallback_batch = run_dispatch(nine, backends=refusing({channels[0]: error}))

    # the fallback is due at once: the same dispatcher pass claims it and it goes out
    assert (first_batch.failed, first_batch.fell_back, fallback_batch.sent) == (1, 1, 1)
    first, second = deliveries(business)
    assert (first.channel, first.status) == (channels[0], "failed")
    assert (second.channel, second.status, second.fallback_from, second.scheduled_at) == (to, "sent", channels[0], nine)
    assert second.send_id == first.send_id
    (status, detail), *went_out = history(second)
    assert status == "scheduled"
    assert detail.startswith(f"fell back from {words}")
    assert [s for s, _ in went_out] == ["queued", "sending", "sent"]
    # the send counts once, whichever channel carried it
    (send,) = sends(business)
    assert (send.member_id, send.outcome) == (member.pk, "sent")


def test_the_fallback_walks_the_order_once_per_channel_and_stops_at_the_end(business):
    campaign_make(business, channels=["sms", "whatsapp", "email"])
    lapsed(business)
    night(business, D)
    everything_fails = refusing(
        {ch: PermanentSendError(f"{ch} refused", code="x") for ch in ("sms", "whatsapp", "email")}
    )
    nine = at_local(business, D, 9)

    for minute in range(5):
        run_dispatch(nine + timedelta(minutes=minute), backends=everything_fails)

    got = [(d.channel, d.status, d.fallback_from) for d in deliveries(business)]
    assert got == [("sms", "failed", ""), ("whatsapp", "failed", "sms"), ("email", "failed", "whatsapp")]
    (send,) = sends(business)
    assert send.outcome == "failed"


def test_the_fallback_skips_channels_unreachable_now_and_channels_already_tried(business):
    campaign = campaign_make(business, channels=["sms", "whatsapp", "email", "push"])
    (member,) = lapsed(business)
    night(business, D)
    (send,) = sends(business)
    nine = at_local(business, D, 9)
    with scope(business=business.pk):
        member_consent_set(member=member, channel="whatsapp", granted=False, source="member_app")
        # an email delivery of this send already exists (cancelled): tried, never again
        Delivery.objects.create(business=business, send=send, campaign=campaign, member=member, channel="email",
                                status="cancelled", scheduled_at=nine, created_at=nine, updated_at=nine)  # fmt: skip

    run_dispatch(nine, backends=refusing({"sms": SMS_21610}))

    assert sorted((d.channel, d.status, d.fallback_from) for d in deliveries(business)) == [
        ("email", "cancelled", ""), ("push", "sent", "sms"), ("sms", "failed", ""),
    ]  # fmt: skip


def test_every_chosen_channel_does_not_fall_back(business):
    campaign_make(business, channels=["sms", "email"], channel_mode=ChannelMode.EVERY)
    lapsed(business, consents={"sms": True})
    night(business, D)

    (report,) = run_dispatch(at_local(business, D, 9), backends=refusing({"sms": SMS_21610}))

    assert report.fell_back == 0
    assert [(d.channel, d.status) for d in deliveries(business)] == [("sms", "failed")]


def test_an_sms_fallback_at_2200_waits_for_0800(business):
    campaign_make(business, channels=["push", "sms"], send_at="20:00")
    lapsed(business)
    night(business, D)

    run_dispatch(at_local(business, D, 22), backends=refusing({"push": PUSH_410}))

    push, sms = deliveries(business)
    assert (push.status, sms.channel, sms.status) == ("failed", "sms", "scheduled")
    assert sms.scheduled_at == at_local(business, D + timedelta(days=1), 8)


def test_a_fallback_keeps_the_channels_interval_after_what_is_scheduled(business):
    campaign_make(
        business, channels=["push", "whatsapp"], pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 0}}
    )
    first, second = lapsed(business, 2)
    night(business, D)
    nine = at_local(business, D, 9)

    run_dispatch(nine, backends=refusing({"push": PUSH_410}))

    assert [d.scheduled_at for d in deliveries(business, channel="whatsapp")] == [nine, nine + timedelta(minutes=1)]


def test_the_fallback_costs_the_same_statements_for_2_or_30_failures(db):
    counts = []
    for n in (2, 30):
        b = business_make(timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)
        campaign = campaign_make(b, channels=["sms", "whatsapp", "email"],
                                 pacing={"whatsapp": {"interval_seconds": 60, "daily_cap": 10}})  # fmt: skip
        lapsed(b, n)
        night(b, D)
        with scope(business=b.pk):
            Delivery.objects.filter(business=b).update(status="failed")
            failed = [{"id": d.pk, "send_id": d.send_id, "campaign_id": d.campaign_id, "channel": d.channel,
                       "reason": "invalid number", "tz": b.timezone} for d in deliveries(b)]  # fmt: skip
            with CaptureQueriesContext(connection) as ctx:
                written = deliveries_fall_back(failed=failed, campaigns={campaign.pk: campaign}, now=at_local(b, D, 9))
        assert written == n
        assert {(d.channel, d.status) for d in deliveries(b, fallback_from="sms")} == {("whatsapp", "scheduled")}
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1] <= 7, counts


def test_a_whatsapp_63016_reported_after_sending_falls_back_to_sms(business):
    campaign_make(business, channels=["whatsapp", "sms"])
    lapsed(business)
    night(business, D)
    nine = at_local(business, D, 9)
    run_dispatch(nine, backends=refusing({}))
    (whatsapp,) = deliveries(business)

    with scope(business=business.pk):
        moved = delivery_report_apply(delivery=whatsapp, key="SM1:undelivered", status="failed",
                                      detail="Twilio undelivered (error 63016)", withdraws_consent=False,
                                      at=nine + timedelta(minutes=5))  # fmt: skip

    assert moved
    whatsapp, sms = deliveries(business)
    assert (whatsapp.status, sms.channel, sms.status, sms.fallback_from) == ("failed", "sms", "scheduled", "whatsapp")
    assert sms.scheduled_at == nine + timedelta(minutes=5)
    assert history(sms) == [("scheduled", "fell back from WhatsApp to SMS: Twilio undelivered (error 63016)")]


def test_a_hard_bounce_falls_back_to_the_next_channel(business):
    campaign_make(business, channels=["email", "sms"])
    lapsed(business)
    night(business, D)
    nine = at_local(business, D, 9)
    run_dispatch(nine, backends=refusing({}))
    (email,) = deliveries(business)

    with scope(business=business.pk):
        email_event_apply(delivery=email, event_type="bounced", key="b1", detail="hard bounce: mailbox does not exist",
                          occurred_at=nine, at=nine + timedelta(hours=1))  # fmt: skip

    email, sms = deliveries(business)
    assert (email.status, sms.channel, sms.status) == ("failed", "sms", "scheduled")
    assert history(sms) == [("scheduled", "fell back from Email to SMS: hard bounce: mailbox does not exist")]


def test_a_signed_twilio_63016_callback_falls_back_end_to_end(shop, twilio, client):
    from tests.notifications.test_channels import lapsed as shop_member
    from tests.notifications.test_channels import send_night
    from tests.notifications.test_webhooks import callback

    shop_member(shop)
    send_night(shop, ["whatsapp", "sms"])
    (whatsapp,) = deliveries(shop)
    assert (whatsapp.channel, whatsapp.status) == ("whatsapp", "sent")

    with time_machine.travel(at_local(shop, D, 9, 5), tick=False):
        response, _ = callback(client, whatsapp, "undelivered", "63016")

    assert response.status_code == 204
    whatsapp, sms = deliveries(shop)
    assert (whatsapp.status, sms.channel, sms.status) == ("failed", "sms", "scheduled")
    assert history(sms) == [("scheduled", "fell back from WhatsApp to SMS: Twilio undelivered (error 63016: "
                                          f"{PERMANENT[63016]})")]  # fmt: skip


def test_results_count_each_send_once_and_the_campaign_page_shows_the_fallbacks(business, owner_client):
    from django.urls import reverse

    from campaigns.results import campaign_results

    campaign = campaign_make(business, channels=["sms", "email"])
    refused, *_ = lapsed(business, 3)
    night(business, D)

    class RefusingOne(RecordingBackend):
        def send(self, message):
            if message.channel == "sms" and message.member_id != refused.pk:
                raise SMS_21610
            return super().send(message)

    run_dispatch(at_local(business, D, 9), backends=lambda channel, business=None: RefusingOne(channel))

    with scope(business=business.pk):
        results = campaign_results(campaign)
    assert (results.treatment.sends, results.treatment.reached) == (3, 3)  # not 5: sends, not deliveries
    assert results.deliveries == {"sms": {"failed": 2, "sent": 1}, "email": {"sent": 2}}
    assert results.fallbacks == {"email": {"sms": 2}}
    page = owner_client.get(reverse("campaigns:campaign-detail", args=[campaign.pk])).content.decode()
    assert "2 fell back to Email: 2 from SMS" in page
    assert page.count("Fell back from SMS") == 2
    assert "SMS → Email" in page
