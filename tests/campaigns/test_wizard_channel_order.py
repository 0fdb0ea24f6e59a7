"""The message step's channel order and mode (issue 15), through Django's test client: the order
fields work without JavaScript; the mode defaults to the first channel that reaches them."""

import pytest

from campaigns.models import ChannelMode
from tests.campaigns.test_wizard_views import MESSAGE, get, start, step_url


@pytest.fixture
def business(business):
    business.channel_settings = {ch: {"enabled": True} for ch in ("push", "sms", "whatsapp", "email")}
    business.frequency_cap_days = 0
    business.save()
    return business


def test_the_channels_are_saved_in_the_order_of_their_positions(owner_client, business):
    campaign = start(owner_client)
    data = {**MESSAGE, "channels": ["sms", "email", "whatsapp"], "order_email": 1, "order_whatsapp": 2,
            "order_sms": 3, "order_push": 4, "channel_mode": "first_reachable"}  # fmt: skip

    response = owner_client.post(step_url(campaign, "message"), data)

    assert response.status_code == 302
    saved = get(campaign)
    assert (saved.channels, saved.channel_mode) == (["email", "whatsapp", "sms"], ChannelMode.FIRST_REACHABLE)


def test_without_positions_the_order_is_as_listed_and_the_mode_is_first_reachable(owner_client, business):
    campaign = start(owner_client)

    owner_client.post(step_url(campaign, "message"), {**MESSAGE, "channels": ["email", "sms"]})

    saved = get(campaign)
    assert (saved.channels, saved.channel_mode) == (["sms", "email"], ChannelMode.FIRST_REACHABLE)


def test_every_chosen_channel_can_be_chosen(owner_client, business):
    campaign = start(owner_client)

    owner_client.post(step_url(campaign, "message"), {**MESSAGE, "channel_mode": "every"})

    assert get(campaign).channel_mode == ChannelMode.EVERY


def test_the_step_lists_the_saved_order_first_with_positions_and_the_mode(owner_client, business):
    campaign = start(owner_client)
    owner_client.post(step_url(campaign, "message"), {**MESSAGE, "channels": ["whatsapp", "email"],
                                                      "order_whatsapp": 1, "order_email": 2})  # fmt: skip

    page = owner_client.get(step_url(campaign, "message")).content.decode()

    order = [page.index(f'name="order_{ch}"') for ch in ("whatsapp", "email", "push", "sms")]
    assert order == sorted(order)
    assert 'name="order_whatsapp" value="1"' in page and 'name="order_sms" value="4"' in page
    assert "First channel that reaches them (recommended)" in page
    assert 'value="first_reachable" id="channel-mode-first" checked' in page
    assert 'aria-label="Move WhatsApp up"' in page


def test_a_position_out_of_range_is_an_error_beside_the_channel(owner_client, business):
    campaign = start(owner_client)

    response = owner_client.post(step_url(campaign, "message"), {**MESSAGE, "order_sms": 9})

    assert response.status_code == 422
    assert "order_sms" in response.context["form"].errors
    assert "less than or equal to 4" in response.content.decode()


def test_the_review_shows_the_order_and_the_mode(owner_client, business):
    campaign = start(owner_client)
    owner_client.post(step_url(campaign, "message"), {**MESSAGE, "channels": ["email", "sms"], "order_email": 1})

    page = owner_client.get(step_url(campaign, "review")).content.decode()

    assert "Email → SMS" in page
    assert "the first channel that reaches them" in page
