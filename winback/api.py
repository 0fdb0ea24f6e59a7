"""What every API endpoint shares: who is calling, the business scope, errors, pages, throttles.

Three kinds of caller, each with its own authentication and base view:

* a member of the wallet app — ``Authorization: Bearer wbm_…`` (``MemberAPIView``);
* a point-of-sale system — ``Authorization: Bearer wbk_…`` (an API key of one business), or a
  signed-in user of the business of any role (``PointOfSaleAPIView``);
* an owner or manager — the browser session or a knox token ``Authorization: Token …``
  (``ManagerAPIView``); a user of several businesses names one with ``X-Business: <slug>``.

The caller's business is resolved once, right after authentication, and the rest of the request
runs inside ``business_scope``: every object is reached through the scoped managers, so another
business's id is a 404. Every error has one shape::

    {"error": {"code": "invalid", "message": "…", "fields": {"name": ["…"]}}}
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from winback.tenancy import ALL_ROLES, OWNER_ROLES, business_scope, user_memberships

# --- who is calling ------------------------------------------------------------------------------


class MemberPrincipal:
    """``request.user`` for a member of the wallet app."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, token):
        self.token = token
        self.member = token.member
        self.business = token.member.business

    @property
    def identity(self) -> str:
        return f"member:{self.member.pk}"

    def __str__(self) -> str:
        return self.identity


class ApiKeyPrincipal:
    """``request.user`` for a point-of-sale system."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, key):
        self.key = key
        self.business = key.business

    @property
    def identity(self) -> str:
        return f"apikey:{self.key.pk}"

    def __str__(self) -> str:
        return self.identity


def _bearer(request, prefix: str) -> str | None:
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        secret = parts[1].decode()
    except UnicodeError:
        return None
    return secret if secret.startswith(prefix) else None


class MemberTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer wbm_…``: a member app device token."""

    def authenticate(self, request):
        from members.apiauth import MEMBER_TOKEN_PREFIX, member_token_authenticate

        secret = _bearer(request, MEMBER_TOKEN_PREFIX)
        if secret is None:
            return None
        token = member_token_authenticate(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed("This token is not valid: it expired or was revoked.")
        return MemberPrincipal(token), token

    def authenticate_header(self, request):
        return 'Bearer realm="member"'


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer wbk_…``: a point-of-sale API key."""

    def authenticate(self, request):
        from members.apiauth import API_KEY_PREFIX, api_key_authenticate

        secret = _bearer(request, API_KEY_PREFIX)
        if secret is None:
            return None
        key = api_key_authenticate(secret=secret)
        if key is None:
            raise exceptions.AuthenticationFailed("This API key is not valid: it expired or was revoked.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="pos"'


# ``Authorization: Token …``: a knox token of an owner, manager or staff user (hashed, expiring,
# one per device; drf-spectacular documents it as ``knoxApiToken``).
UserTokenAuthentication = KnoxTokenAuthentication


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = MemberTokenAuthentication
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "posApiKey"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


# --- permissions ---------------------------------------------------------------------------------


class IsMember(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, MemberPrincipal)


class IsPointOfSale(BasePermission):
    """An API key, or a user of any role in the business."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, ApiKeyPrincipal):
            return True
        return view.membership is not None and view.membership.role in ALL_ROLES


class IsUser(BasePermission):
    """A signed-in user (not a member token or an API key)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return getattr(user, "is_authenticated", False) and not isinstance(user, MemberPrincipal | ApiKeyPrincipal)


class IsManager(BasePermission):
    """An owner or manager of the business."""

    message = "Only owners and managers of this business may do this."

    def has_permission(self, request, view) -> bool:
        return view.membership is not None and view.membership.role in OWNER_ROLES


# --- throttles -----------------------------------------------------------------------------------


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with ``NUM_PROXIES`` = N trusted proxies in front,
    the address the outermost of them saw (the Nth from the right of ``X-Forwarded-For``, which
    those proxies append). A client's own ``X-Forwarded-For`` entries are never read, so a forged
    header cannot reset its limits."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",")]
    return addresses[-min(proxies, len(addresses))] or remote


class ScopedThrottle(ScopedRateThrottle):
    """Rates per view ``throttle_scope`` (settings ``DEFAULT_THROTTLE_RATES``), counted per
    authenticated identity (member, API key, user) or else per client address."""

    def get_rate(self):
        # Read at each request (DRF binds the rates when it is imported): settings stay settings.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate for scope {self.scope!r}") from None

    def get_ident(self, request):
        return client_ip(request)

    def get_cache_key(self, request, view):
        user = request.user
        if isinstance(user, MemberPrincipal | ApiKeyPrincipal):
            ident = user.identity
        elif getattr(user, "is_authenticated", False):
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ClientIPThrottle(ScopedThrottle):
    """Always per client address (sign-in), whoever the caller says they are."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": f"ip:{self.get_ident(request)}"}


# --- pages ---------------------------------------------------------------------------------------


