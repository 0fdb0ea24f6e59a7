import pytest

from tests.conftest import TWILIO_TOKEN as TOKEN  # noqa: F401  (the webhook tests sign with it)
from tests.conftest import business_make
from tests.fakes import FakePushService

VAPID_PRIVATE = "ZcOQat6KwzNmI9gpz7aN6_MqTeuRhhRwrNmdy2zFqhg"
VAPID_PUBLIC = "BBQciPvgqclwSYMpqlQBLXMDbuc-c0U9q8mNqqE-3-4Eawyh3cZ0y2PRLSIM1sEpZNNtIyGr8JDfGCGHpAUstjs"


@pytest.fixture
def push(settings):
    """A fake push service on 127.0.0.1 and VAPID keys to sign for it."""
    with FakePushService(VAPID_PUBLIC) as fake:
        settings.VAPID_PRIVATE_KEY = VAPID_PRIVATE
        settings.VAPID_PUBLIC_KEY = VAPID_PUBLIC
        settings.VAPID_SUBJECT = "mailto:ops@winback.example"
        settings.PUSH_SERVICE_HOSTS = ["127.0.0.1"]  # the allowlist, widened to the local fake
        yield fake


@pytest.fixture
def shop(db):
    return business_make(
        name="Kopi",
        timezone="Asia/Kuala_Lumpur",
        frequency_cap_days=0,
        channel_settings={
            "sms": {"enabled": True, "sender": "+15005550006"},
            "whatsapp": {"enabled": True, "sender": "+15005550007", "template": "HX1234"},
            "email": {"enabled": True, "from_name": "Kopi Corner"},
            "push": {"enabled": True},
        },
    )
