"""The Web Push application server key for the mobile app and the web wallet, before sign-in."""

from rest_framework.test import APIClient

from tests.conftest import business_make
from tests.notifications.conftest import VAPID_PRIVATE, VAPID_PUBLIC


def push_on(business):
    business.channel_settings = {"push": {"enabled": True}}
    business.save()


def test_the_public_key_is_served_as_subscribe_wants_it(business, settings):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    push_on(business)

    response = APIClient().get("/api/v1/businesses/kopi/push-key/")

    assert response.status_code == 200
    assert response.json() == {"public_key": VAPID_PUBLIC}
    assert response["Cache-Control"] == "public, max-age=300"
    assert "private" not in response.content.decode().lower() and VAPID_PRIVATE not in response.content.decode()


def test_the_key_is_an_uncompressed_p256_point_in_base64url(business, settings):
    import base64

    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    push_on(business)

    key = APIClient().get("/api/v1/businesses/kopi/push-key/").json()["public_key"]

    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4
    assert "=" not in key and "+" not in key and "/" not in key


def test_without_a_key_pair_on_the_server_push_is_not_configured(business, settings):
    settings.VAPID_PUBLIC_KEY = settings.VAPID_PRIVATE_KEY = ""
    push_on(business)

    response = APIClient().get("/api/v1/businesses/kopi/push-key/")

    assert response.status_code == 503
    assert response.json() == {"error": {"code": "push_not_configured", "fields": {},
                                         "message": "Push notifications are not set up for this business."}}  # fmt: skip


def test_a_business_with_push_turned_off_is_not_configured(business, settings):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    business.channel_settings = {"push": {"enabled": False}, "sms": {"enabled": True}}
    business.save()

    response = APIClient().get("/api/v1/businesses/kopi/push-key/")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "push_not_configured"


def test_an_unknown_or_closed_business_is_not_found(db, settings):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    push_on(business_make(slug="closed", is_active=False))

    unknown = APIClient().get("/api/v1/businesses/nobody/push-key/")
    closed = APIClient().get("/api/v1/businesses/closed/push-key/")

    assert unknown.status_code == closed.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert closed.json() == unknown.json()


def test_the_key_needs_no_credentials_and_ignores_any(business, settings, member_api):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    push_on(business)

    assert member_api.get("/api/v1/businesses/kopi/push-key/").json() == {"public_key": VAPID_PUBLIC}
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer wbm_revoked")
    assert bad.get("/api/v1/businesses/kopi/push-key/").status_code == 200


def test_the_key_is_throttled_per_client_address(business, settings):
    settings.VAPID_PUBLIC_KEY, settings.VAPID_PRIVATE_KEY = VAPID_PUBLIC, VAPID_PRIVATE
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"member": "2/min"}}
    push_on(business)
    client = APIClient()

    statuses = [client.get("/api/v1/businesses/kopi/push-key/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