class Cursor(CursorPagination):
    """Cursor pages, newest first: stable under inserts, no count query."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-id"


# --- the base views ------------------------------------------------------------------------------


class ScopedAPIView(GenericAPIView):
    """Authenticates, resolves the caller's business, and runs the rest inside its scope."""

    business = None
    membership = None
    pagination_class = Cursor
    throttle_classes = [ScopedThrottle]

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._scope = stack
            return super().dispatch(request, *args, **kwargs)

    def perform_authentication(self, request) -> None:
        user = request.user  # authenticates
        self.business, self.membership = self.business_of(request, user)
        if self.business is not None:
            self._scope.enter_context(business_scope(self.business))
            timezone.activate(self.business.tzinfo)
            self._scope.callback(timezone.deactivate)

    def business_of(self, request, user):
        if isinstance(user, MemberPrincipal | ApiKeyPrincipal):
            return user.business, None
        if not getattr(user, "is_authenticated", False):
            return None, None
        memberships = user_memberships(user)
        wanted = request.headers.get("X-Business", "").strip()
        if wanted:
            membership = next((m for m in memberships if m.business.slug == wanted), None)
            if membership is None:
                raise exceptions.NotFound("You are not a member of this business.")
            return membership.business, membership
        # The browser's current business (switchable), else the user's first.
        current = getattr(request._request, "membership", None)
        membership = current if current in memberships else (memberships[0] if memberships else None)
        return (membership.business, membership) if membership else (None, None)


# Every scoped view recognises every kind of credential, so a caller of the wrong kind is told
# 403 (authenticated, not allowed) rather than 401; the schema documents only the right kind.
ALL_AUTHENTICATION = [MemberTokenAuthentication, ApiKeyAuthentication, UserTokenAuthentication, SessionAuthentication]


class MemberAPIView(ScopedAPIView):
    authentication_classes = ALL_AUTHENTICATION
    documented_auth = ["memberToken"]
    permission_classes = [IsMember]
    throttle_scope = "member"

    @property
    def member(self):
        return self.request.user.member


class PointOfSaleAPIView(ScopedAPIView):
    authentication_classes = ALL_AUTHENTICATION
    documented_auth = ["posApiKey", "knoxApiToken", "cookieAuth"]
    permission_classes = [IsPointOfSale]
    throttle_scope = "pos"

    @property
    def recorded_by(self):
        return None if isinstance(self.request.user, ApiKeyPrincipal) else self.request.user


class ManagerAPIView(ScopedAPIView):
    authentication_classes = ALL_AUTHENTICATION
    documented_auth = ["knoxApiToken", "cookieAuth"]
    permission_classes = [IsManager]
    throttle_scope = "manager"


class PublicAPIView(APIView):
    """No caller yet (sign-in): the view enters the business's scope itself."""

    authentication_classes: list = []
    permission_classes: list = []


# --- errors --------------------------------------------------------------------------------------


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, dict | list):
                for k, v in _flatten(value, f"{prefix}.{i}" if prefix else str(i)).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or "non_field_errors", []).append(str(value))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def django_validation_error_to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError({field: list(messages) for field, messages in exc.message_dict.items()})
    return exceptions.ValidationError({"non_field_errors": exc.messages})


def exception_handler(exc, context):
    """Every error in one shape, with the right status."""
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_error_to_drf(exc)
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    fields: dict[str, list[str]] = {}
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", [])
        message = " ".join(general) if general else "Some fields are not valid."
        code = getattr(exc, "error_code", "invalid")
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        message = (
            str(detail)
            if not isinstance(detail, dict | list)
            else "; ".join(f"{k}: {' '.join(v)}" for k, v in _flatten(detail).items())
        )
        code = getattr(exc, "error_code", None) or getattr(detail, "code", None) or code
    response.data = {"error": {"code": str(code), "message": message, "fields": fields}}
    return response


@csrf_exempt
def not_found(request, *args, **kwargs) -> HttpResponse:
    from django.http import JsonResponse

    body = {"error": {"code": "not_found", "message": "No such endpoint.", "fields": {}}}
    return JsonResponse(body, status=404)


class ApiError(exceptions.APIException):
    """An error with its own code and status: ``raise ApiError(409, "already_redeemed", "…")``."""

    def __init__(self, status_code: int, code: str, message: str):
        self.status_code = status_code
        self.error_code = code
        super().__init__(detail=message, code=code)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `invalid`, `not_found`.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field errors by field name (empty unless the request body was invalid).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# --- the schema ----------------------------------------------------------------------------------

ERROR_STATUSES = {
    "400": "The request is not valid (see `error.fields`).",
    "401": "Not authenticated, or the credentials expired or were revoked.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such object in this business (another business's object looks the same).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "415": "Unsupported media type.",
    "429": "Too many requests: wait `Retry-After` seconds.",
}


class WinbackAutoSchema(AutoSchema):
    """Documents the one error shape under every status an endpoint can answer with, and only
    the credentials each kind of endpoint is for."""

    def get_auth(self):
        auth = super().get_auth()
        documented = getattr(self.view, "documented_auth", None)
        if documented is None:
            return auth
        return [entry for entry in auth if set(entry) & set(documented)]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        extra = getattr(self.view, "error_statuses", {})
        for code, description in {**ERROR_STATUSES, **extra}.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = description
        return responses
