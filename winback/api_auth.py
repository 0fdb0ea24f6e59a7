"""Who is calling the API, and what each kind of caller may call.

Three kinds of caller, each with its own credentials: a member of the wallet app
(``Authorization: Bearer wbm_…``, ``members.apiauth``'s member tokens), a point-of-sale system
(``Authorization: Bearer wbk_…``, an API key of one business) and a user of a business (a knox
token ``Authorization: Token …``, or the browser session). Authentication names the caller; the
base views (``winback.api``) then resolve its business and scope the request to it.
"""

from __future__ import annotations

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from winback.tenancy import ALL_ROLES, OWNER_ROLES

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


class _BearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <prefix>…``: the secret checked by ``members.credentials``'s
    function of that name (None when unknown, expired or revoked), its holder the principal;
    another prefix is another scheme's. (Read when called: the credentials are models.)"""

    prefix_name = check_name = realm = invalid = ""
    principal_class: type

    def authenticate(self, request):
        from members import credentials

        secret = _bearer(request, getattr(credentials, self.prefix_name))
        if secret is None:
            return None
        credential = getattr(credentials, self.check_name)(secret=secret)
        if credential is None:
            raise exceptions.AuthenticationFailed(self.invalid)
        return self.principal_class(credential), credential

    def authenticate_header(self, request):
        return f'Bearer realm="{self.realm}"'


class MemberTokenAuthentication(_BearerAuthentication):
    """``Authorization: Bearer wbm_…``: a member app device token."""

    prefix_name, check_name, principal_class = "MEMBER_TOKEN_PREFIX", "member_token_authenticate", MemberPrincipal
    realm, invalid = "member", "This token is not valid: it expired or was revoked."


class ApiKeyAuthentication(_BearerAuthentication):
    """``Authorization: Bearer wbk_…``: a point-of-sale API key."""

    prefix_name, check_name, principal_class = "API_KEY_PREFIX", "api_key_authenticate", ApiKeyPrincipal
    realm, invalid = "pos", "This API key is not valid: it expired or was revoked."


# ``Authorization: Token …``: a knox token of an owner, manager or staff user (hashed, expiring,
# one per device; drf-spectacular documents it as ``knoxApiToken``).
UserTokenAuthentication = KnoxTokenAuthentication


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
