"""Signing in to the member app: joining, one-time codes by text or email, and their exchange
for a member token (``members.credentials``).

Six-digit codes are random, sent once and stored only as an HMAC keyed by ``SECRET_KEY`` (a plain
hash of a six-digit code is reversed in a millisecond). Phones, emails and client addresses kept
for the rate limits are keyed hashes too. Where a code may be texted is ``members.sms_destinations``'.
Nothing here logs a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_scopes import scopes_disabled

from .credentials import IssuedToken, member_token_issue
from .models import (
    CHANNELS,
    Business,
    CodeDelivery,
    ConsentSource,
    Member,
    MemberStatus,
    OneTimeCode,
)
from .services import member_create, phone_normalise
from .sms_destinations import sms_destination_check

CODE_TTL = timedelta(minutes=10)
CODE_MAX_ATTEMPTS = 5  # wrong guesses before a code is dead
CODES_PER_IDENTIFIER = 5  # per CODE_LIMIT_WINDOW
CODES_PER_CLIENT = 20  # per CODE_LIMIT_WINDOW, across identifiers
CODE_LIMIT_WINDOW = timedelta(hours=1)


# SMS pumping: the per-business caps (settings, or the business's ``channel_settings["sign_in"]``).
BUSINESS_WINDOWS = ((timedelta(hours=1), "codes_per_hour", "SIGN_IN_CODES_PER_BUSINESS_HOUR", "the last hour"),
                    (timedelta(hours=24), "codes_per_day", "SIGN_IN_CODES_PER_BUSINESS_DAY", "the last 24 hours"))  # fmt: skip


class CodeRateLimited(Exception):
    def __init__(self, retry_after: int, message: str = ""):
        super().__init__(message or "too many codes requested")
        self.retry_after = retry_after
        self.message = message  # said to the caller when set (the business's cap); else the generic answer


class CodeInvalid(Exception):
    """Wrong, expired, used or unknown: the caller is not told which."""


def _keyed_digest(purpose: str, value: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def identifier_normalise(*, business: Business, phone: str = "", email: str = "") -> tuple[str, str]:
    """(channel, value): an E.164 phone (read in the business's country) that a code can be texted
    to, or a lower-cased email.

    A phone in a country the business does not text, or of a kind that cannot receive a text
    (a landline, premium-rate, shared-cost…), is a ValidationError on ``phone`` that says so; it
    depends on the number alone, never on whether it is a member's."""
    if phone:
        try:
            value = phone_normalise(phone, region=business.country)
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from None
        sms_destination_check(business=business, phone=value)
        return "sms", value
    return "email", email.strip().lower()


def _identifier_digest(business: Business, value: str) -> str:
    return _keyed_digest(f"identifier:{business.pk}", value)


# --- one-time codes ------------------------------------------------------------------------------


@dataclass
class CodeRequest:
    code: OneTimeCode
    sent: bool  # queued for a member (the answer to the caller is the same either way)


@sensitive_variables("code")
def code_request(
    *, business: Business, phone: str = "", email: str = "", client_ip: str, now: datetime | None = None
) -> CodeRequest:
    """Send a sign-in code to the active member with this phone or email, if there is one.

    Rate-limited per identifier and per client address from the rows themselves (so the limits
    hold across processes and cannot be reset by a header): raises ``CodeRateLimited``. The code
    is queued, not sent here: a worker sends it (``notifications.codes.code_send``, with retries), so a provider's
    trouble never changes the answer to the member app.
    """
    from .tasks import code_send_task

    now = now or timezone.now()
    channel, value = identifier_normalise(business=business, phone=phone, email=email)
    identifier = _identifier_digest(business, value)
    ip = _keyed_digest("ip", client_ip or "unknown")
    _code_limits_check(business=business, identifier=identifier, ip=ip, now=now)
    member = _member_by_identifier(business=business, channel=channel, value=value)
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = OneTimeCode.objects.create(
        business=business,
        member=member,
        identifier_digest=identifier,
        ip_digest=ip,
        channel=channel,
        # Without a member the row only counts for the limits: no code can ever match it.
        code_digest=_keyed_digest(f"code:{identifier}", code) if member else "",
        created_at=now,
        expires_at=now + CODE_TTL,
        delivery_status=CodeDelivery.QUEUED if member else CodeDelivery.NONE,
    )
    if member is None:
        return CodeRequest(code=row, sent=False)
    # Enqueued after commit: a rolled-back request sends no code. The plaintext code travels in
    # the task's arguments only; the database keeps its HMAC.
    code_send_task.delay_on_commit(business_id=business.pk, code_id=row.pk, code=code)
    return CodeRequest(code=row, sent=True)


def _code_limits_check(*, business: Business, identifier: str, ip: str, now: datetime) -> None:
    """Raise ``CodeRateLimited`` when this client address or this phone or email asked too often."""
    since = now - CODE_LIMIT_WINDOW
    with scopes_disabled():  # the per-client limit counts requests to every business
        per_client = OneTimeCode.objects.filter(ip_digest=ip, created_at__gt=since)
        oldest_client = per_client.order_by("created_at").values_list("created_at", flat=True)
        if per_client.count() >= CODES_PER_CLIENT:
            raise CodeRateLimited(_retry_after(oldest_client[0], now))
    per_identifier = OneTimeCode.objects.filter(business=business, identifier_digest=identifier, created_at__gt=since)
    if per_identifier.count() >= CODES_PER_IDENTIFIER:
        first = per_identifier.order_by("created_at").values_list("created_at", flat=True)[0]
        raise CodeRateLimited(_retry_after(first, now))
    _business_cap_check(business=business, now=now)


def _business_cap_check(*, business: Business, now: datetime) -> None:
    """Raise ``CodeRateLimited`` with the reason when the business sent its hourly or daily share of
    codes. Every request counts, a member's or not (the row is made either way): counting only
    members' codes would let a caller at the cap learn whether a number is a member's."""
    own = (business.channel_settings or {}).get("sign_in") or {}
    for window, key, setting, said in BUSINESS_WINDOWS:
        cap = int(own.get(key) or getattr(settings, setting))
        # Served by otc_business_recent (business, -created_at).
        recent = OneTimeCode.objects.filter(business=business, created_at__gt=now - window)
        count = recent.count()
        if count < cap:
            continue
        # Below the cap again once the (count - cap + 1) oldest rows have left the window.
        freed = recent.order_by("created_at").values_list("created_at", flat=True)[count - cap]
        remaining = (freed + window - now).total_seconds()
        wait = f"{math.ceil(remaining / 60)} minutes" if window <= timedelta(hours=1) else (
            f"{math.ceil(remaining / 3600)} hours")  # fmt: skip
        message = f"Too many sign-in codes were sent for this business in {said}; try again in {wait}."
        raise CodeRateLimited(max(1, int(remaining) + 1), message=message)


def _member_by_identifier(*, business: Business, channel: str, value: str) -> Member | None:
    """The active member of ``business`` with this phone (channel ``sms``) or email, if any."""
    if not value:
        return None
    lookup = {"phone": value} if channel == "sms" else {"email": value}
    return Member.objects.filter(business=business, status=MemberStatus.ACTIVE, **lookup).order_by("pk").first()


def _retry_after(oldest: datetime, now: datetime) -> int:
    return max(1, int((oldest + CODE_LIMIT_WINDOW - now).total_seconds()) + 1)


# What each channel needs to reach a member who joins: push needs a subscription, made later.
CONSENT_NEEDS = {"sms": "sms", "whatsapp": "sms", "email": "email"}
CONSENT_NEEDS_MESSAGE = {"sms": "Give a phone number to get text messages.",
                         "whatsapp": "Give a phone number to get WhatsApp messages.",
                         "email": "Give an email address to get emails."}  # fmt: skip


def member_join(
    *,
    business: Business,
    first_name: str,
    last_name: str = "",
    phone: str = "",
    email: str = "",
    consents: dict[str, bool] | None = None,
    client_ip: str,
    now: datetime | None = None,
) -> CodeRequest:
    """A person joins the program from the member app: a new member with exactly the consents they
    ticked (recorded with source ``signup``), then a sign-in code to the phone or email, exchanged
    for a token as at sign-in.

    A phone or email that already belongs to an active member of the business creates nobody and
    changes nothing of that member (whoever typed it has not yet shown the phone or inbox is
    theirs: the name and consents stay the member's); the member gets a sign-in code instead, and
    the caller cannot tell the two cases apart. A phone or email on the suppression list (an
    erased member's) joins without consent, as every member creation does. Rate-limited like
    ``code_request``, before anyone is created.
    """
    now = now or timezone.now()
    channel, value = identifier_normalise(business=business, phone=phone, email=email)
    granted = {c: True for c, v in (consents or {}).items() if v and c in CHANNELS}
    unreachable = {
        f"consents.{c}": CONSENT_NEEDS_MESSAGE[c] for c in granted if CONSENT_NEEDS.get(c, channel) != channel
    }
    if unreachable:
        raise ValidationError(unreachable)
    identifier = _identifier_digest(business, value)
    ip = _keyed_digest("ip", client_ip or "unknown")
    with transaction.atomic():
        # Two joins with one phone at once must not make two members: the joins of a business
        # queue on its row (NO KEY UPDATE, so rows that reference the business are not held up).
        Business.objects.select_for_update(no_key=True).filter(pk=business.pk).values_list("pk").get()
        _code_limits_check(business=business, identifier=identifier, ip=ip, now=now)
        if _member_by_identifier(business=business, channel=channel, value=value) is None:
            member_create(
                business=business,
                first_name=first_name,
                last_name=last_name,
                phone=value if channel == "sms" else "",
                email=value if channel == "email" else "",
                consents=granted,
                consent_source=ConsentSource.SIGNUP,
                at=now,
            )
        return code_request(
            business=business,
            phone=value if channel == "sms" else "",
            email=value if channel == "email" else "",
            client_ip=client_ip,
            now=now,
        )


@sensitive_variables("code", "secret")
def code_exchange(
    *,
    business: Business,
    phone: str = "",
    email: str = "",
    code: str,
    device_name: str = "",
    now: datetime | None = None,
) -> IssuedToken:
    """Exchange the newest open code of this phone or email for a member token, exactly once.

    Every wrong guess uses up one of the code's attempts; raises ``CodeInvalid`` for a wrong,
    expired, used or exhausted code alike.
    """
    now = now or timezone.now()
    try:
        _, value = identifier_normalise(business=business, phone=phone, email=email)
    except ValidationError:
        raise CodeInvalid() from None
    identifier = _identifier_digest(business, value)
    row = (
        OneTimeCode.objects.filter(
            business=business,
            identifier_digest=identifier,
            used_at__isnull=True,
            expires_at__gt=now,
            member__isnull=False,
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if row is None:
        raise CodeInvalid()
    # Count the attempt first, conditionally: concurrent guesses cannot exceed the limit.
    counted = OneTimeCode.objects.filter(pk=row.pk, used_at__isnull=True, attempts__lt=CODE_MAX_ATTEMPTS).update(
        attempts=F("attempts") + 1
    )
    if not counted:
        raise CodeInvalid()
    expected = _keyed_digest(f"code:{identifier}", (code or "").strip())
    if not hmac.compare_digest(expected, row.code_digest):
        raise CodeInvalid()
    with transaction.atomic():
        # Single use: of two exchanges of one code at once, one marks it used.
        if not OneTimeCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
            raise CodeInvalid()
        member = Member.objects.filter(pk=row.member_id, status=MemberStatus.ACTIVE).first()
        if member is None:
            raise CodeInvalid()
        return member_token_issue(member=member, device_name=device_name, now=now)
