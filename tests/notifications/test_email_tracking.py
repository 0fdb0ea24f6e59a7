"""Email through an ESP (django-anymail) and its tracking webhook: Postmark's bounce, spam
complaint and delivery webhooks, posted as Postmark posts them, behind HTTP basic auth."""

import base64
import json
from datetime import timedelta

import pytest
import requests
import time_machine
from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django_scopes import scope, scopes_disabled

from members.models import ConsentEvent, Member
from members.services import member_consent_set
from notifications.channels import Message, PermanentSendError, TransientSendError
from notifications.channels.email import EmailBackend
from notifications.models import Delivery, DeliveryEvent
from tests.campaigns.helpers import at_local, deliveries
from tests.conftest import member_make
from tests.notifications.test_channels import D, lapsed, send_night

WEBHOOK = "/webhooks/email/postmark/tracking/"
SECRET = "postmark:wh-5ecret-0123456789"


@pytest.fixture
def postmark(settings):
    """Campaign email through anymail (its test backend stands in for Postmark's API) and
    Postmark's tracking webhook behind basic auth."""
    settings.EMAIL_CHANNEL_ENABLED = True
    settings.SITE_URL = "https://winback.example"
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def basic_auth(secret=SECRET) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def post(client, payload, *, secret=SECRET, path=WEBHOOK):
    headers = basic_auth(secret) if secret else {}
    return client.post(path, json.dumps(payload), content_type="application/json", headers=headers)


def bounce(delivery, **fields):
    """Postmark's bounce webhook (RecordType Bounce), as its documentation shows it."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": delivery.provider_id,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "wei@example.com",
        "From": "no-reply@winback.example",
        "BouncedAt": "2026-03-20T01:05:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "We miss you, Wei!",
        **fields,
    }


def complaint(delivery, **fields):
    """Postmark's spam complaint webhook (RecordType SpamComplaint)."""
    return bounce(
        delivery,
        RecordType="SpamComplaint",
        ID=42,
        Type="SpamComplaint",
        TypeCode=512,
        Name="Spam complaint",
        Description="",
        Details="Test spam complaint details",
        CanActivate=False,
        **fields,
    )


def delivered(delivery):
    """Postmark's delivery webhook (RecordType Delivery)."""
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": delivery.provider_id,
        "Recipient": "wei@example.com",
        "Tag": "",
        "DeliveredAt": "2026-03-20T01:00:54.9070259Z",
        "Details": "smtp;250 2.0.0 OK",
        "Metadata": {},
    }


def emailed(shop):
    """A lapsed member, and the email the night of D sent them at 09:00 through the ESP."""
    with time_machine.travel(at_local(shop, D - timedelta(days=60), 12), tick=False):
        member = lapsed(shop)
    send_night(shop, ["email"])
    (d,) = deliveries(shop)
    return member, d


def consent_email(member):
    with scopes_disabled():
        return Member.objects.get(pk=member.pk).consent_email


