"""One message renderer (issue 14): every surface renders a send's text the same way, and the
text is fixed at the night — an edit of the campaign takes effect from the next night (SPEC §4)."""

import html
import re
from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client
from django_scopes import scope, scopes_disabled

from campaigns import messages
from campaigns.models import CampaignMessage, CampaignSend
from members.models import Role
from notifications.dispatcher import open_url
from notifications.models import RecordedMessage
from tests.api.conftest import member_client_for
from tests.campaigns.helpers import at_local, deliveries, night, sends
from tests.conftest import business_make, campaign_make, client_for, member_make, user_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)  # a Friday
TITLE = "Hi {first_name}, it has been {days_away} days"
BODY = "Come back to {business} for {reward}."
KOPI = {"kind": "free_item", "item": "kopi", "expiry_days": 30}


@pytest.fixture
def shop(db):
    return business_make(name="Kopi Corner", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed(business, *, days: int, first_name="Wei", email="wei@example.com"):
    member = member_make(business, first_name=first_name, phone="+60123456789", email=email,
                         consents={"sms": True, "email": True})  # fmt: skip
    with time_machine.travel(at_local(business, D - timedelta(days=days), 12, 30), tick=False):
        visit_make(member, at=at_local(business, D - timedelta(days=days), 12))
    return member


def recorded(business, **filters) -> list[tuple[str, str]]:
    with scopes_disabled():
        return list(RecordedMessage.objects.filter(business=business, **filters).order_by("id")
                    .values_list("title", "body"))  # fmt: skip


def inbox(member) -> list[tuple[str, str]]:
    items = member_client_for(member).get("/api/v1/member/inbox/").json()["results"]
    return [(item["title"], item["body"]) for item in items]


def open_page(business, send) -> tuple[str, str]:
    with scope(business=business.pk):
        (delivery,) = [d for d in deliveries(business) if d.send_id == send.pk]
    page = Client().get("/" + open_url(delivery.pk).split("://", 1)[1].split("/", 1)[1]).content.decode()
    title = re.search(r'<h1 id="message-title">(.*?)</h1>', page, re.S).group(1)
    body = re.search(r'<p id="message-body">(.*?)</p>', page, re.S).group(1)
    return html.unescape(title.strip()), html.unescape(body.strip())


def preview(client, campaign) -> tuple[str, str]:
    page = client.post(f"/campaigns/{campaign.pk}/preview/", {"channels": ["whatsapp"]}).content.decode()
    title, body = re.search(r'<div class="pv-bubble wa"><strong>(.*?)</strong><br>(.*?)<br>', page, re.S).groups()
    return html.unescape(title), html.unescape(body)


def test_every_surface_renders_one_send_the_same_even_after_the_member_returned(shop):
    # given Wei, away 30 days, the owner's own card (same email), and a campaign using every placeholder
    wei = lapsed(shop, days=30)
    owner = user_make(Role.OWNER, shop, "wei@example.com")
    campaign = campaign_make(shop, channels=["sms"], title=TITLE, body=BODY, reward=KOPI)
    expected = ("Hi Wei, it has been 30 days", "Come back to Kopi Corner for a free kopi.")

    # when the owner previews and tests it the evening before the night of D
    with time_machine.travel(at_local(shop, D - timedelta(days=1), 18), tick=False):
        previewed = preview(client_for(owner), campaign)
        client_for(owner).post(f"/campaigns/{campaign.pk}/test-send/")
    ((test_title, test_body),) = recorded(shop, channel="sms")
    # and the night of D sends it at 09:00, and Wei comes back at noon
    night(shop, D)
    run_dispatch(at_local(shop, D, 9))
    (dispatched,) = recorded(shop, channel="sms")[1:]
    with time_machine.travel(at_local(shop, D, 12, 30), tick=False):
        visit_make(wei, at=at_local(shop, D, 12))
    (send,) = sends(shop)

    # then the preview, the test, the message sent, the inbox and the open page all read the same
    with time_machine.travel(at_local(shop, D, 13), tick=False):
        assert previewed == expected
        assert (test_title.removeprefix("[Test] "), test_body) == expected
        assert dispatched == expected
        assert inbox(wei) == [expected]
        assert open_page(shop, send) == expected  # not "0 days": the night's days away


def test_a_message_that_spills_to_the_next_day_still_counts_the_nights_days_away(shop):
    # given two members away 30 days and a cap of one SMS a day
    members = [lapsed(shop, days=30, first_name=name, email=f"{name}@example.com") for name in ("Ana", "Ben")]
    campaign_make(shop, channels=["sms"], title=TITLE, body=BODY,
                  pacing={"sms": {"interval_seconds": 0, "daily_cap": 1}})  # fmt: skip

    # when the night of D schedules them and the second goes out a day later
    night(shop, D)
    run_dispatch(at_local(shop, D, 9))
    run_dispatch(at_local(shop, D + timedelta(days=1), 9))

    # then both say 30 days, by email-free SMS and in the inbox alike
    assert [title for title, _ in recorded(shop)] == ["Hi Ana, it has been 30 days", "Hi Ben, it has been 30 days"]
    with time_machine.travel(at_local(shop, D + timedelta(days=1), 10), tick=False):
        assert [inbox(m)[0][0] for m in members] == ["Hi Ana, it has been 30 days", "Hi Ben, it has been 30 days"]


def test_an_edit_after_the_night_leaves_its_deliveries_alone_and_the_next_night_uses_it(shop):
    # given the night of D has written Wei's send
    wei = lapsed(shop, days=30)
    campaign = campaign_make(shop, channels=["sms"], title=TITLE, body="Old words from {business}.", reward=KOPI)
    night(shop, D)

    # when the owner edits the message before it goes out at 09:00
    with scope(business=shop.pk):
        campaign.title, campaign.body = "New title", "New words for {first_name}."
        campaign.save()
    run_dispatch(at_local(shop, D, 9))

    # then that night's delivery, inbox and open page keep the night's text
    old = ("Hi Wei, it has been 30 days", "Old words from Kopi Corner.")
    assert recorded(shop) == [old]
    (send,) = sends(shop)
    with time_machine.travel(at_local(shop, D, 13), tick=False):
        assert inbox(wei) == [old]
        assert open_page(shop, send) == old

    # and the next night's sends get the new text
    ana = lapsed(shop, days=13, first_name="Ana", email="ana@example.com")
    night(shop, D + timedelta(days=1))
    run_dispatch(at_local(shop, D + timedelta(days=1), 9))
    assert recorded(shop)[1:] == [("New title", "New words for Ana.")]
    with time_machine.travel(at_local(shop, D + timedelta(days=1), 13), tick=False):
        assert inbox(ana) == [("New title", "New words for Ana.")]
        assert inbox(wei) == [old]


def test_a_night_reuses_the_snapshot_while_the_content_is_unchanged(shop):
    campaign = campaign_make(shop, channels=["sms"], title=TITLE, body=BODY, inactivity_days=7, max_sends=3)
    lapsed(shop, days=30)
    lapsed(shop, days=12, first_name="Ana", email="ana@example.com")

    night(shop, D)
    night(shop, D + timedelta(days=1))  # nothing changed: the same snapshot
    with scope(business=shop.pk):
        campaign.refresh_from_db()
        campaign.escalation = [{"title": "", "body": "Second words", "reward": None}]
        campaign.save()
    lapsed(shop, days=5, first_name="Ben", email="ben@example.com")
    night(shop, D + timedelta(days=2))

    with scopes_disabled():
        snapshots = list(CampaignMessage.objects.filter(campaign=campaign).order_by("pk"))
        by_night = {s.local_date: s.message_id for s in CampaignSend.objects.filter(campaign=campaign)}
    assert len(snapshots) == 2
    assert by_night == {D: snapshots[0].pk, D + timedelta(days=2): snapshots[1].pk}
    assert snapshots[1].steps[1] == {"title": TITLE, "body": "Second words", "reward": ""}


def test_a_send_without_a_snapshot_reads_the_campaigns_current_text(shop):
    """Sends written before snapshots existed have none: they fall back to the campaign as it is."""
    wei = lapsed(shop, days=30)
    campaign = campaign_make(shop, channels=["sms"], title=TITLE, body=BODY, reward=KOPI)
    night(shop, D)
    run_dispatch(at_local(shop, D, 9))
    with scope(business=shop.pk):
        CampaignSend.objects.update(message=None)
        campaign.body = "Now {reward}."
        campaign.save()

    with time_machine.travel(at_local(shop, D, 13), tick=False):
        assert inbox(wei) == [("Hi Wei, it has been 30 days", "Now a free kopi.")]


def test_days_away_counts_local_dates_from_the_last_purchase_before_the_send(shop):
    tz = shop.tzinfo
    late_evening = at_local(shop, D - timedelta(days=3), 23, 30)  # 15:30 UTC: still D - 3 in KL

    assert messages.days_away(purchase_before=late_evening, local_date=D, tz=tz) == 3
    assert messages.days_away(purchase_before=None, local_date=D, tz=tz) is None


def test_the_placeholders_are_filled_and_other_braces_left_as_written():
    texts = messages.Texts(title="{first_name} {unknown}", body="{business} {reward} {days_away}", reward="a gift")

    rendered = messages.message_render(texts, first_name="", business="Kopi", days_away=None)

    assert (rendered.title, rendered.body, rendered.reward) == ("there {unknown}", "Kopi a gift ", "a gift")
