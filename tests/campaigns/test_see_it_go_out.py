"""See it go out: "Send me a test" (the campaign's message to the owner, through the channels'
backends, counted nowhere) and "Preview tonight" (a page of the next night's dry run)."""

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from campaigns import selectors
from campaigns.models import CampaignSend, EvaluationRun
from notifications.models import Delivery, PushSubscription, RecordedMessage
from tests.campaigns.test_funnel import D, _evening_before, _owner, crafted, lapsed
from tests.conftest import campaign_make, client_for, member_make, user_make


def _counted(b):
    with scopes_disabled():
        return (CampaignSend.objects.filter(business=b).count(), Delivery.objects.filter(business=b).count(),
                EvaluationRun.objects.filter(business=b).count())  # fmt: skip


@pytest.fixture
def ab_campaign(business):
    return campaign_make(business, channels=["sms", "email", "push"], ab_enabled=True, ab_share_b=50,
                         variant_b_title="{first_name}, a treat at {business}", variant_b_body="B body",
                         reward={"kind": "free_item", "item": "kopi", "expiry_days": 30})  # fmt: skip


def test_send_me_a_test_sends_each_arm_on_each_channel_the_owner_has_and_counts_nowhere(
    business, owner, owner_client, ab_campaign
):
    card = member_make(business, first_name="Aisyah", email=owner.email, phone="+60123000111")
    with scope(business=business.pk):
        PushSubscription.objects.create(business=business, member=card, endpoint="https://push.example/s1",
                                        p256dh="k", auth="a")  # fmt: skip
    before = _counted(business)

    response = owner_client.post(f"/campaigns/{ab_campaign.pk}/test-send/")

    assert response.status_code == 302
    with scopes_disabled():
        recorded = sorted(RecordedMessage.objects.filter(business=business).values_list("channel", "to", "title"))
    assert recorded == sorted(
        [(ch, to, title) for ch, to in (("sms", "+60123000111"), ("email", owner.email),
                                        ("push", "https://push.example/s1"))
         for title in ("[Test, variant A] We miss you, Aisyah!", "[Test, variant B] Aisyah, a treat at Kopi Corner")]
    )  # fmt: skip
    assert _counted(business) == before  # no send, no delivery, no run


def test_without_a_member_card_the_test_goes_to_the_owners_email_only(business, owner, owner_client):
    campaign = campaign_make(business, channels=["sms", "email"])

    owner_client.post(f"/campaigns/{campaign.pk}/test-send/")

    with scopes_disabled():
        assert list(RecordedMessage.objects.filter(business=business).values_list("channel", "to")) == [
            ("email", owner.email)
        ]


def test_the_test_send_is_post_with_csrf_owner_or_manager_only_and_another_business_is_404(
    business, owner, manager_client, staff_client, other_business, ab_campaign
):
    other = campaign_make(other_business, channels=["email"])
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner, backend="members.auth.EmailBackend")

    assert client_for(owner).get(f"/campaigns/{ab_campaign.pk}/test-send/").status_code == 405
    assert csrf_client.post(f"/campaigns/{ab_campaign.pk}/test-send/").status_code == 403
    assert staff_client.post(f"/campaigns/{ab_campaign.pk}/test-send/").status_code == 403
    assert client_for(owner).post(f"/campaigns/{other.pk}/test-send/").status_code == 404
    with scopes_disabled():
        assert not RecordedMessage.objects.exists()
    assert manager_client.post(f"/campaigns/{ab_campaign.pk}/test-send/").status_code == 302


def test_the_test_send_costs_the_same_queries_for_3_or_40_members(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import business_make

    counts = []
    for n in (3, 40):
        b = business_make()
        campaign = campaign_make(b, channels=["sms", "email"])
        for i in range(n):
            lapsed(b, days=20 + i)
        client = _owner(b)
        with CaptureQueriesContext(connection) as ctx:
            client.post(f"/campaigns/{campaign.pk}/test-send/")
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


@pytest.fixture
def world(db):
    from tests.conftest import business_make

    return crafted(business_make)


def test_preview_tonight_lists_who_gets_what_and_who_is_held_back_and_why_writing_nothing(world):
    b, x, _, _, m, ok, control = world
    client = _owner(b)
    before = _counted(b)

    with _evening_before(b):
        response = client.get(f"/campaigns/{x.pk}/tonight/")

    assert response.status_code == 200
    rows = response.context["rows"]
    by_member = {r["member_id"]: r for r in rows}
    for member in ok:
        r = by_member[member.pk]
        assert (r["stage"], r["arm"], r["channel_names"]) == ("messaged", "a", "SMS")
        assert r["title"] == f"We miss you, {member.first_name}!"
    assert by_member[m["spacing"].pk]["reason"].startswith("messaged by this campaign within")
    assert by_member[m["no_contact"].pk]["reason"] == "not reachable on the chosen channels"
    assert {by_member[c.pk]["stage"] for c in control} == {"control"}
    html = response.content.decode()
    assert 'id="funnel-messaged">' + str(len(ok)) in html
    assert "not messaged: already sent this campaign the maximum number of times" in html
    assert _counted(b) == before


def test_preview_tonight_is_paginated(world):
    b, x, *_ = world
    with scope(business=b.pk):
        first = selectors.campaign_tonight(campaign=x, local_date=D, page=1, per_page=5)
        second = selectors.campaign_tonight(campaign=x, local_date=D, page=2, per_page=5)
        everyone = selectors.campaign_tonight(campaign=x, local_date=D, page=1, per_page=100)

    assert first["pages"] == second["pages"] == -(-everyone["funnel"].lapsed // 5)
    assert [r["member_id"] for r in first["rows"] + second["rows"]] == [r["member_id"] for r in everyone["rows"]][:10]


def test_preview_tonight_of_another_business_is_404_and_staff_cannot_see_it(world, other_business):
    b, x, *_ = world
    outsider = client_for(user_make("owner", other_business))
    staff = client_for(user_make("staff", b))

    assert outsider.get(f"/campaigns/{x.pk}/tonight/").status_code == 404
    assert staff.get(f"/campaigns/{x.pk}/tonight/").status_code == 403


def test_preview_tonight_costs_the_same_queries_for_3_or_40_members(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import business_make

    counts = []
    for n in (3, 40):
        b = business_make(frequency_cap_days=7)
        x = campaign_make(b, inactivity_days=14, channels=["sms", "email"], control_share=10)
        campaign_make(b, inactivity_days=30, channels=["sms"])
        for i in range(n):
            lapsed(b, days=20 + i, consents={"sms": i % 2 == 0})
        client = _owner(b)
        with _evening_before(b), CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/campaigns/{x.pk}/tonight/").status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts


def test_the_campaign_page_offers_both(business, owner_client):
    campaign = campaign_make(business)
    html = owner_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert 'id="send-me-a-test"' in html and f'href="/campaigns/{campaign.pk}/tonight/"' in html
