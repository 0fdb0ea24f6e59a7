"""Members created and changed."""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import (
    CHANNELS,
    Business,
    ConsentEvent,
    ConsentSource,
    Member,
    MemberStatus,
)
from .consent import member_is_suppressed, phone_normalise


def member_create(
    *,
    business: Business,
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    email: str = "",
    birthday: date | None = None,
    joined_on: date | None = None,
    card_code: str | None = None,
    timezone_name: str = "",
    consents: dict[str, bool] | None = None,
    consent_source: str = ConsentSource.STAFF,
    at: datetime | None = None,
) -> Member:
    """Create a member; a phone or email on the suppression list gets no consent."""
    at = at or timezone.now()
    member = Member(
        business=business,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        phone=phone_normalise(phone, region=business.country),
        email=(email or "").strip().lower(),
        birthday=birthday,
        joined_on=joined_on or timezone.localdate(at, business.tzinfo),
        timezone=timezone_name,
    )
    if card_code:
        member.card_code = card_code.strip().upper()
    member.full_clean(exclude=["business"])
    if Member.objects.filter(business=business, card_code=member.card_code).exists():
        raise ValidationError({"card_code": f"Card code {member.card_code} is already in use."})
    suppressed = member_is_suppressed(business=business, phone=member.phone, email=member.email)
    granted = {} if suppressed else {c: bool(v) for c, v in (consents or {}).items() if c in CHANNELS}
    for channel, value in granted.items():
        setattr(member, f"consent_{channel}", value)
    member.save()
    ConsentEvent.objects.bulk_create(
        ConsentEvent(business=business, member=member, channel=c, granted=True, source=consent_source, occurred_at=at)
        for c, v in granted.items()
        if v
    )
    return member


@transaction.atomic
def member_update(*, member: Member, **fields) -> Member:
    allowed = {"first_name", "last_name", "phone", "email", "birthday", "timezone"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"member_update cannot change {', '.join(sorted(unknown))}")
    if member.status == MemberStatus.ERASED:
        raise ValidationError("An erased member cannot be changed.")
    if "phone" in fields:
        fields["phone"] = phone_normalise(fields["phone"], region=member.business.country)
    if "email" in fields:
        fields["email"] = (fields["email"] or "").strip().lower()
    for name, value in fields.items():
        setattr(member, name, value)
    member.full_clean(exclude=["business"])
    member.save(update_fields=list(fields))
    return member
