"""The real twilio, pywebpush and Django email clients against local fakes (no network)."""

from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django_scopes import scope
from twilio.request_validator import RequestValidator

from members.models import Member
from notifications.models import PushSubscription
from tests.campaigns.helpers import at_local, deliveries, night
from tests.conftest import TWILIO_TOKEN as TOKEN
from tests.conftest import business_make, campaign_make, member_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)


@pytest.fixture
def shop(db):
    return business_make(
        name="Kopi",
        timezone="Asia/Kuala_Lumpur",
        frequency_cap_days=0,
        channel_settings={
            "sms": {"enabled": True, "sender": "+15005550006"},
            "whatsapp": {"enabled": True, "sender": "+15005550007", "template": "HX1234"},
            "email": {"enabled": True, "from_name": "Kopi Corner"},
            "push": {"enabled": True},
        },
    )


def lapsed(shop, phone="+60123456789", **fields):
    fields.setdefault("consents", {"sms": True, "whatsapp": True, "email": True, "push": True})
    member = member_make(shop, first_name="Wei", phone=phone, email="wei@example.com", **fields)
    with time_machine.travel(at_local(shop, D, 0, 30), tick=False):
        visit_make(member, at=at_local(shop, D - timedelta(days=30), 12))
    return member


def send_night(shop, channels, **campaign):
    campaign_make(shop, channels=channels, title="We miss you, {first_name}!", body="Come back to {business}.",
                  **campaign)  # fmt: skip
    night(shop, D)
    return run_dispatch(at_local(shop, D, 9))


# --- SMS and WhatsApp ----------------------------------------------------------------------------------


def test_an_sms_goes_through_twilio_and_records_the_provider_id(shop, twilio):
    lapsed(shop)

    send_night(shop, ["sms"])

    (d,) = deliveries(shop)
    (request,) = twilio.requests
    assert d.status == "sent" and d.provider_id.startswith("SM")
    assert request["path"] == f"/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"
    form = request["form"]
    assert (form["To"], form["From"]) == ("+60123456789", "+15005550006")
    assert form["Body"].startswith("We miss you, Wei!\nCome back to Kopi.\nhttps://winback.example/m/")
    assert form["StatusCallback"] == "https://winback.example/webhooks/twilio/status/"


@pytest.mark.parametrize("code", [21610, 21614])
def test_twilio_21610_and_21614_withdraw_the_channel(shop, twilio, code):
    member = lapsed(shop)
    twilio.script["+60123456789"] = (400, code, "Attempt to send to unsubscribed recipient", {})

    send_night(shop, ["sms"])

    (d,) = deliveries(shop)
    assert d.status == "failed" and str(code) in d.last_error
    with scope(business=shop.pk):
        assert Member.objects.get(pk=member.pk).consent_sms is False


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, None)])
def test_twilio_429_and_5xx_retry_with_backoff_then_fail(shop, twilio, status, code):
    lapsed(shop)
    twilio.script["+60123456789"] = (status, code, "slow down", {})
    send_night(shop, ["sms"])
    (d,) = deliveries(shop)
    assert d.status == "scheduled" and d.attempts == 1
    now = d.scheduled_at
    for _ in range(4):
        run_dispatch(now)
        (d,) = deliveries(shop)
        now = d.scheduled_at

    assert (d.status, d.attempts) == ("failed", 5)
    assert len(twilio.requests) == 5


def test_whatsapp_uses_the_approved_template_and_63016_fails_with_a_clear_reason(shop, twilio):
    lapsed(shop)
    lapsed(shop, phone="+60198765432")
    twilio.script["whatsapp:+60198765432"] = (400, 63016, "Failed to send freeform message", {})

    send_night(shop, ["whatsapp"])

    ok, refused = sorted(deliveries(shop), key=lambda d: d.status, reverse=True)
    assert ok.status == "sent"
    sent = next(r["form"] for r in twilio.requests if r["form"]["To"] == "whatsapp:+60123456789")
    assert (sent["From"], sent["ContentSid"]) == ("whatsapp:+15005550007", "HX1234")
    assert '"1": "We miss you, Wei!"' in sent["ContentVariables"]
    assert refused.status == "failed" and "approved template" in refused.last_error


def _signed_post(client, path, data, token=TOKEN):
    url = f"https://winback.example{path}"
    signature = RequestValidator(token).compute_signature(url, data)
    return client.post(path, data, headers={"X-Twilio-Signature": signature})


def test_status_callbacks_with_a_valid_signature_move_the_delivery_on(shop, twilio, client):
    lapsed(shop)
    send_night(shop, ["sms"])
    (d,) = deliveries(shop)

    response = _signed_post(
        client, "/webhooks/twilio/status/", {"MessageSid": d.provider_id, "MessageStatus": "delivered"}
    )

    assert response.status_code == 204
    assert deliveries(shop)[0].status == "delivered"


