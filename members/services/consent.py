"""Contact details and consent: phones read as E.164, the suppression list, consent per channel."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from phonenumbers import geocoder

from ..models import (
    CHANNELS,
    Business,
    ConsentEvent,
    Member,
    Suppression,
)


def phone_normalise(raw: str, *, region: str) -> str:
    """Return ``raw`` as E.164, reading a local number in ``region``; raise ValidationError."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"“{raw}” is not a phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"“{raw}” is not a valid phone number{_phone_hint(region)}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone_hint(region: str) -> str:
    """“ in Malaysia: enter it like 012-345 6789 or with +60”, from the region's example mobile."""
    example = phonenumbers.example_number_for_type(region or None, phonenumbers.PhoneNumberType.MOBILE)
    if not region or example is None:
        return " (enter it with its country code, like +44 7400 123456)"
    country = geocoder.country_name_for_number(example, "en") or region
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return f" in {country}: enter it like {national} or with +{example.country_code}"


def suppression_digest(*, business: Business, value: str) -> str:
    return hashlib.sha256(f"{business.pk}:{value.strip().lower()}".encode()).hexdigest()


def member_is_suppressed(*, business: Business, phone: str, email: str) -> bool:
    return bool(suppressed_values(business=business, values=[phone, email]))


# Digests per query when a whole file is checked: well under PostgreSQL's 65,535 parameters.
SUPPRESSION_CHUNK = 10_000


def suppressed_values(*, business: Business, values: Iterable[str]) -> set[str]:
    """Those of ``values`` (phones, emails) on the business's suppression list: one query per
    10,000 values, not one per member (an import checks its whole file at once)."""
    by_digest = {suppression_digest(business=business, value=v): v for v in values if v}
    digests = list(by_digest)
    found: set[str] = set()
    for start in range(0, len(digests), SUPPRESSION_CHUNK):
        part = digests[start : start + SUPPRESSION_CHUNK]
        found.update(Suppression.objects.filter(business=business, digest__in=part).values_list("digest", flat=True))
    return {by_digest[d] for d in found}


@transaction.atomic
def member_consent_set(
    *,
    member: Member,
    channel: str,
    granted: bool,
    source: str,
    at: datetime | None = None,
    note: str = "",
    unless_changed_since: datetime | None = None,
) -> bool:
    """Grant or withdraw one channel; returns whether anything changed. History is kept.

    ``unless_changed_since``: the instant the news is about (a provider's late report on a
    message sent then). A change recorded after it is newer news — the member's START after
    the carrier's STOP — and this one then changes nothing."""
    if channel not in CHANNELS:
        raise ValidationError({"channel": f"Unknown channel “{channel}”."})
    at = at or timezone.now()
    field = f"consent_{channel}"
    if unless_changed_since is not None and (
        ConsentEvent.objects.filter(
            business_id=member.business_id, member_id=member.pk, channel=channel, occurred_at__gt=unless_changed_since
        ).exists()
    ):
        return False
    changed = Member.objects.filter(pk=member.pk).exclude(**{field: granted}).update(**{field: granted})
    setattr(member, field, granted)
    if changed:
        ConsentEvent.objects.create(
            business_id=member.business_id,
            member=member,
            channel=channel,
            granted=granted,
            source=source,
            occurred_at=at,
            note=note,
        )
    return bool(changed)
