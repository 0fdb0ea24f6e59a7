"""Twilio's webhooks against hostile callers: replays, concurrent repeats, and numbers that are no
business's sender. Every request here is correctly signed: the signature proves Twilio sent it
once, not that it is new."""

import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_scopes import scope, scopes_disabled

from members.models import ConsentEvent, Member
from notifications.models import DeliveryEvent, ProviderEvent
from notifications.services import send_mark_opened
from tests.campaigns.helpers import at_local, deliveries
from tests.conftest import business_make, member_make
from tests.notifications.test_channels import D, _signed_post, lapsed, send_night

SENDER = "+15005550006"
STATUS, INBOUND = "/webhooks/twilio/status/", "/webhooks/twilio/inbound/"
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def inbound(client, member_or_phone, body, *, to=SENDER, message_sid=None):
    phone = getattr(member_or_phone, "phone", member_or_phone)
    data = {"MessageSid": message_sid or sid(), "AccountSid": "AC" + "0" * 32, "From": phone, "To": to, "Body": body}
    return _signed_post(client, INBOUND, data), data


def callback(client, delivery, status, code=""):
    data = {"MessageSid": delivery.provider_id, "MessageStatus": status}
    if code:
        data["ErrorCode"] = code
    return _signed_post(client, STATUS, data), data


def member_of(shop, member):
    with scope(business=shop.pk):
        return Member.objects.get(pk=member.pk)


def consent_history(member, channel="sms"):
    with scopes_disabled():
        return list(
            ConsentEvent.objects.filter(member_id=member.pk, channel=channel)
            .order_by("id")
            .values_list("source", "granted")
        )


def sent_sms(shop):
    """A member who joined well before D, and the SMS the night of D sent them at 09:00."""
    with time_machine.travel(at_local(shop, D - timedelta(days=60), 12), tick=False):
        member = lapsed(shop)
    send_night(shop, ["sms"])
    (d,) = deliveries(shop)
    return member, d


def later(shop, hour, minute=0):
    return time_machine.travel(at_local(shop, D, hour, minute), tick=False)


# --- replays ---------------------------------------------------------------------------------------


def test_a_replayed_start_after_stop_changes_nothing_and_answers_an_empty_200(shop, twilio, client):
    with later(shop, 8):
        member = lapsed(shop)
    with later(shop, 9):
        _, start = inbound(client, member, "START")  # captured by an attacker
    with later(shop, 10):
        inbound(client, member, "STOP")

    with later(shop, 11):
        replay = _signed_post(client, INBOUND, start)

    assert (replay.status_code, replay.content) == (200, EMPTY_TWIML)
    assert member_of(shop, member).consent_sms is False
    assert consent_history(member) == [("staff", True), ("sms_keyword", False)]


def test_a_replayed_21610_callback_after_start_leaves_the_member_subscribed(shop, twilio, client):
    member, d = sent_sms(shop)
    with later(shop, 9, 5):
        _, undelivered = callback(client, d, "undelivered", "21610")
    assert member_of(shop, member).consent_sms is False
    with later(shop, 10):
        inbound(client, member, "START")

    with later(shop, 11):
        replay = _signed_post(client, STATUS, undelivered)

    assert replay.status_code == 204
    assert member_of(shop, member).consent_sms is True
    assert consent_history(member) == [("staff", True), ("provider", False), ("sms_keyword", True)]
    with scope(business=shop.pk):
        assert DeliveryEvent.objects.filter(delivery=d, detail__startswith="Twilio").count() == 1


def test_a_replayed_undelivered_never_fails_an_opened_delivery(shop, twilio, client):
    member, d = sent_sms(shop)
    with later(shop, 9, 1):
        _, delivered = callback(client, d, "delivered")
    with scope(business=shop.pk), later(shop, 9, 30):
        send_mark_opened(send=d.send, at=at_local(shop, D, 9, 30))

    with later(shop, 10):
        late_failure, _ = callback(client, d, "undelivered", "30003")
        replayed = _signed_post(client, STATUS, delivered)

    assert (late_failure.status_code, replayed.status_code) == (204, 204)
    (d,) = deliveries(shop)
    assert (d.status, d.last_error) == ("opened", "")
    with scope(business=shop.pk):
        assert list(DeliveryEvent.objects.filter(delivery=d).order_by("at", "id").values_list("status", flat=True))[
            -2:
        ] == ["delivered", "opened"]


def test_a_failure_reported_after_delivered_changes_nothing_but_a_read_moves_on(shop, twilio, client):
    member, d = sent_sms(shop)
    with later(shop, 9, 1):
        callback(client, d, "delivered")
        callback(client, d, "failed", "30008")
        assert deliveries(shop)[0].status == "delivered"
        callback(client, d, "read")

    assert deliveries(shop)[0].status == "opened"
    assert member_of(shop, member).consent_sms is True


