"""Every carrier opt-out word, the opt-in and help words, and what is not a keyword: Twilio's rule
(a message that is the keyword alone, in any case) plus an opt-out that opens a longer message
("Stop. Thank you"). An inbound message only ever changes the members of the business whose sender
received it."""

import uuid

import pytest
from django_scopes import scope

from members.models import Member
from notifications.webhooks import inbound_keyword
from tests.conftest import business_make, member_make
from tests.notifications.test_channels import _signed_post

INBOUND = "/webhooks/twilio/inbound/"
SHOP_SENDER, SALON_SENDER = "+15005550006", "+15005550099"
PHONE = "+60123456789"


@pytest.mark.parametrize("word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"])
def test_every_carrier_opt_out_word_opts_out_in_any_case(word):
    assert inbound_keyword(word) == "stop"
    assert inbound_keyword(word.lower()) == "stop"
    assert inbound_keyword(word.capitalize()) == "stop"


@pytest.mark.parametrize(
    "body",
    ["Stop. Thank you", "stop!", " StOp ", "STOP.", "Stop, thanks", "stop\nplease no more", "Stop all",
     "opt-out", "Opt out", "...STOP...", "UNSUBSCRIBE!!!", "  end  ", "Quit. Bye"],
)  # fmt: skip
def test_an_opt_out_word_alone_or_opening_the_message_opts_out(body):
    assert inbound_keyword(body) == "stop"


@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES", "SUBSCRIBE", "OPTIN", "start!", " Yes. ", "Opt-in"])
def test_the_opt_in_words_opt_back_in(word):
    assert inbound_keyword(word) == "start"


@pytest.mark.parametrize("word", ["HELP", "info", "Help?"])
def test_the_help_words_ask_for_help(word):
    assert inbound_keyword(word) == "help"


@pytest.mark.parametrize(
    "body",
    ["don't stop sending", "Please stop", "STOP PLEASE", "see you at the end", "I will cancel", "Yes please call me",
     "Start sending me offers again tomorrow", "stopping by later", "", "   ", "Thanks!", "endless coffee"],
)  # fmt: skip
def test_a_message_that_only_mentions_a_keyword_is_not_one(body):
    assert inbound_keyword(body) is None


# --- through the webhook ---------------------------------------------------------------------------


@pytest.fixture
def shops(db):
    """Two businesses on their own senders, each with a member who has the same phone."""
    shop = business_make(name="Kopi", channel_settings={"sms": {"enabled": True, "sender": SHOP_SENDER}})
    salon = business_make(name="Salon", channel_settings={"sms": {"enabled": True, "sender": SALON_SENDER}})
    consents = {"sms": True}
    return member_make(shop, phone=PHONE, consents=consents), member_make(salon, phone=PHONE, consents=consents)


def inbound(client, body, to=SHOP_SENDER):
    data = {"MessageSid": "SM" + uuid.uuid4().hex, "From": PHONE, "To": to, "Body": body}
    return _signed_post(client, INBOUND, data)


def consent_sms(member) -> bool:
    with scope(business=member.business_id):
        return Member.objects.get(pk=member.pk).consent_sms


@pytest.mark.parametrize("body", ["Stop. Thank you", "stop!", " StOp ", "REVOKE", "OptOut", "Stop\nno more please"])
def test_an_opt_out_to_one_sender_unsubscribes_only_that_businesss_member(twilio, client, shops, body):
    kopi_member, salon_member = shops

    response = inbound(client, body)

    assert b"Kopi: you are unsubscribed" in response.content
    assert (consent_sms(kopi_member), consent_sms(salon_member)) == (False, True)


def test_a_message_that_mentions_stop_in_the_middle_changes_no_consent_and_answers_nothing(twilio, client, shops):
    kopi_member, salon_member = shops

    response = inbound(client, "don't stop sending")

    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert (consent_sms(kopi_member), consent_sms(salon_member)) == (True, True)


def test_an_opt_in_word_resubscribes_only_the_member_of_the_sender_that_received_it(twilio, client, shops):
    kopi_member, salon_member = shops
    inbound(client, "STOP", to=SHOP_SENDER)
    inbound(client, "STOP", to=SALON_SENDER)

    response = inbound(client, "Unstop", to=SALON_SENDER)

    assert b"Salon: you are subscribed again" in response.content
    assert (consent_sms(kopi_member), consent_sms(salon_member)) == (False, True)
