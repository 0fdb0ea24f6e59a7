"""The member wallet app: sign-in by one-time code, profile, card, visits, preferences, erasure,
wallet and inbox. Every view answers for the signed-in member only."""

from __future__ import annotations

import io

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from campaigns.models import CampaignSend
from members import apiauth, credentials, selectors, services, wallet
from members.models import Business, ConsentSource, MemberToken
from notifications import erasure, inbox
from winback.api import (
    ApiError,
    ClientIPThrottle,
    Cursor,
    MemberAPIView,
    PublicAPIView,
    client_ip,
)
from winback.tenancy import business_scope

from . import serializers as s

TAG = "member app"


def _business_by_slug(slug: str) -> Business:
    business = Business.objects.filter(slug=slug, is_active=True).first()
    if business is None:
        raise serializers.ValidationError({"business": ["No such business."]})
    return business


def _rate_limited(exc: apiauth.CodeRateLimited) -> exceptions.APIException:
    """429 with ``Retry-After``: the business's cap says which and for how long; the limits per
    phone and per address answer the generic throttle."""
    if not exc.message:
        return exceptions.Throttled(wait=exc.retry_after, detail="Too many codes were requested.")
    error = ApiError(429, "too_many_codes", exc.message)
    error.wait = exc.retry_after  # DRF's handler turns it into Retry-After
    return error


