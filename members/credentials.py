"""The API's long-lived credentials: member app tokens and point-of-sale API keys.

Secrets are random, shown once, and stored only as SHA-256 digests (they carry 256 bits, so a plain
hash is enough); ``last_used_at`` is written at most every ``LAST_USED_GRANULARITY``. The API reads
them in ``winback.api_auth``.

Member tokens are not knox tokens: a knox ``AuthToken`` belongs to a ``User`` (a foreign key to
``AUTH_USER_MODEL``), and a member is not a user — a customer of one business, with no password and
no account beyond that business (see ``MemberToken``). Owners', managers' and staff's API tokens
are knox's.

Point-of-sale keys are not djangorestframework-api-key's (3.1.0 was evaluated against ``ApiKey``):

* it is a permission class, not an authentication: ``request.user`` stays anonymous, while the API
  needs the key to name the business it acts for (the scope, ``recorded_by``) and the throttles
  count per key — we would use only its manager's lookup;
* its keys are ``<prefix>.<secret>``, found by that prefix: our ``wbk_…`` keys, already handed to
  tills, have no such prefix and are kept only as SHA-256 digests, so no migration can turn them
  into its SHA-512 hashes — every business would have to re-key every till;
* its model's primary key is that ``<prefix>.<hash>`` text, where ours is the integer in the keys
  API's URLs; its manager is not django-scopes' (the tenant enforced by the ORM, STYLE.md) and it
  has no last-used time, no revoking time (a flag that cannot be unset) and names of 50 characters.

What it would bring — a digest, a prefix, revoking, an expiry — is the three functions at the
end of this module, so it is not a dependency.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_scopes import scopes_disabled

from .models import ApiKey, Business, Member, MemberStatus, MemberToken

MEMBER_TOKEN_TTL = timedelta(days=180)
LAST_USED_GRANULARITY = timedelta(minutes=15)  # not a write on every request

MEMBER_TOKEN_PREFIX = "wbm_"
API_KEY_PREFIX = "wbk_"


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class IssuedToken:
    token: MemberToken
    secret: str


# --- member tokens -------------------------------------------------------------------------------


@sensitive_variables("secret")
def member_token_issue(*, member: Member, device_name: str = "", now: datetime | None = None) -> IssuedToken:
    now = now or timezone.now()
    secret = MEMBER_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = MemberToken.objects.create(
        business_id=member.business_id,
        member=member,
        digest=secret_digest(secret),
        device_name=(device_name or "").strip()[:100],
        created_at=now,
        expires_at=now + MEMBER_TOKEN_TTL,
    )
    return IssuedToken(token=token, secret=secret)


@sensitive_variables("secret")
def member_token_authenticate(*, secret: str, now: datetime | None = None) -> MemberToken | None:
    """The live token with this secret, with its member and business; None otherwise.

    Runs before any scope exists: the token is the capability that names the business.
    """
    now = now or timezone.now()
    with scopes_disabled():
        token = (
            MemberToken.objects.select_related("member", "member__business")
            .filter(digest=secret_digest(secret), revoked_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if token is None or token.member.status != MemberStatus.ACTIVE or not token.member.business.is_active:
            return None
        if token.last_used_at is None or token.last_used_at < now - LAST_USED_GRANULARITY:
            MemberToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def member_token_revoke(*, token: MemberToken, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(MemberToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now))


def member_tokens_revoke_all(*, member: Member, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return MemberToken.objects.filter(member=member, revoked_at__isnull=True).update(revoked_at=now)


# --- point-of-sale keys --------------------------------------------------------------------------


@dataclass
class IssuedKey:
    key: ApiKey
    secret: str


@sensitive_variables("secret")
def api_key_create(
    *, business: Business, name: str, created_by=None, expires_in_days: int | None = None, now: datetime | None = None
) -> IssuedKey:
    now = now or timezone.now()
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the key (for example “Front counter till”)."})
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        business=business,
        name=name[:100],
        prefix=secret[:10],
        digest=secret_digest(secret),
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    return IssuedKey(key=key, secret=secret)


@sensitive_variables("secret")
def api_key_authenticate(*, secret: str, now: datetime | None = None) -> ApiKey | None:
    now = now or timezone.now()
    with scopes_disabled():  # the key is the capability that names the business
        key = (
            ApiKey.objects.select_related("business")
            .filter(digest=secret_digest(secret), revoked_at__isnull=True, business__is_active=True)
            .first()
        )
        if key is None or (key.expires_at is not None and key.expires_at <= now):
            return None
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_GRANULARITY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, key: ApiKey, now: datetime | None = None) -> ApiKey:
    now = now or timezone.now()
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.refresh_from_db(fields=["revoked_at"])
    return key
