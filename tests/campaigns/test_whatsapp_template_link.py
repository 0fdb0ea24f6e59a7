"""A campaign's WhatsApp template: one of its own business's, approved when the campaign goes out
on WhatsApp, and a plain warning on its card and page once WhatsApp pauses, rejects or disables it."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope

from campaigns import services
from campaigns.models import Campaign
from notifications.models import WhatsAppTemplate
from notifications.services import whatsapp_templates_sync
from tests.conftest import TWILIO_ACCOUNT, campaign_make
from tests.fakes import content_template

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
OFFER = "HX" + "1" * 32


def template_make(business, *, status="approved", name="winback_offer", sid=OFFER) -> WhatsAppTemplate:
    with scope(business=business.pk):
        return WhatsAppTemplate.objects.create(business=business, content_sid=sid, name=name, language="en",
                                               body="Hi {{1}}", status=status, last_synced_at=T0)  # fmt: skip


def template_set(campaign_or_template, status):
    """What a later sync would write: WhatsApp's new verdict on the template."""
    pk = getattr(campaign_or_template, "whatsapp_template_id", None) or campaign_or_template.pk
    with scope(business=campaign_or_template.business_id):
        WhatsAppTemplate.objects.filter(pk=pk).update(status=status)


def text(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def activate(campaign):
    with scope(business=campaign.business_id):
        return services.campaign_activate(campaign=campaign)


def draft(business, **fields):
    return campaign_make(business, status="draft", **fields)


def test_a_campaign_cannot_use_another_businesss_template_even_as_a_draft(business, other_business):
    theirs = template_make(other_business)

    with scope(business=business.pk), pytest.raises(ValidationError) as refused:
        services.campaign_save(business=business, data={"name": "Win-back", "whatsapp_template": theirs})

    assert refused.value.message_dict == {"whatsapp_template": ["Choose one of this business's WhatsApp templates."]}


@pytest.mark.parametrize("status", ["pending", "paused", "rejected", "disabled"])
def test_a_whatsapp_campaign_with_a_template_that_is_not_approved_is_not_activated(business, status):
    template = template_make(business, status=status)
    campaign = draft(business, channels=["whatsapp", "sms"], whatsapp_template=template)

    with pytest.raises(ValidationError) as refused:
        activate(campaign)

    label = {"pending": "pending approval"}.get(status, status)
    assert refused.value.message_dict == {"whatsapp_template": [
        f"WhatsApp template 'winback_offer' is {label}, not approved by WhatsApp: choose an approved template or "
        "remove WhatsApp from the channels."
    ]}  # fmt: skip
    with scope(business=business.pk):
        assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_draft_may_keep_a_paused_template_and_activates_once_it_is_approved_again(business):
    template = template_make(business, status="paused")
    campaign = draft(business, channels=["whatsapp"], whatsapp_template=template)
    template_set(template, "approved")

    assert activate(campaign).status == "active"


def test_a_template_that_is_not_approved_does_not_block_a_campaign_without_whatsapp(business):
    campaign = draft(business, channels=["sms"], whatsapp_template=template_make(business, status="rejected"))

    assert activate(campaign).status == "active"


def test_a_duplicate_keeps_the_template(business, owner):
    campaign = draft(business, channels=["whatsapp"], whatsapp_template=template_make(business))

    with scope(business=business.pk):
        copy = services.campaign_duplicate(campaign=campaign, user=owner)

    assert copy.whatsapp_template_id == campaign.whatsapp_template_id


WARNING = "WhatsApp template 'winback_offer' is paused by WhatsApp: WhatsApp messages will go on the next channel."


def test_a_paused_template_shows_on_the_campaigns_card_and_page(business, owner_client):
    campaign = campaign_make(business, channels=["whatsapp", "sms"], whatsapp_template=template_make(business))
    template_set(campaign, "paused")

    card = text(owner_client, "/campaigns/")
    page = text(owner_client, f"/campaigns/{campaign.pk}/")

    assert WARNING in card and WARNING in page
    assert 'class="msg msg-warning' in page


@pytest.mark.parametrize(
    ("status", "channels", "sentence"),
    [("rejected", ["sms", "whatsapp", "email"],
      "WhatsApp template 'winback_offer' is rejected by WhatsApp: WhatsApp messages will go on the next channel."),
     ("disabled", ["whatsapp", "push"], "WhatsApp template 'winback_offer' is disabled (by WhatsApp, or no longer in "
      "your Twilio account): WhatsApp messages will go on the next channel."),
     ("paused", ["sms", "whatsapp"],
      "WhatsApp template 'winback_offer' is paused by WhatsApp: WhatsApp messages will not go out until it is "
      "approved again.")],
)  # fmt: skip
def test_the_warning_says_what_whatsapp_did_and_where_the_messages_go(business, owner_client, status, channels,
                                                                     sentence):  # fmt: skip
    campaign = campaign_make(business, channels=channels, whatsapp_template=template_make(business))
    template_set(campaign, status)

    assert sentence in text(owner_client, f"/campaigns/{campaign.pk}/")


@pytest.mark.parametrize("case", ["approved", "no whatsapp channel", "no template"])
def test_no_warning_while_the_template_can_carry_the_messages(business, owner_client, case):
    template = template_make(business, status="approved" if case == "approved" else "paused")
    campaign = campaign_make(business, channels=["sms"] if case == "no whatsapp channel" else ["whatsapp", "sms"],
                             whatsapp_template=None if case == "no template" else template)  # fmt: skip

    for url in ("/campaigns/", f"/campaigns/{campaign.pk}/"):
        assert "whatsapp-warning" not in text(owner_client, url)


def test_the_campaign_list_reads_the_templates_with_the_campaigns(business, owner_client):
    def list_queries():
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get("/campaigns/").status_code == 200
        return len(captured)

    campaign_make(business, channels=["whatsapp"], whatsapp_template=template_make(business))
    one = list_queries()
    for n in range(2, 5):
        campaign_make(business, channels=["whatsapp"],
                      whatsapp_template=template_make(business, sid=f"HX{n:032x}", name=f"t{n}"))  # fmt: skip

    assert list_queries() == one


def test_a_template_paused_by_whatsapp_shows_on_the_card_after_the_next_sync(business, owner_client, content_api):
    content_api.accounts[TWILIO_ACCOUNT] = [content_template(OFFER, "winback_offer")]
    with scope(business=business.pk):
        whatsapp_templates_sync(business=business, now=T0)
        template = WhatsAppTemplate.objects.get()
    campaign_make(business, channels=["whatsapp", "sms"], whatsapp_template=template)
    assert WARNING not in text(owner_client, "/campaigns/")

    content_api.accounts[TWILIO_ACCOUNT] = [content_template(OFFER, "winback_offer", status="paused")]
    with scope(business=business.pk):
        whatsapp_templates_sync(business=business, now=T0 + timedelta(minutes=15))

    assert WARNING in text(owner_client, "/campaigns/")
