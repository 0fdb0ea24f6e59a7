"""Web Push subscriptions as the browser's ``PushSubscription.toJSON()`` gives them."""

from __future__ import annotations

from fnmatch import fnmatch
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def push_endpoint_allowed(endpoint: str) -> bool:
    """Only the push services' own hosts (settings.PUSH_SERVICE_HOSTS), over https: a forged
    subscription must not make the workers call an address of our choosing. Plain http is allowed
    only for an allowlisted loopback host (a local fake push service in tests)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if not any(fnmatch(host, pattern.lower()) for pattern in settings.PUSH_SERVICE_HOSTS):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK)


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.RegexField(r"^[A-Za-z0-9_\-=]{1,200}$", max_length=200)
    auth = serializers.RegexField(r"^[A-Za-z0-9_\-=]{1,100}$", max_length=100)


class PushSubscriptionInSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815 - the browser's name
    keys = PushKeysSerializer()

    def validate_endpoint(self, value: str) -> str:
        if not push_endpoint_allowed(value):
            raise serializers.ValidationError(
                "A push endpoint is an https:// URL of a known push service (Chrome, Firefox, Safari, Edge)."
            )
        return value


class PushSubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    endpoint = serializers.CharField(read_only=True)
    user_agent = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class PushKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(
        help_text="The VAPID application server key: an uncompressed P-256 point, base64url without "
        "padding, as `PushManager.subscribe({applicationServerKey})` wants it."
    )
