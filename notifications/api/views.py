"""The member app's Web Push: the application server key, and subscriptions (register, list, remove)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from members.models import Business, PushSubscription
from winback.api import ApiError, MemberAPIView, PublicAPIView, ScopedThrottle

from . import serializers as s
from .services import push_subscription_register, push_subscription_remove

TAG = "member app"


class PushSubscriptionListView(MemberAPIView):
    """This member's push subscriptions; POST registers the browser's subscription JSON."""

    serializer_class = s.PushSubscriptionSerializer

    @extend_schema(tags=[TAG], responses=s.PushSubscriptionSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(PushSubscription.objects.filter(member=self.member))
        return self.get_paginated_response(s.PushSubscriptionSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        request=s.PushSubscriptionInSerializer,
        responses={201: s.PushSubscriptionSerializer, 200: s.PushSubscriptionSerializer},
    )
    def post(self, request):
        data = s.PushSubscriptionInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription, created = push_subscription_register(
            member=self.member,
            endpoint=data.validated_data["endpoint"],
            p256dh=data.validated_data["keys"]["p256dh"],
            auth=data.validated_data["keys"]["auth"],
            user_agent=request.headers.get("User-Agent", "").replace("\x00", ""),
            at=timezone.now(),
        )
        return Response(
            s.PushSubscriptionSerializer(subscription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PushSubscriptionDetailView(MemberAPIView):
    """Remove one of this member's push subscriptions."""

    @extend_schema(tags=[TAG], responses={204: None})
    def delete(self, request, subscription_id: int):
        subscription = PushSubscription.objects.filter(member=self.member, pk=subscription_id).first()
        if subscription is None:
            raise ApiError(404, "not_found", "No such push subscription.")
        push_subscription_remove(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PushKeyView(PublicAPIView):
    """The key to subscribe to this business's web push with (before signing in, like the app's
    first screen): 404 for no such business, 503 while push is not set up (no VAPID key pair on
    the server, or push turned off in the business's channel settings)."""

    throttle_classes = [ScopedThrottle]
    throttle_scope = "member"
    error_statuses = {"503": "Push notifications are not set up for this business."}

    @extend_schema(
        tags=[TAG],
        parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The business's slug.")],
        responses={200: s.PushKeySerializer},
        auth=[],
    )
    def get(self, request, slug: str):
        business = Business.objects.filter(slug=slug, is_active=True).first()
        if business is None:
            raise ApiError(404, "not_found", "No such business.")
        if not (settings.VAPID_PUBLIC_KEY and settings.VAPID_PRIVATE_KEY) or "push" not in business.enabled_channels():
            raise ApiError(503, "push_not_configured", "Push notifications are not set up for this business.")
        response = Response(s.PushKeySerializer({"public_key": settings.VAPID_PUBLIC_KEY}).data)
        response["Cache-Control"] = "public, max-age=300"
        return response