class CodeRequestView(PublicAPIView):
    """Ask for a sign-in code, sent by SMS to the phone or by email.

    The answer is the same whether or not the phone or email belongs to a member. Limited per
    phone or email, per client address and per business an hour and a day (429 with
    `Retry-After`); a phone is texted only in the business's countries and only if it can receive a
    text (mobile numbers: not landlines, premium-rate or shared-cost numbers), else a 400 on `phone`
    that says why."""

    throttle_classes = [ClientIPThrottle]
    throttle_scope = "sign_in"

    @extend_schema(tags=[TAG], request=s.CodeRequestSerializer, responses={202: s.CodeRequestedSerializer}, auth=[])
    def post(self, request):
        data = s.CodeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        business = _business_by_slug(data.validated_data["business"])
        with business_scope(business):
            try:
                apiauth.code_request(
                    business=business,
                    phone=data.validated_data["phone"],
                    email=data.validated_data["email"],
                    client_ip=client_ip(request),
                )
            except apiauth.CodeRateLimited as exc:
                raise _rate_limited(exc) from None
        body = {
            "detail": "If this phone or email belongs to a member, a code is on its way.",
            "expires_in": int(apiauth.CODE_TTL.total_seconds()),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class JoinView(PublicAPIView):
    """Join the loyalty program: first name, optional last name, a phone or an email, and consent
    per channel (nothing is granted unless ticked). A sign-in code goes to the phone or email;
    exchange it at `member/auth/token/` as at sign-in.

    A phone or email that is already a member's creates nobody and changes nothing: that member
    gets a sign-in code, and the answer is the same. Limited, and phones checked, like the code
    request (429, or 400 on `phone`)."""

    throttle_classes = [ClientIPThrottle]
    throttle_scope = "sign_in"

    @extend_schema(tags=[TAG], request=s.JoinSerializer, responses={202: s.CodeRequestedSerializer}, auth=[])
    def post(self, request):
        data = s.JoinSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        business = data.business_found
        with business_scope(business):
            try:
                apiauth.member_join(
                    business=business,
                    first_name=v["first_name"],
                    last_name=v["last_name"],
                    phone=v["phone"],
                    email=v["email"],
                    consents=v.get("consents") or {},
                    client_ip=client_ip(request),
                )
            except apiauth.CodeRateLimited as exc:
                raise _rate_limited(exc) from None
        # The same answer whether the person is new or already a member.
        body = {
            "detail": "A code is on its way to this phone or email: enter it to see your card.",
            "expires_in": int(apiauth.CODE_TTL.total_seconds()),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CodeExchangeView(PublicAPIView):
    """Exchange a sign-in code for a device token (once; a wrong, used or expired code is a 400)."""

    throttle_classes = [ClientIPThrottle]
    throttle_scope = "sign_in"

    @extend_schema(
        tags=[TAG], request=s.CodeExchangeSerializer, responses={200: s.MemberTokenIssuedSerializer}, auth=[]
    )
    def post(self, request):
        data = s.CodeExchangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        business = _business_by_slug(v["business"])
        with business_scope(business):
            try:
                issued = apiauth.code_exchange(
                    business=business, phone=v["phone"], email=v["email"], code=v["code"], device_name=v["device_name"]
                )
            except apiauth.CodeInvalid:
                raise ApiError(400, "invalid_code", "This code is wrong, used or expired. Ask for a new one.") from None
            body = {
                "token": issued.secret,
                "expires_at": issued.token.expires_at,
                "device_id": issued.token.pk,
                "member": s.ProfileSerializer(issued.token.member).data,
            }
        return Response(s.MemberTokenIssuedSerializer(body).data)


class SignOutView(MemberAPIView):
    """Sign this device out: its token is revoked."""

    @extend_schema(tags=[TAG], request=None, responses={204: None})
    def post(self, request):
        credentials.member_token_revoke(token=request.user.token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeviceListView(MemberAPIView):
    """The member's signed-in devices."""

    serializer_class = s.DeviceSerializer

    @extend_schema(tags=[TAG], responses=s.DeviceSerializer(many=True))
    def get(self, request):
        tokens = MemberToken.objects.filter(
            member=self.member, revoked_at__isnull=True, expires_at__gt=timezone.now()
        ).order_by("-id")
        page = self.paginate_queryset(tokens)
        context = {"current_token_id": request.user.token.pk}
        return self.get_paginated_response(s.DeviceSerializer(page, many=True, context=context).data)


class DeviceRevokeView(MemberAPIView):
    """Sign one of the member's devices out."""

    @extend_schema(tags=[TAG], responses={204: None})
    def delete(self, request, device_id: int):
        token = MemberToken.objects.filter(member=self.member, pk=device_id, revoked_at__isnull=True).first()
        if token is None:
            raise ApiError(404, "not_found", "No such device.")
        credentials.member_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(MemberAPIView):
    """The member's profile: name, email and birthday can be changed."""

    @extend_schema(tags=[TAG], responses={200: s.ProfileSerializer})
    def get(self, request):
        return Response(s.ProfileSerializer(self.member).data)

    @extend_schema(tags=[TAG], request=s.ProfileUpdateSerializer, responses={200: s.ProfileSerializer})
    def patch(self, request):
        data = s.ProfileUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        member = services.member_update(member=self.member, **data.validated_data)
        return Response(s.ProfileSerializer(member).data)


class EraseView(MemberAPIView):
    """Erase the account (GDPR): personal data goes, every device is signed out."""

    @extend_schema(tags=[TAG], request=None, responses={204: None})
    def post(self, request):
        erasure.member_erase(member=self.member)
        credentials.member_tokens_revoke_all(member=self.member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CardView(MemberAPIView):
    """Balances, stamps to a full card, and the card code for the QR."""

    @extend_schema(tags=[TAG], responses={200: s.CardSerializer})
    def get(self, request):
        return Response(s.CardSerializer(s.card_data(self.member)).data)


class FirstRenderer(BaseContentNegotiation):
    """The QR answers SVG whatever the Accept header (errors still answer JSON)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CardQRView(MemberAPIView):
    """The card code as an SVG QR code."""

    content_negotiation_class = FirstRenderer

    @extend_schema(tags=[TAG], responses={(200, "image/svg+xml"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request):
        import segno

        buffer = io.BytesIO()
        # A standalone SVG document (XML declaration and namespace), so an <img> can show it.
        segno.make(self.member.card_code, error="m").save(buffer, kind="svg", scale=8, border=2)
        svg = buffer.getvalue()
        response = HttpResponse(svg, content_type="image/svg+xml")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class VisitsView(MemberAPIView):
    """The card's history, newest first."""

    serializer_class = s.VisitSerializer
    pagination_class = type("VisitCursor", (Cursor,), {"ordering": ("-occurred_at", "-id")})

    @extend_schema(tags=[TAG], responses=s.VisitSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.member_visits(member=self.member).order_by())
        return self.get_paginated_response(s.VisitSerializer(page, many=True).data)


def _consents(member) -> list[dict]:
    return [
        {
            "channel": row["channel"],
            "granted": row["granted"],
            "changed_at": row["event"].occurred_at if row["event"] else None,
            "source": row["event"].source if row["event"] else None,
        }
        for row in selectors.member_consents(member=member)
    ]


class PreferencesView(MemberAPIView):
    """Consent per channel: grant or withdraw (recorded with the time and the member app as source)."""

    pagination_class = None

    @extend_schema(tags=[TAG], responses={200: s.ConsentSerializer(many=True)})
    def get(self, request):
        return Response(s.ConsentSerializer(_consents(self.member), many=True).data)

    @extend_schema(tags=[TAG], request=s.PreferencesUpdateSerializer, responses={200: s.ConsentSerializer(many=True)})
    def patch(self, request):
        data = s.PreferencesUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        for channel, granted in data.validated_data.items():
            services.member_consent_set(
                member=self.member, channel=channel, granted=granted, source=ConsentSource.MEMBER_APP, at=now
            )
        return Response(s.ConsentSerializer(_consents(self.member), many=True).data)


STATUS_PARAM = OpenApiParameter(
    "status", str, enum=["available", "redeemed", "expired"], required=False, description="Only rewards in this status."
)


class WalletView(MemberAPIView):
    """Rewards in the wallet (available, redeemed, expired), newest first. Offers not yet claimed
    are in the inbox, not here."""

    serializer_class = s.WalletRewardSerializer

    @extend_schema(tags=[TAG], parameters=[STATUS_PARAM], responses=s.WalletRewardSerializer(many=True))
    def get(self, request):
        status_ = request.query_params.get("status", "")
        rewards = wallet.wallet_rewards(member=self.member, status=status_)
        page = self.paginate_queryset(rewards)
        return self.get_paginated_response(s.WalletRewardSerializer(page, many=True).data)


class WalletRewardView(MemberAPIView):
    """One reward of the wallet, with its code while it is available."""

    @extend_schema(tags=[TAG], responses={200: s.WalletRewardSerializer})
    def get(self, request, reward_id: int):
        reward = wallet.wallet_rewards(member=self.member).filter(pk=reward_id).first()
        if reward is None:
            raise ApiError(404, "not_found", "No such reward.")
        return Response(s.WalletRewardSerializer(reward).data)


def _inbox_item(send, member) -> dict:
    message = inbox.inbox_message(send, member=member)
    return {
        "id": send.pk,
        "title": message["title"],
        "body": message["body"],
        "business": send.business.name,
        "sent_on": send.local_date,
        "created_at": send.created_at,
        "opened_at": send.opened_at,
        "reward": message["reward"],
    }


class InboxView(MemberAPIView):
    """Campaign messages that went out, newest first (nothing before its send time)."""

    serializer_class = s.InboxItemSerializer
    pagination_class = type("InboxCursor", (Cursor,), {"ordering": ("-created_at", "-id")})

    @extend_schema(tags=[TAG], responses=s.InboxItemSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(inbox.inbox_sends(member=self.member, now=timezone.now()))
        items = [_inbox_item(send, self.member) for send in page]
        return self.get_paginated_response(s.InboxItemSerializer(items, many=True).data)


class InboxOpenView(MemberAPIView):
    """Open a message: marks it opened and claims its reward into the wallet, exactly once
    (opening it again, or on two devices at once, changes nothing more). `claimed` says whether
    this open is the one that added it; a message not sent yet is a 404."""

    @extend_schema(tags=[TAG], request=None, responses={200: s.InboxOpenedSerializer})
    def post(self, request, send_id: int):
        now = timezone.now()
        send = inbox.inbox_sends(member=self.member, now=now).filter(pk=send_id).first()
        if send is None:
            raise ApiError(404, "not_found", "No such message.")
        try:
            opened = inbox.inbox_open(send=send, at=now)
        except CampaignSend.DoesNotExist:
            raise ApiError(404, "not_found", "No such message.") from None
        send = inbox.inbox_sends(member=self.member, now=now).get(pk=send_id)
        return Response(s.InboxOpenedSerializer({**_inbox_item(send, self.member), "claimed": opened.claimed}).data)