@pytest.mark.parametrize("signature", [None, "bad", "forged-with-another-token"])
def test_a_webhook_without_a_valid_signature_is_rejected_and_changes_nothing(shop, twilio, client, signature):
    member = lapsed(shop)
    send_night(shop, ["sms"])
    (d,) = deliveries(shop)
    status = {"MessageSid": d.provider_id, "MessageStatus": "failed", "ErrorCode": "21610"}
    inbound = {"From": member.phone, "To": "+15005550006", "Body": "STOP"}

    for path, data in (("/webhooks/twilio/status/", status), ("/webhooks/twilio/inbound/", inbound)):
        if signature == "forged-with-another-token":
            response = _signed_post(client, path, data, token="not-the-token")
        else:
            headers = {"X-Twilio-Signature": signature} if signature else {}
            response = client.post(path, data, headers=headers)
        assert response.status_code == 403

    assert deliveries(shop)[0].status == "sent"
    with scope(business=shop.pk):
        assert Member.objects.get(pk=member.pk).consent_sms is True


def test_stop_then_start_round_trips_consent_and_answers_as_carriers_expect(shop, twilio, client):
    member = lapsed(shop)

    stop = _signed_post(
        client, "/webhooks/twilio/inbound/", {"From": member.phone, "To": "+15005550006", "Body": " stop "}
    )
    with scope(business=shop.pk):
        assert Member.objects.get(pk=member.pk).consent_sms is False
    assert b"unsubscribed" in stop.content and b"Reply START" in stop.content
    start = _signed_post(
        client, "/webhooks/twilio/inbound/", {"From": member.phone, "To": "+15005550006", "Body": "START"}
    )
    helped = _signed_post(
        client, "/webhooks/twilio/inbound/", {"From": member.phone, "To": "+15005550006", "Body": "help"}
    )

    with scope(business=shop.pk):
        m = Member.objects.get(pk=member.pk)
        assert m.consent_sms is True
        assert list(m.consent_events.filter(channel="sms", source="sms_keyword").values_list("granted", flat=True)
                    .order_by("id")) == [False, True]  # fmt: skip
    assert b"subscribed again" in start.content
    assert b"Reply STOP to unsubscribe" in helped.content and start["Content-Type"] == "text/xml"


def test_a_whatsapp_stop_withdraws_only_whatsapp(shop, twilio, client):
    member = lapsed(shop)

    _signed_post(client, "/webhooks/twilio/inbound/",
                 {"From": f"whatsapp:{member.phone}", "To": "whatsapp:+15005550007", "Body": "STOP"})  # fmt: skip

    with scope(business=shop.pk):
        m = Member.objects.get(pk=member.pk)
    assert (m.consent_whatsapp, m.consent_sms) == (False, True)


# --- Web Push ------------------------------------------------------------------------------------------


def subscribe(shop, member, push, name="phone"):
    info = push.subscribe(name)
    with scope(business=shop.pk):
        PushSubscription.objects.create(business=shop, member=member, endpoint=info["endpoint"],
                                        p256dh=info["keys"]["p256dh"], auth=info["keys"]["auth"])  # fmt: skip
    return info


def test_a_push_is_encrypted_for_the_browser_and_signed_with_vapid(shop, push):
    member = lapsed(shop)
    subscribe(shop, member, push)

    send_night(shop, ["push"], reward={"kind": "bonus_points", "count": 50})

    (d,) = deliveries(shop)
    (request,) = push.requests
    assert "error" not in request, request["error"]
    assert d.status == "sent" and d.provider_id.startswith(push.url + "/messages/")
    payload = request["payload"]
    assert (payload["title"], payload["body"]) == ("We miss you, Wei!", "Come back to Kopi.")
    assert payload["url"].startswith("http") and "/m/" in payload["url"] and payload["icon"].endswith(".png")
    assert request["headers"]["ttl"] == str(4 * 24 * 3600) and request["headers"]["urgency"] == "normal"
    assert request["claims"]["sub"] == "mailto:ops@winback.example"
    with scope(business=shop.pk):
        assert PushSubscription.objects.get(member=member).last_success_at is not None


@pytest.mark.parametrize("status", [404, 410])
def test_push_404_and_410_delete_the_subscription(shop, push, status):
    member = lapsed(shop)
    subscribe(shop, member, push, name="gone")
    push.script["gone"] = (status, {}, {})

    send_night(shop, ["push"])

    assert deliveries(shop)[0].status == "failed"
    with scope(business=shop.pk):
        assert not PushSubscription.objects.filter(member=member).exists()


