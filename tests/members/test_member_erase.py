"""GDPR erasure: the member's personal data goes from everything we kept about their messages."""

from datetime import date, timedelta

import time_machine
from django_scopes import scope

from members import apiauth
from notifications import erasure
from notifications.channels import PermanentSendError
from notifications.channels.recording import RecordingBackend
from notifications.models import Delivery, DeliveryEvent, RecordedMessage
from tests.campaigns.helpers import at_local, night
from tests.conftest import business_make, campaign_make, member_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)


class RefusesOneNumber(RecordingBackend):
    """Records every message but one, which the provider refuses quoting the number."""

    def __init__(self, channel, refused):
        super().__init__(channel)
        self.refused = refused

    def send(self, message):
        if message.to == self.refused:
            raise PermanentSendError(f"Twilio 21211: The 'To' number {message.to} is not a valid phone number.")
        return super().send(message)


def lapsed(business, **fields):
    member = member_make(business, consents={"sms": True, "email": True}, **fields)
    with time_machine.travel(at_local(business, D, 0, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=30), 12))
    return member


def texts(business):
    with scope(business=business.pk):
        rows = [(r.to, r.title, r.body, str(r.payload)) for r in RecordedMessage.objects.all()]
        rows += [(d.last_error,) for d in Delivery.objects.all()]
        rows += [(e.detail,) for e in DeliveryEvent.objects.all()]
    return " | ".join(" ".join(row) for row in rows)


def test_erasure_scrubs_the_members_phone_email_and_name_from_messages_and_deliveries(
    db, django_capture_on_commit_callbacks
):
    business = business_make(name="Kopi", frequency_cap_days=0,
                             channel_settings={"sms": {"enabled": True}, "email": {"enabled": True}})  # fmt: skip
    wei = lapsed(business, first_name="Weiqiang", last_name="Lindqvist", phone="+60123456789", email="wei@example.com")
    ana = lapsed(business, first_name="Anastasia", last_name="Tan", phone="+60198765432", email="ana@example.com")
    campaign_make(business, channels=["sms"], title="We miss you, {first_name}!")
    campaign_make(business, channels=["email"], title="Still there, {first_name}?", inactivity_days=20)
    night(business, D)
    sms = RefusesOneNumber("sms", refused=wei.phone)
    run_dispatch(
        at_local(business, D, 9), backends=lambda ch, business=None: sms if ch == "sms" else RecordingBackend(ch)
    )
    with scope(business=business.pk), django_capture_on_commit_callbacks(execute=True):  # codes go after commit
        for who in (wei, ana):
            apiauth.code_request(business=business, email=who.email, client_ip="127.0.0.1")
    before = texts(business)
    assert all(v in before for v in ("+60123456789", "wei@example.com", "Weiqiang", "Anastasia", "ana@example.com"))

    with scope(business=business.pk):
        erasure.member_erase(member=wei)

    after = texts(business)
    assert not any(v in after for v in ("+60123456789", "wei@example.com", "Weiqiang", "Lindqvist"))
    assert all(v in after for v in ("+60198765432", "ana@example.com", "Anastasia"))
    with scope(business=business.pk):
        kept = RecordedMessage.objects.filter(to="")
        assert kept.count() == 2  # the counts stay: wei's email and sign-in code, their text gone
        assert sorted(kept.values_list("channel", flat=True)) == ["email", "email"]
        (failed,) = Delivery.objects.filter(member=wei, channel="sms")
    assert failed.status == "failed"
    assert failed.last_error == "Twilio 21211: The 'To' number [erased] is not a valid phone number."