def test_an_email_through_the_esp_keeps_the_esps_message_id_as_its_provider_id(shop, postmark):
    _, d = emailed(shop)

    (email,) = mail.outbox
    assert d.status == "sent"
    assert d.provider_id == str(email.anymail_status.message_id)
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_hard_bounce_fails_the_delivery_and_leaves_consent_alone(shop, postmark, client):
    member, d = emailed(shop)

    response = post(client, bounce(d))

    assert response.status_code == 200
    with scope(business=shop.pk):
        d = Delivery.objects.get(pk=d.pk)
        assert (d.status, d.last_error) == (
            "failed",
            "Postmark bounced: The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        )
        assert list(DeliveryEvent.objects.filter(delivery=d).values_list("status", flat=True).order_by("id"))[-1] == (
            "failed"
        )
    assert consent_email(member) is True


def test_a_spam_complaint_withdraws_email_consent_of_that_member_in_that_business_only(
    shop, other_business, postmark, client
):
    member, d = emailed(shop)
    elsewhere = member_make(other_business, first_name="Wei", email="wei@example.com", consents={"email": True})

    response = post(client, complaint(d))
    again = post(client, complaint(d))  # Postmark's retry, or a replay

    assert (response.status_code, again.status_code) == (200, 200)
    assert consent_email(member) is False
    assert consent_email(elsewhere) is True
    with scopes_disabled():
        withdrawn = ConsentEvent.objects.filter(member_id=member.pk, channel="email", granted=False)
        assert list(withdrawn.values_list("source", "note")) == [
            ("provider", "Postmark complained: Test spam complaint details")
        ]
    with scope(business=shop.pk):
        assert Delivery.objects.get(pk=d.pk).status == "sent"  # the message did arrive


def test_a_complaint_older_than_the_members_new_consent_changes_nothing(shop, postmark, client):
    member, d = emailed(shop)
    with scope(business=shop.pk):  # unsubscribed by the link, then subscribed again in the app
        member_consent_set(member=member, channel="email", granted=False, source="unsubscribe",
                           at=at_local(shop, D, 9, 40))  # fmt: skip
        member_consent_set(member=member, channel="email", granted=True, source="member_app",
                           at=at_local(shop, D, 10))  # fmt: skip

    post(client, complaint(d, BouncedAt=at_local(shop, D, 9, 30).isoformat()))

    assert consent_email(member) is True


def test_a_delivery_report_moves_the_delivery_on_and_a_later_bounce_does_not_undo_it(shop, postmark, client):
    _, d = emailed(shop)

    post(client, delivered(d))
    post(client, bounce(d))

    with scope(business=shop.pk):
        assert Delivery.objects.get(pk=d.pk).status == "delivered"


def test_without_the_webhook_secret_nothing_is_applied(shop, postmark, client, settings):
    member, d = emailed(shop)

    wrong = post(client, complaint(d), secret="postmark:guess")
    anonymous = post(client, complaint(d), secret=None)
    other_esp = post(client, complaint(d), path="/webhooks/email/mailgun/tracking/")
    settings.ANYMAIL = {}
    unconfigured = post(client, complaint(d), secret=None)

    assert (wrong.status_code, anonymous.status_code) == (400, 400)
    assert (other_esp.status_code, unconfigured.status_code) == (404, 404)
    assert consent_email(member) is True


def test_a_complaint_about_a_message_that_is_no_delivery_of_ours_changes_nothing(shop, postmark, client):
    member, d = emailed(shop)

    response = post(client, complaint(d, MessageID="b7bc2f4a-e38e-4336-af7d-e6c392c2f817"))

    assert response.status_code == 200
    assert consent_email(member) is True


class RefusingESP(BaseEmailBackend):
    """What anymail's Postmark backend raises for an answer of ``status`` (the network edge)."""

    status = 422

    def send_messages(self, email_messages):
        if self.status is None:
            raise AnymailRecipientsRefused()
        response = requests.Response()
        response.status_code, response.reason = self.status, "Unprocessable Entity"
        response._content = b'{"ErrorCode": 406, "Message": "You tried to send to recipient(s) marked inactive."}'
        raise AnymailRequestsAPIError("Sending a message to wei@example.com", response=response, esp_name="Postmark")


class UnavailableESP(RefusingESP):
    status = 503


class ThrottlingESP(RefusingESP):
    status = 429


class RefusedRecipientESP(RefusingESP):
    status = None


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        ("RefusingESP", PermanentSendError),
        ("RefusedRecipientESP", PermanentSendError),
        ("UnavailableESP", TransientSendError),
        ("ThrottlingESP", TransientSendError),
    ],
)
def test_the_esps_refusals_are_permanent_and_its_outages_transient(shop, postmark, settings, backend, error):
    settings.EMAIL_BACKEND = f"tests.notifications.test_email_tracking.{backend}"
    message = Message(delivery_id=1, business_id=shop.pk, member_id=1, channel="email", to="wei@example.com",
                      title="We miss you", body="Come back.")  # fmt: skip

    with pytest.raises(error):
        EmailBackend(business=shop).send(message)
