"""The campaign's nightly runs: what each night scheduled, and beside it what actually went out."""

from datetime import date, timedelta

import pytest
import time_machine
from django_scopes import scope

from campaigns import selectors
from campaigns.models import Campaign, CampaignSend
from notifications.channels import PermanentSendError
from notifications.channels.recording import RecordingBackend
from notifications.services import send_mark_opened
from tests.api.conftest import user_client_for
from tests.campaigns.helpers import at_local, night
from tests.conftest import business_make, client_for, member_make, user_make, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 17)  # a Tuesday


@pytest.fixture
def business(db):
    return business_make(name="Kopi", slug="kopi", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0)


def lapsed(business, n, *, on: date):
    """``n`` members whose last purchase was 30 days before ``on``, reachable by SMS."""
    out = []
    for _ in range(n):
        m = member_make(business, phone="+60123456789", consents={"sms": True})
        with time_machine.travel(at_local(business, on, 0, 30), tick=False):
            visit_make(m, at=at_local(business, on - timedelta(days=30), 12))
        out.append(m)
    return out


class RefusingBackend(RecordingBackend):
    """The recording backend, but the provider refuses one member's number."""

    def __init__(self, channel, refused):
        super().__init__(channel)
        self.refused = refused

    def send(self, message):
        if message.member_id == self.refused:
            raise PermanentSendError("invalid number", code="21211")
        return super().send(message)


def three_nights(business) -> Campaign:
    """Night D: 4 messages, dispatched (3 sent, one opened; 1 refused). Night D+1: 2 messages,
    not due yet. Night D+2: nobody new."""
    campaign = campaign_make_sms(business)
    first = lapsed(business, 4, on=D)
    night(business, D)
    with time_machine.travel(at_local(business, D, 9, 5), tick=False):
        run_dispatch(at_local(business, D, 9, 5), backends=lambda ch, business=None: RefusingBackend(ch, first[3].pk))
        with scope(business=business.pk):
            send = CampaignSend.objects.get(member=first[0])
            send_mark_opened(send=send, at=at_local(business, D, 10))
    lapsed(business, 2, on=D + timedelta(days=1))
    night(business, D + timedelta(days=1))
    night(business, D + timedelta(days=2))
    return campaign


def campaign_make_sms(business) -> Campaign:
    from tests.conftest import campaign_make

    return campaign_make(business, channels=["sms"], pacing={})


def test_each_run_says_what_it_scheduled_and_what_went_out_of_it(business):
    campaign = three_nights(business)

    with scope(business=business.pk):
        runs = selectors.campaign_runs(campaign=campaign)

    assert [(r["local_date"], r["stats"]["sends"], r["stats"]["deliveries"]) for r in runs] == [
        (D + timedelta(days=2), 0, 0),
        (D + timedelta(days=1), 2, 2),
        (D, 4, 4),
    ]
    none = {"sent": 0, "delivered": 0, "opened": 0, "waiting": 0, "failed": 0, "not_sent": 0}
    assert [r["went_out"] for r in runs] == [
        none,
        {**none, "waiting": 2},
        {**none, "sent": 3, "delivered": 1, "opened": 1, "failed": 1},
    ]


def test_the_runs_cost_the_same_queries_for_one_night_or_three(business, django_assert_num_queries):
    campaign = three_nights(business)
    with scope(business=business.pk):
        runs = selectors.campaign_runs(campaign=campaign)
        assert len(runs) == 3

        with django_assert_num_queries(2):
            selectors.campaign_runs(campaign=campaign)
        with django_assert_num_queries(2):
            selectors.campaign_runs(campaign=campaign, limit=1)


def test_the_campaign_page_labels_the_night_as_scheduled_and_shows_what_went_out(business):
    campaign = three_nights(business)
    owner = user_make("owner", business)

    response = client_for(owner).get(f"/campaigns/{campaign.pk}/")

    body = response.content.decode()
    assert "Scheduled by the night" in body and "Went out since" in body
    row = body[body.index(f'<tr data-night="{D.isoformat()}">') :]
    row = row[: row.index("</tr>")]
    cells = [c.split(">", 1)[1] for c in row.split("<td")[1:]]
    cells = [c[: c.index("</td>")] for c in cells]
    # night · selected · capped · control · messages · deliveries · rewards | sent · delivered · opened · waiting · failed
    assert cells[1:] == ["4", "0", "0", "4", "4", "0", "3", "1", "1", "0", "1"]


def test_the_api_runs_carry_the_same_went_out_figures(business):
    campaign = three_nights(business)
    owner = user_make("owner", business)

    runs = user_client_for(owner).get(f"/api/v1/campaigns/{campaign.pk}/runs/").json()["results"]

    assert [(r["local_date"], r["went_out"]) for r in runs][1:] == [
        ((D + timedelta(days=1)).isoformat(),
         {"sent": 0, "delivered": 0, "opened": 0, "waiting": 2, "failed": 0, "not_sent": 0}),
        (D.isoformat(), {"sent": 3, "delivered": 1, "opened": 1, "waiting": 0, "failed": 1, "not_sent": 0}),
    ]  # fmt: skip
