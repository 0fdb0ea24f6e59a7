"""Web Push subscriptions as the browser's ``PushSubscription.toJSON()`` gives them."""

from __future__ import annotations

from rest_framework import serializers


class PushKeysSerializer(serializers.Serializer):
    p256dh = serializers.RegexField(r"^[A-Za-z0-9_\-=]{1,200}$", max_length=200)
    auth = serializers.RegexField(r"^[A-Za-z0-9_\-=]{1,100}$", max_length=100)


class PushSubscriptionInSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815 - the browser's name
    keys = PushKeysSerializer()

    def validate_endpoint(self, value: str) -> str:
        if not value.startswith("https://"):
            raise serializers.ValidationError("A push endpoint is an https:// URL.")
        return value


class PushSubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    endpoint = serializers.CharField(read_only=True)
    user_agent = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
