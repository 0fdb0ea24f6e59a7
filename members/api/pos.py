"""Point of sale: find a member, record a visit (idempotent), redeem a wallet reward by its code.

Called with a business's API key, or by a signed-in user of the business of any role."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from members import services, wallet
from members.models import Member, MemberStatus, VisitSource, WalletReward
from winback.api import ApiError, ErrorSerializer, PointOfSaleAPIView

from . import serializers as s

TAG = "point of sale"
IDEMPOTENCY_PREFIX = "pos:"


def active_member_or_404(member_id: int) -> Member:
    # The scoped manager sees only the caller's business: another business's id is a 404.
    member = Member.objects.select_related("business").filter(pk=member_id, status=MemberStatus.ACTIVE).first()
    if member is None:
        raise ApiError(404, "not_found", "No such member.")
    return member


class MemberLookupView(PointOfSaleAPIView):
    """Find an active member by card code (as scanned from the QR) or by phone number."""

    @extend_schema(
        tags=[TAG],
        parameters=[
            OpenApiParameter("card_code", str, required=False, description="The card code (QR)."),
            OpenApiParameter("phone", str, required=False, description="A phone number, local or E.164."),
        ],
        responses={200: s.PosMemberSerializer},
    )
    def get(self, request):
        card_code = request.query_params.get("card_code", "").strip().upper()
        phone = request.query_params.get("phone", "").strip()
        if bool(card_code) == bool(phone) or "\x00" in card_code + phone:
            raise serializers.ValidationError({"card_code": ["Give a card code or a phone number (one of them)."]})
        members = Member.objects.select_related("business").filter(status=MemberStatus.ACTIVE)
        if card_code:
            member = members.filter(card_code=card_code).first()
        else:
            try:
                normalised = services.phone_normalise(phone, region=self.business.country)
            except ValidationError:
                raise serializers.ValidationError({"phone": ["This is not a valid phone number."]}) from None
            member = members.filter(phone=normalised).order_by("pk").first()
        if member is None:
            raise ApiError(404, "not_found", "No member with this card code or phone.")
        return Response(s.PosMemberSerializer(member).data)


class PosMemberView(PointOfSaleAPIView):
    """A member's card: balances and the rewards available to redeem."""

    @extend_schema(tags=[TAG], responses={200: s.PosMemberSerializer})
    def get(self, request, member_id: int):
        return Response(s.PosMemberSerializer(active_member_or_404(member_id)).data)


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Required, here or as the body's `idempotency_key` (1–96 characters, unique per visit). "
        "A retry with the same key records nothing new and answers the first result (with "
        "`Idempotent-Replayed: true`)."
    ),
)


class VisitCreateView(PointOfSaleAPIView):
    """Record a visit on a member's card: a purchase (stamps, points, amount spent), a redemption
    (stamps or points taken off) or a balance check."""

    @extend_schema(
        tags=[TAG],
        parameters=[IDEMPOTENCY_HEADER],
        request=s.VisitCreateSerializer,
        responses={
            201: s.PosVisitSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The idempotency key was used for another member."),
        },
    )
    def post(self, request, member_id: int):
        member = active_member_or_404(member_id)
        data = s.VisitCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        key = (request.headers.get("Idempotency-Key") or v.get("idempotency_key") or "").strip()
        if not key or len(key) > 96 or "\x00" in key:
            raise serializers.ValidationError(
                {"idempotency_key": ["Send an Idempotency-Key header (or idempotency_key) of 1–96 characters."]}
            )
        try:
            visit = services.visit_record(
                member=member,
                kind=v["kind"],
                stamps=v["stamps"],
                points=v["points"],
                amount=v.get("amount"),
                occurred_at=v.get("occurred_at") or timezone.now(),
                recorded_by=self.recorded_by,
                source=VisitSource.API,
                idempotency_key=IDEMPOTENCY_PREFIX + key,
                note=v["note"],
            )
        except services.DuplicateIdempotencyKey:
            raise ApiError(409, "idempotency_key_reused", "This idempotency key was used for another member.") from None
        response = Response(s.PosVisitSerializer(visit).data, status=status.HTTP_201_CREATED)
        if visit.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class RedeemView(PointOfSaleAPIView):
    """Redeem a wallet reward by its single-use code, once. A second redeem, an expired reward or
    a reward never claimed is a 409 that changes nothing; another business's code is a 404."""

    @extend_schema(
        tags=[TAG],
        request=s.RedeemSerializer,
        responses={
            200: s.RedeemedSerializer,
            409: OpenApiResponse(ErrorSerializer, description="`already_redeemed`, `expired` or `not_available`."),
        },
    )
    def post(self, request):
        data = s.RedeemSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            reward = wallet.reward_redeem(
                code=data.validated_data["code"], at=timezone.now(), recorded_by=self.recorded_by
            )
        except WalletReward.DoesNotExist:
            raise ApiError(404, "not_found", "No reward with this code.") from None
        except wallet.RewardNotRedeemable as exc:
            raise ApiError(409, exc.code or "not_redeemable", exc.messages[0]) from None
        return Response(s.RedeemedSerializer(reward).data)
