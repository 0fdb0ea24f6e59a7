"""Owners and managers: their own tokens, the business's point-of-sale keys, and members."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from knox.models import AuthToken
from rest_framework import status
from rest_framework.response import Response

from members import credentials, selectors, services
from members.models import ApiKey, ConsentSource, Member, MemberStatus
from notifications import erasure
from winback.api import (
    ALL_AUTHENTICATION,
    ApiError,
    ClientIPThrottle,
    Cursor,
    IsUser,
    ManagerAPIView,
    PublicAPIView,
    ScopedAPIView,
)
from winback.tenancy import user_memberships

from . import serializers as s

USER_TOKEN_TTL = timedelta(days=30)


class LoginView(PublicAPIView):
    """Exchange an owner's, manager's or staff member's email and password for a token (one per
    device, hashed, expiring after 30 days). Limited per client address."""

    throttle_classes = [ClientIPThrottle]
    throttle_scope = "login"

    @extend_schema(tags=["auth"], request=s.LoginSerializer, responses={200: s.LoginTokenSerializer}, auth=[])
    def post(self, request):
        data = s.LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request, username=data.validated_data["email"], password=data.validated_data["password"]
        )
        memberships = user_memberships(user) if user is not None else []
        if user is None or not user.is_active or not memberships:
            raise ApiError(400, "invalid_credentials", "This email and password do not match a team member.")
        token, secret = AuthToken.objects.create(user, expiry=USER_TOKEN_TTL)
        body = {
            "token": secret,
            "expires_at": token.expiry,
            "businesses": [m.business for m in memberships],
        }
        return Response(s.LoginTokenSerializer(body).data)


class LogoutView(ScopedAPIView):
    """Revoke the token this request was made with."""

    authentication_classes = ALL_AUTHENTICATION
    documented_auth = ["knoxApiToken"]
    permission_classes = [IsUser]
    throttle_scope = "manager"

    @extend_schema(tags=["auth"], request=None, responses={204: None})
    def post(self, request):
        if not isinstance(request.auth, AuthToken):
            raise ApiError(400, "not_a_token", "Only a request made with a token can revoke it.")
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- point-of-sale keys --------------------------------------------------------------------------


class ApiKeyListView(ManagerAPIView):
    """The business's point-of-sale API keys (never their secrets)."""

    serializer_class = s.ApiKeySerializer

    @extend_schema(tags=["api keys"], responses=s.ApiKeySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(ApiKey.objects.all())
        return self.get_paginated_response(s.ApiKeySerializer(page, many=True).data)

    @extend_schema(tags=["api keys"], request=s.ApiKeyCreateSerializer, responses={201: s.ApiKeyCreatedSerializer})
    def post(self, request):
        data = s.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = credentials.api_key_create(
            business=self.business,
            name=data.validated_data["name"],
            created_by=request.user,
            expires_in_days=data.validated_data.get("expires_in_days"),
        )
        body = {**s.ApiKeySerializer(issued.key).data, "secret": issued.secret}
        return Response(s.ApiKeyCreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(ManagerAPIView):
    """Revoke a key: requests with it answer 401 from now on."""

    @extend_schema(tags=["api keys"], responses={204: None})
    def delete(self, request, key_id: int):
        key = ApiKey.objects.filter(pk=key_id).first()
        if key is None:
            raise ApiError(404, "not_found", "No such API key.")
        credentials.api_key_revoke(key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- members -------------------------------------------------------------------------------------


def member_or_404(member_id: int) -> Member:
    member = Member.objects.select_related("business").filter(pk=member_id).first()
    if member is None:
        raise ApiError(404, "not_found", "No such member.")
    return member


def _check_phone(data: dict, business) -> None:
    if data.get("phone"):
        try:
            services.phone_normalise(data["phone"], region=business.country)
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from None


class MemberListView(ManagerAPIView):
    """Members of the business, newest first; `q` searches card code, email, phone and name."""

    serializer_class = s.MemberSerializer

    @extend_schema(
        tags=["members"],
        parameters=[
            OpenApiParameter("q", str, required=False, description="Card code, email, phone digits or name."),
            OpenApiParameter("status", str, enum=["active", "erased"], required=False),
        ],
        responses=s.MemberSerializer(many=True),
    )
    def get(self, request):
        query = request.query_params.get("q", "").replace("\x00", "")
        members = selectors.member_list(query=query, status=request.query_params.get("status", "")).order_by()
        page = self.paginate_queryset(members)
        return self.get_paginated_response(s.MemberSerializer(page, many=True).data)

    @extend_schema(tags=["members"], request=s.MemberCreateSerializer, responses={201: s.MemberSerializer})
    def post(self, request):
        data = s.MemberCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        _check_phone(v, self.business)
        consents = v.pop("consents", None)
        if "timezone" in v:
            v["timezone_name"] = v.pop("timezone")
        member = services.member_create(
            business=self.business, consents=consents, consent_source=ConsentSource.STAFF, **v
        )
        return Response(s.MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberDetailView(ManagerAPIView):
    """One member: read, or change name, phone, email, birthday and time zone."""

    @extend_schema(tags=["members"], responses={200: s.MemberSerializer})
    def get(self, request, member_id: int):
        return Response(s.MemberSerializer(member_or_404(member_id)).data)

    @extend_schema(tags=["members"], request=s.MemberUpdateSerializer, responses={200: s.MemberSerializer})
    def patch(self, request, member_id: int):
        member = member_or_404(member_id)
        data = s.MemberUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if member.status == MemberStatus.ERASED:
            raise ApiError(409, "erased", "An erased member cannot be changed.")
        _check_phone(data.validated_data, self.business)
        member = services.member_update(member=member, **data.validated_data)
        return Response(s.MemberSerializer(member).data)


class MemberEraseView(ManagerAPIView):
    """Erase a member (GDPR): personal data goes, counts stay, every device is signed out."""

    @extend_schema(tags=["members"], request=None, responses={200: s.MemberSerializer})
    def post(self, request, member_id: int):
        member = member_or_404(member_id)
        member = erasure.member_erase(member=member, at=timezone.now())
        credentials.member_tokens_revoke_all(member=member)
        return Response(s.MemberSerializer(member).data)


class MemberVisitsView(ManagerAPIView):
    """A member's card history, newest first."""

    serializer_class = s.PosVisitSerializer
    pagination_class = type("VisitCursor", (Cursor,), {"ordering": ("-occurred_at", "-id")})

    @extend_schema(tags=["members"], responses=s.PosVisitSerializer(many=True))
    def get(self, request, member_id: int):
        member = member_or_404(member_id)
        page = self.paginate_queryset(selectors.member_visits(member=member).order_by())
        return self.get_paginated_response(s.PosVisitSerializer(page, many=True).data)
