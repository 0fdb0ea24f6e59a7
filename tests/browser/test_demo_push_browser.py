"""The demo's web push in headless Chromium, from the wallet's opt-in to the notification shown.

Everything is the product's own but the browser vendor's push service, which needs the internet:
the wallet asks for permission, subscribes with the VAPID key it gets from the API, and registers
the subscription; the next night messages the member; the real pywebpush signs and encrypts it for
that subscription; the local push service (``FakePushService``) checks the VAPID JWT and decrypts
it, as the vendor's would; and the decrypted message is handed to the wallet's service worker
through the DevTools protocol, as the vendor's connection would, for the worker to show and open.
So the only stand-in is ``PushManager.subscribe``'s answer: the endpoint and keys of the local
push service instead of one of Google's (its application server key is checked all the same)."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope
from playwright.sync_api import expect

from campaigns.engine import arm_bucket, campaign_audience_queryset
from campaigns.models import Campaign
from members.models import Business
from notifications.models import PushSubscription
from tests.campaigns.helpers import deliveries, night
from tests.conftest import sign_in_code_sent
from tests.notifications.conftest import push  # noqa: F401 - the fake push service fixture
from tests.notifications.test_dispatcher import run_dispatch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The browser's subscribe() answers with the local push service's subscription, after checking
# that the wallet passed the server's VAPID public key (the vendor's service would refuse another).
SUBSCRIBE_STAND_IN = """
([subscription, expectedKey]) => {
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  PushManager.prototype.subscribe = async function (options) {
    if (!options.userVisibleOnly) throw new DOMException("userVisibleOnly is required", "NotAllowedError");
    if (b64(options.applicationServerKey) !== expectedKey) {
      throw new DOMException("Registration failed - wrong application server key", "AbortError");
    }
    window.__subscribedWith = b64(options.applicationServerKey);
    return { endpoint: subscription.endpoint, toJSON: () => subscription };
  };
}
"""


def _worker_registration(page, origin: str) -> str:
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):  # the registration event arrives asynchronously
        scoped = [r["registrationId"] for r in registrations if r["scopeURL"].endswith("/w/")]
        if scoped:
            return cdp, scoped[0]
        page.wait_for_timeout(100)
    raise AssertionError(f"no service worker registration for {origin}/w/")


def test_in_the_demo_a_member_turns_on_notifications_in_the_wallet_and_gets_the_campaigns_push(
    page,
    live_server,
    settings,
    shot,
    push,  # noqa: F811 - the imported fixture
):
    settings.SITE_URL = live_server.url
    call_command("seed_demo", stdout=io.StringIO())
    cafe = Business.objects.get(slug="demo")
    today = timezone.localdate(timezone.now(), cafe.tzinfo)
    with scope(business=cafe.pk):
        campaign = Campaign.objects.get(name="We miss you (14 days)")
        # A member the 14-day campaign messages on one of the next nights (not one held out); the
        # demo follows the clock, so which night has one depends on the day the test runs.
        tomorrow, member = next(
            (day, m)
            for day in (today + timedelta(days=k) for k in range(1, 8))
            for m in campaign_audience_queryset(campaign, local_date=day).filter(
                last_purchase_at__gt=timezone.now() - timedelta(days=29)).order_by("pk")
            if arm_bucket(campaign_id=campaign.pk, member_id=m.pk) >= campaign.control_share
        )  # fmt: skip
        assert not PushSubscription.objects.filter(member=member).exists()
    subscription = push.subscribe("demo-wallet")
    page.add_init_script(script=f"({SUBSCRIBE_STAND_IN})({json.dumps([subscription, settings.VAPID_PUBLIC_KEY])})")
    page.context.grant_permissions(["notifications"], origin=live_server.url)

    page.goto(f"{live_server.url}/w/demo/")
    page.fill("#identifier", member.phone)
    page.click("#send-code")
    expect(page.locator("#code-sent")).to_contain_text(member.phone)
    page.fill("#code", sign_in_code_sent(member.phone))
    page.click("#sign-in-button")
    expect(page.locator("#member-name")).to_have_text(f"Hi {member.first_name}")
    page.click("#enable-push")
    expect(page.locator("#push-state")).to_have_text("Notifications are on.")
    assert page.evaluate("window.__subscribedWith") == settings.VAPID_PUBLIC_KEY
    shot("demo-wallet-notifications-on")
    with scope(business=cafe.pk):
        (registered,) = PushSubscription.objects.filter(member=member)
        assert registered.endpoint == subscription["endpoint"]
        member.refresh_from_db()
        assert member.consent_push

    # Tomorrow's night messages the member on push too; the dispatcher sends it at its time.
    night(cafe, tomorrow)
    (delivery,) = deliveries(cafe, member_id=member.pk, status="scheduled", channel="push")
    run_dispatch(delivery.scheduled_at + timedelta(minutes=1))
    (request,) = push.requests
    assert "error" not in request, request.get("error")
    payload = request["payload"]
    assert payload["title"] in (f"We miss you, {member.first_name}!", "Still thinking of you")
    assert deliveries(cafe, pk=delivery.pk)[0].status == "sent"

    # What the push service decrypted reaches the wallet's worker, which shows it.
    page.evaluate("navigator.serviceWorker.ready")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    cdp, registration_id = _worker_registration(page, live_server.url)
    cdp.send("ServiceWorker.deliverPushMessage",
             {"origin": live_server.url, "registrationId": registration_id, "data": json.dumps(payload)})  # fmt: skip
    for _ in range(100):  # shown asynchronously; wait_for_function would take the promise as truthy
        shown = page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(n => n.length === 1 ? [n[0].title, n[0].body, n[0].data.url] : null)"
        )
        if shown:
            break
        page.wait_for_timeout(100)
    assert shown == [payload["title"], payload["body"], payload["url"]]
    page.evaluate("navigator.serviceWorker.controller.postMessage({type: 'click-latest-notification'})")
    page.wait_for_url(payload["url"])
    expect(page.locator("#message-title")).to_have_text(payload["title"])
    shot("demo-wallet-push-opened")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("demo-wallet-push-opened-phone")