def test_push_429_honours_retry_after(shop, push):
    member = lapsed(shop)
    subscribe(shop, member, push, name="busy")
    push.script["busy"] = (429, {}, {"Retry-After": "900"})

    send_night(shop, ["push"])

    (d,) = deliveries(shop)
    assert d.status == "scheduled" and d.scheduled_at == at_local(shop, D, 9) + timedelta(seconds=900)


def test_a_long_push_body_is_trimmed_under_the_size_limit(shop):
    from notifications.channels import Message
    from notifications.channels.webpush import MAX_PAYLOAD, push_payload

    message = Message(delivery_id=1, business_id=1, member_id=1, channel="push", to="x", title="T",
                      body="é" * 5000, url="https://winback.example/m/x/")  # fmt: skip

    assert len(push_payload(message).encode()) <= MAX_PAYLOAD


def test_the_vapid_command_prints_a_usable_key_pair():
    from io import StringIO

    out = StringIO()
    call_command("vapid_keys", stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().split())
    from py_vapid import Vapid01

    assert Vapid01.from_string(lines["VAPID_PRIVATE_KEY"]) is not None
    assert len(lines["VAPID_PUBLIC_KEY"]) == 87


# --- Email ---------------------------------------------------------------------------------------------


@pytest.fixture
def email_on(settings):
    settings.EMAIL_CHANNEL_ENABLED = True
    settings.SITE_URL = "https://winback.example"


def test_an_email_has_html_and_text_parts_and_both_unsubscribe_headers(shop, email_on):
    lapsed(shop)

    send_night(shop, ["email"], reward={"kind": "free_item", "item": "latte"})

    (email,) = mail.outbox
    assert email.subject == "We miss you, Wei!" and email.to == ["wei@example.com"]
    assert email.from_email.startswith("Kopi Corner <")
    assert "Come back to Kopi." in email.body and "a free latte" in email.body
    html, mime = email.alternatives[0]
    assert mime == "text/html" and "Open your offer" in html
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["List-Unsubscribe"].startswith("<https://winback.example/u/")
    assert deliveries(shop)[0].status == "sent"


def test_the_one_click_post_unsubscribes_and_a_get_changes_nothing(shop, email_on, client):
    member = lapsed(shop)
    send_night(shop, ["email"])
    path = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>").removeprefix("https://winback.example")

    page = client.get(path)
    with scope(business=shop.pk):
        assert Member.objects.get(pk=member.pk).consent_email is True
    assert b"Unsubscribe from Kopi?" in page.content
    client.post(path, {"List-Unsubscribe": "One-Click"})

    with scope(business=shop.pk):
        m = Member.objects.get(pk=member.pk)
        assert m.consent_email is False
        assert m.consent_events.get(channel="email", granted=False).source == "unsubscribe"
    assert client.get("/u/forged-token/").status_code == 404


def test_without_credentials_every_channel_records(shop, settings):
    from notifications.channels import backend_for
    from notifications.channels.recording import RecordingBackend

    settings.TWILIO_ACCOUNT_SID = settings.VAPID_PRIVATE_KEY = ""
    settings.EMAIL_CHANNEL_ENABLED = False

    assert all(
        isinstance(backend_for(c, business=shop), RecordingBackend) for c in ("sms", "whatsapp", "push", "email")
    )


def test_the_owner_sends_a_test_message_through_the_real_channel(shop, twilio, client):
    from tests.conftest import client_for, user_make

    owner = client_for(user_make("owner", shop))

    response = owner.post("/settings/", {"form": "test", "channel": "sms", "to": "012-345 6789"}, follow=True)

    assert "Test sms message sent to +60123456789." in response.content.decode()
    assert twilio.requests[0]["form"]["To"] == "+60123456789"
    assert twilio.requests[0]["form"]["Body"].startswith("Test message from")


def test_a_test_on_a_channel_not_set_up_is_refused(shop, client):
    from tests.conftest import client_for, user_make

    shop.channel_settings = {"email": {"enabled": True}}
    shop.save()
    owner = client_for(user_make("owner", shop))

    response = owner.post("/settings/", {"form": "test", "channel": "sms", "to": "+60123456789"}, follow=True)

    assert "sms is not switched on yet." in response.content.decode()
    page = owner.get("/settings/").content.decode()
    assert "SMS — not set up" in page


def test_without_credentials_the_owner_sees_recorded_messages_in_the_admin(shop, settings):
    from tests.conftest import client_for, user_make

    settings.TWILIO_ACCOUNT_SID = ""
    lapsed(shop)
    send_night(shop, ["sms"])
    owner = client_for(user_make("owner", shop))

    page = owner.get("/admin/notifications/recordedmessage/").content.decode()

    assert "+60123456789" in page and "We miss you, Wei!" in page
