"""End to end for push: a browser-made subscription registered through the API, the night, the
dispatcher, and a push service that decrypts the message (RFC 8291) and checks VAPID (RFC 8292)."""

from datetime import UTC, date, datetime, timedelta

import time_machine
from django_scopes import scope

from notifications.models import PushSubscription
from tests.campaigns.helpers import at_local, deliveries, night
from tests.conftest import business_make, campaign_make, member_make, sign_in_code_sent, visit_make
from tests.notifications.test_dispatcher import run_dispatch

D = date(2026, 3, 20)


def sign_in(client, business, phone, capture):
    with capture(execute=True):  # the code goes out after the request's transaction commits
        client.post(
            "/api/v1/member/auth/code/", {"business": business.slug, "phone": phone}, content_type="application/json"
        )
    code = sign_in_code_sent(phone)
    response = client.post("/api/v1/member/auth/token/", {"business": business.slug, "phone": phone, "code": code},
                           content_type="application/json")  # fmt: skip
    assert response.status_code in (200, 201), response.content
    return response.json()["token"]


def test_a_browser_subscription_registered_through_the_api_receives_the_nights_push(
    client, push, db, django_capture_on_commit_callbacks
):
    shop = business_make(slug="kopi-push", timezone="Asia/Kuala_Lumpur", frequency_cap_days=0,
                         channel_settings={"push": {"enabled": True}, "sms": {"enabled": True}})  # fmt: skip
    member = member_make(shop, first_name="Wei", phone="+60123456789", consents={"push": True})
    with time_machine.travel(at_local(shop, D, 0, 30), tick=False):
        visit_make(member, at=at_local(shop, D - timedelta(days=30), 12))
    token = sign_in(client, shop, "+60123456789", django_capture_on_commit_callbacks)
    subscription = push.subscribe("browser-1")  # a fresh P-256 key pair and auth secret, as a browser makes

    registered = client.post("/api/v1/member/push-subscriptions/", subscription, content_type="application/json",
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert registered.status_code == 201, registered.content
    with scope(business=shop.pk):
        assert PushSubscription.objects.get(member=member).endpoint == subscription["endpoint"]

    campaign_make(shop, channels=["push"], title="We miss you, {first_name}!", body="Come back to {business}.",
                  reward={"kind": "bonus_stamps", "count": 2})  # fmt: skip
    night(shop, D)
    run_dispatch(at_local(shop, D, 9))

    (request,) = push.requests
    assert "error" not in request, request.get("error")
    assert request["payload"]["title"] == "We miss you, Wei!"
    assert request["payload"]["body"] == f"Come back to {shop.name}."
    assert request["payload"]["url"].startswith("http") and "/m/" in request["payload"]["url"]
    assert request["claims"]["aud"] == push.url
    assert [d.status for d in deliveries(shop)] == ["sent"]


def test_a_push_endpoint_outside_the_allowlist_is_refused(client, settings, db, django_capture_on_commit_callbacks):
    settings.PUSH_SERVICE_HOSTS = ["fcm.googleapis.com"]
    shop = business_make(slug="kopi-ssrf", channel_settings={"push": {"enabled": True}})
    member_make(shop, phone="+60123456789")
    token = sign_in(client, shop, "+60123456789", django_capture_on_commit_callbacks)

    response = client.post(
        "/api/v1/member/push-subscriptions/",
        {"endpoint": "https://169.254.169.254/latest/meta-data", "keys": {"p256dh": "x" * 87, "auth": "y" * 22}},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400
    with scope(business=shop.pk):
        assert not PushSubscription.objects.exists()


def test_in_the_demo_a_member_who_subscribes_in_the_wallet_receives_the_campaigns_push(client, push, db):
    """What "receives" means in the demo, which has no internet: with the VAPID keys ``make run``
    keeps, the real pywebpush signs and encrypts the campaign's message for the subscription the
    wallet registered, and a push service (here the local fake, as a browser's would) accepts,
    checks and decrypts it; the browser's service worker then shows it."""
    import io

    from django.core.management import call_command

    from campaigns.engine import arm_bucket, campaign_audience_queryset
    from campaigns.models import Campaign
    from members.credentials import member_token_issue
    from members.models import Business

    now = datetime(2026, 3, 18, 7, 30, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        cafe = Business.objects.get(slug="demo")
        tomorrow = now.astimezone(cafe.tzinfo).date() + timedelta(days=1)
        with scope(business=cafe.pk):
            campaign = Campaign.objects.get(name="We miss you (14 days)")
            # Due tomorrow for this campaign alone (lapsed under 30 days), messaged (not held out).
            member = next(
                m for m in campaign_audience_queryset(campaign, local_date=tomorrow).filter(
                    consent_push=True, last_purchase_at__gt=now - timedelta(days=29)).order_by("pk")
                if arm_bucket(campaign_id=campaign.pk, member_id=m.pk) >= campaign.control_share
            )  # fmt: skip
            token = member_token_issue(member=member, device_name="demo phone").secret
        registered = client.post("/api/v1/member/push-subscriptions/", push.subscribe("demo-browser"),
                                 content_type="application/json", headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert registered.status_code == 201, registered.content

    night(cafe, tomorrow)
    (delivery,) = deliveries(cafe, member_id=member.pk, status="scheduled", channel="push")
    with time_machine.travel(delivery.scheduled_at + timedelta(minutes=1), tick=False):
        run_dispatch(delivery.scheduled_at + timedelta(minutes=1))

    (request,) = push.requests
    assert "error" not in request, request.get("error")
    assert request["payload"]["title"] in (f"We miss you, {member.first_name}!", "Still thinking of you")
    assert "/m/" in request["payload"]["url"]
    assert deliveries(cafe, pk=delivery.pk)[0].status == "sent"