def test_a_late_21610_about_a_message_sent_before_the_member_resubscribed_keeps_consent(shop, twilio, client):
    member, d = sent_sms(shop)  # sent at 09:00 while subscribed
    with later(shop, 9, 10):
        inbound(client, member, "STOP")
    with later(shop, 9, 20):
        inbound(client, member, "START")

    with later(shop, 9, 30):  # a first receipt, not a replay, but older news than the START
        response, _ = callback(client, d, "undelivered", "21610")

    assert response.status_code == 204
    assert deliveries(shop)[0].status == "failed"  # what happened to that message stays true
    assert member_of(shop, member).consent_sms is True
    assert consent_history(member)[-1] == ("sms_keyword", True)


def test_an_inbound_message_without_a_message_sid_is_refused(shop, twilio, client):
    member = lapsed(shop)

    response = _signed_post(client, INBOUND, {"From": member.phone, "To": SENDER, "Body": "STOP"})

    assert response.status_code == 400
    assert member_of(shop, member).consent_sms is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_callback_delivered_four_times_at_once_is_applied_once(twilio):
    shop = business_make(
        name="Kopi", frequency_cap_days=0, channel_settings={"sms": {"enabled": True, "sender": SENDER}}
    )
    member, d = sent_sms(shop)
    data = {"MessageSid": d.provider_id, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    errors, responses = _posted_at_once(STATUS, data)

    assert (errors, [r.status_code for r in responses]) == ([], [204] * 4)
    with scopes_disabled():
        assert DeliveryEvent.objects.filter(delivery=d, detail__startswith="Twilio").count() == 1
        assert ProviderEvent.objects.filter(business=shop, kind="status").count() == 1
    assert consent_history(member) == [("staff", True), ("provider", False)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_inbound_stop_delivered_four_times_at_once_is_applied_once(twilio):
    shop = business_make(name="Kopi", channel_settings={"sms": {"enabled": True, "sender": SENDER}})
    member = member_make(shop, phone="+60123456789", consents={"sms": True})
    data = {"MessageSid": sid(), "From": member.phone, "To": SENDER, "Body": "STOP"}
    errors, responses = _posted_at_once(INBOUND, data)
    answers = [r.content for r in responses]

    assert errors == []
    assert sorted(b"unsubscribed" in a for a in answers) == [False, False, False, True]  # one confirmation
    assert consent_history(member) == [("staff", True), ("sms_keyword", False)]


# --- tenants ---------------------------------------------------------------------------------------


@pytest.fixture
def neighbour(db):
    """Another business on its own sender, with a member who has the same phone as the shop's."""
    other = business_make(name="Salon", channel_settings={"sms": {"enabled": True, "sender": "+15005550099"}})
    return other, member_make(other, first_name="Wei", phone="+60123456789", consents={"sms": True})


def test_a_stop_to_a_number_that_is_no_businesss_sender_changes_nothing(shop, twilio, client, neighbour, caplog):
    member = lapsed(shop)
    other, theirs = neighbour

    response, _ = inbound(client, member, "STOP", to="+15005550123")

    assert (response.status_code, response.content) == (200, EMPTY_TWIML)
    assert member_of(shop, member).consent_sms is True
    assert member_of(other, theirs).consent_sms is True
    assert "no business's sender" in caplog.text
    with scopes_disabled():
        assert ProviderEvent.objects.count() == 0


def test_a_stop_to_one_businesss_sender_unsubscribes_only_its_member(shop, twilio, client, neighbour):
    member = lapsed(shop)
    other, theirs = neighbour

    response, _ = inbound(client, member, "STOP")

    assert b"Kopi: you are unsubscribed" in response.content
    assert member_of(shop, member).consent_sms is False
    assert member_of(other, theirs).consent_sms is True
    with scopes_disabled():
        assert ProviderEvent.objects.get().business_id == shop.pk


def test_a_whatsapp_stop_matches_the_whatsapp_sender_not_the_sms_one(shop, twilio, client, neighbour):
    member = lapsed(shop)

    inbound(client, f"whatsapp:{member.phone}", "STOP", to=f"whatsapp:{SENDER}")  # the shop's SMS number

    m = member_of(shop, member)
    assert (m.consent_whatsapp, m.consent_sms) == (True, True)


def test_a_stop_through_a_messaging_service_finds_its_business(shop, twilio, client, neighbour):
    other, theirs = neighbour
    other.channel_settings = {"sms": {"enabled": True, "sender": "MG" + "1" * 32}}
    other.save(update_fields=["channel_settings"])
    member = lapsed(shop)
    data = {"MessageSid": sid(), "From": member.phone, "To": "+15005550777", "Body": "STOP",
            "MessagingServiceSid": "MG" + "1" * 32}  # fmt: skip

    _signed_post(client, INBOUND, data)

    assert member_of(other, theirs).consent_sms is False
    assert member_of(shop, member).consent_sms is True


def _posted_at_once(url: str, data: dict, *, times: int = 4) -> tuple[list, list]:
    """The same signed webhook posted by ``times`` threads at one instant: (errors, responses)."""
    barrier = threading.Barrier(times)
    responses, errors = [], []

    def post():
        try:
            barrier.wait()
            responses.append(_signed_post(Client(), url, data))
        except Exception as exc:  # noqa: BLE001 - asserted by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors, responses
