import pytest

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
