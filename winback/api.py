"""What every API endpoint shares: the business scope, throttles, pages, the base views.

Three kinds of caller (``winback.api_auth``), each with its base view:

* a member of the wallet app — ``Authorization: Bearer wbm_…`` (``MemberAPIView``);
* a point-of-sale system — ``Authorization: Bearer wbk_…`` (an API key of one business), or a
  signed-in user of the business of any role (``PointOfSaleAPIView``);
* an owner or manager — the browser session or a knox token ``Authorization: Token …``
  (``ManagerAPIView``); a user of several businesses names one with ``X-Business: <slug>``.

The caller's business is resolved once, right after authentication, and the rest of the request
runs inside ``business_scope``: every object is reached through the scoped managers, so another
business's id is a 404. Errors have one shape (``winback.api_errors``); the schema is
``winback.api_schema``'s. CORS is django-cors-headers' (settings ``CORS_*``), before any of this.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from winback.api_auth import (
    ApiKeyAuthentication,
    ApiKeyPrincipal,
    IsManager,
    IsMember,
    IsPointOfSale,
    IsUser,
    MemberPrincipal,
    MemberTokenAuthentication,
    UserTokenAuthentication,
)
from winback.api_errors import ApiError, ErrorSerializer
from winback.tenancy import business_scope, user_memberships

# The API views import these from here, with the base views.
__all__ = [
    "ALL_AUTHENTICATION",
    "ApiError",
    "ClientIPThrottle",
    "Cursor",
    "ErrorSerializer",
    "IsUser",
    "ManagerAPIView",
    "MemberAPIView",
    "PointOfSaleAPIView",
    "PublicAPIView",
    "ScopedAPIView",
    "ScopedThrottle",
    "client_ip",
]


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
