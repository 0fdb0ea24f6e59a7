"""Every write on businesses, members and the visit ledger."""

from __future__ import annotations

import hashlib
import operator
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import reduce

import phonenumbers
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Replace
from django.utils import timezone
from phonenumbers import geocoder

from .models import (
    CHANNELS,
    NOT_IN_PERSON,
    Business,
    ConsentEvent,
    ConsentSource,
    Invitation,
    Member,
    Membership,
    MemberStatus,
    Role,
    Suppression,
    Visit,
    VisitKind,
)

User = get_user_model()


ERASED = "[erased]"  # what stands where an erased member's phone or email was quoted


class DuplicateIdempotencyKey(ValidationError):
    """The key was already used for a different member or a different visit."""


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


@transaction.atomic
def visit_record(
    *,
    member: Member,
    kind: str,
    stamps: int = 0,
    points: int = 0,
    amount: Decimal | None = None,
    occurred_at: datetime | None = None,
    recorded_by=None,
    source: str,
    idempotency_key: str | None = None,
    note: str = "",
) -> Visit:
    """Record one visit and keep the member's balances and denormalised fields right.

    Only purchases move ``last_purchase_at`` and ``purchase_count``; a backdated purchase never
    moves ``last_purchase_at`` back. With an ``idempotency_key`` already used for this member, the
    first visit is returned (``visit.replayed`` is True) and nothing changes. Concurrency-safe: the
    member row is locked for the update, and a concurrent insert of the same key loses to the
    unique constraint and returns the winner's visit.
    """
    if kind not in VisitKind.values:
        raise ValidationError({"kind": f"Unknown visit kind “{kind}”."})
    occurred_at = occurred_at or timezone.now()
    if timezone.is_naive(occurred_at):
        raise ValueError("occurred_at must be aware")
    if occurred_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"occurred_at": "A visit cannot be recorded in the future."})
    if amount is not None and amount < 0:
        raise ValidationError({"amount": "The amount spent cannot be negative."})
    if kind == VisitKind.PURCHASE and (stamps < 0 or points < 0):
        raise ValidationError({"stamps": "A purchase cannot take stamps or points away."})
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()
        if not idempotency_key or len(idempotency_key) > 100 or "\x00" in idempotency_key:
            raise ValidationError({"idempotency_key": "The idempotency key must be 1–100 characters."})
        existing = _visit_by_key(member=member, key=idempotency_key)
        if existing is not None:
            return existing

    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.status == MemberStatus.ERASED:
        raise ValidationError("This member has been erased; no visit can be recorded.")
    if locked.stamps_balance + stamps < 0:
        raise ValidationError({"stamps": f"The card has only {locked.stamps_balance} stamps."})
    if locked.points_balance + points < 0:
        raise ValidationError({"points": f"The card has only {locked.points_balance} points."})

    visit = Visit(
        business_id=member.business_id,
        member=locked,
        kind=kind,
        stamps_delta=stamps,
        points_delta=points,
        amount=amount,
        occurred_at=occurred_at,
        recorded_by=recorded_by,
        source=source,
        idempotency_key=idempotency_key,
        note=note,
    )
    if idempotency_key is not None:
        try:
            with transaction.atomic():
                visit.save()
        except IntegrityError:
            # Another request with the same key committed first: answer with its visit.
            existing = _visit_by_key(member=member, key=idempotency_key)
            if existing is None:
                raise
            return existing
    else:
        visit.save()

    locked.stamps_balance += stamps
    locked.points_balance += points
    fields = ["stamps_balance", "points_balance"]
    if kind not in NOT_IN_PERSON:
        locked.visit_count += 1
        locked.last_visit_at = max(filter(None, [locked.last_visit_at, occurred_at]))
        fields += ["visit_count", "last_visit_at"]
    if kind == VisitKind.PURCHASE:
        locked.purchase_count += 1
        locked.last_purchase_at = max(filter(None, [locked.last_purchase_at, occurred_at]))
        locked.total_spent += amount or Decimal("0")
        fields += ["purchase_count", "last_purchase_at", "total_spent"]
    locked.save(update_fields=fields)
    for name in fields:
        setattr(member, name, getattr(locked, name))
    visit.member = member
    visit.replayed = False
    return visit


def _visit_by_key(*, member: Member, key: str) -> Visit | None:
    visit = Visit.objects.filter(business_id=member.business_id, idempotency_key=key).first()
    if visit is None:
        return None
    if visit.member_id != member.pk:
        raise DuplicateIdempotencyKey({"idempotency_key": "This idempotency key was already used for another member."})
    visit.replayed = True
    return visit


def members_recompute_totals(*, business: Business, member_ids: list[int] | None = None) -> int:
    """Rebuild balances and denormalised fields from the ledger, set-based (imports, demo data).

    One grouped pass over the members' visits joined back in a single ``UPDATE … FROM``: a
    correlated subquery per figure and member took most of a 100,000-row import.
    """
    qn = connection.ops.quote_name
    member, visit = Member._meta, Visit._meta

    def col(opts, name: str) -> str:
        return qn(opts.get_field(name).column)

    in_person = f"v.{col(visit, 'kind')} NOT IN ({', '.join(['%s'] * len(NOT_IN_PERSON))})"
    purchase = f"v.{col(visit, 'kind')} = %s"
    figures = {
        "stamps_balance": f"COALESCE(SUM(v.{col(visit, 'stamps_delta')}), 0)",
        "points_balance": f"COALESCE(SUM(v.{col(visit, 'points_delta')}), 0)",
        "visit_count": f"COUNT(v.{col(visit, 'id')}) FILTER (WHERE {in_person})",
        "last_visit_at": f"MAX(v.{col(visit, 'occurred_at')}) FILTER (WHERE {in_person})",
        "purchase_count": f"COUNT(v.{col(visit, 'id')}) FILTER (WHERE {purchase})",
        "last_purchase_at": f"MAX(v.{col(visit, 'occurred_at')}) FILTER (WHERE {purchase})",
        "total_spent": f"COALESCE(SUM(v.{col(visit, 'amount')}) FILTER (WHERE {purchase}), 0)",
    }
    params: list = []
    for expression in figures.values():
        params += [str(k) for k in NOT_IN_PERSON] * expression.count("NOT IN") + [
            str(VisitKind.PURCHASE)
        ] * expression.count(" = %s")
    params.append(business.pk)
    where = f"m.{col(member, 'business')} = %s"
    if member_ids is not None:
        if not member_ids:
            return 0
        where += f" AND m.{col(member, 'id')} IN ({', '.join(['%s'] * len(member_ids))})"
        params += list(member_ids)
    table = qn(member.db_table)
    sql = (
        f"UPDATE {table} SET {', '.join(f'{col(member, f)} = t.{qn(f)}' for f in figures)} "
        f"FROM (SELECT m.{col(member, 'id')} AS member_id, "
        f"{', '.join(f'{e} AS {qn(f)}' for f, e in figures.items())} "
        f"FROM {table} m LEFT JOIN {qn(visit.db_table)} v "
        f"ON v.{col(visit, 'business')} = m.{col(member, 'business')} AND v.{col(visit, 'member')} = m.{col(member, 'id')} "
        f"WHERE {where} GROUP BY m.{col(member, 'id')}) t "
        f"WHERE {table}.{col(member, 'id')} = t.member_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@transaction.atomic
def member_erase(*, member: Member, at: datetime | None = None) -> Member:
    """GDPR erasure: personal data goes, anonymous counts stay, a hashed suppression entry stays."""
    at = at or timezone.now()
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == MemberStatus.ERASED:
        return member
    business = member.business
    for value in (member.phone, member.email):
        if value:
            Suppression.objects.get_or_create(
                business=business, digest=suppression_digest(business=business, value=value)
            )
    for channel in CHANNELS:
        member_consent_set(member=member, channel=channel, granted=False, source=ConsentSource.ERASURE, at=at)
    Visit.objects.filter(member=member).exclude(note="").update(note="")
    ConsentEvent.objects.filter(member=member).exclude(note="").update(note="")
    _member_messages_scrub(member=member)
    member.first_name = ""
    member.last_name = ""
    member.phone = ""
    member.email = ""
    member.birthday = None
    member.card_code = f"ERASED-{member.pk}"
    member.status = MemberStatus.ERASED
    member.erased_at = at
    member.save()
    return member


def _member_messages_scrub(*, member: Member) -> None:
    """What we kept of the member's messages loses their personal data, set-based: the recorded
    messages to them (their deliveries', and the sign-in codes sent to their phone or email,
    which have no delivery) keep only channel and time; the deliveries' provider errors, which
    quote the address, lose it. Statuses and counts stay."""
    from notifications.models import Delivery, DeliveryEvent, RecordedMessage  # notifications builds on members

    addresses = [v for v in (member.phone, member.email) if v]
    RecordedMessage.objects.filter(
        Q(delivery__member_id=member.pk) | Q(delivery__isnull=True, to__in=addresses), business_id=member.business_id
    ).update(to="", title="", body="", payload={})
    if not addresses:
        return

    def scrubbed(field: str):
        expression = F(field)
        for value in addresses:
            expression = Replace(expression, Value(value), Value(ERASED))
        return expression

    def quoting(field: str) -> Q:
        return reduce(operator.or_, (Q(**{f"{field}__contains": v}) for v in addresses))

    mine = {"business_id": member.business_id}
    Delivery.objects.filter(quoting("last_error"), **mine, member_id=member.pk).update(
        last_error=scrubbed("last_error")
    )
    DeliveryEvent.objects.filter(quoting("detail"), **mine, delivery__member_id=member.pk).update(
        detail=scrubbed("detail")
    )


# --- businesses, staff and invitations -------------------------------------------------------


@transaction.atomic
def business_create(*, name: str, slug: str, owner, **fields) -> Business:
    business = Business(name=name, slug=slug, **fields)
    business.full_clean()
    business.save()
    Membership.objects.create(business=business, user=owner, role=Role.OWNER)
    return business


def business_update(*, business: Business, **fields) -> Business:
    allowed = {"name", "timezone", "currency", "country", "program_type", "stamps_per_card", "frequency_cap_days"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"business_update cannot change {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(business, name, value)
    business.full_clean()
    business.save(update_fields=list(fields))
    return business


def business_channels_set(
    *,
    business: Business,
    push_enabled: bool,
    email_enabled: bool,
    sms_enabled: bool,
    whatsapp_enabled: bool,
    email_from_name: str = "",
    sms_sender: str = "",
    whatsapp_sender: str = "",
    whatsapp_template: str = "",
) -> Business:
    """Which channels are set up, and their senders (credentials stay in the environment)."""
    settings_ = dict(business.channel_settings or {})
    settings_["push"] = {**settings_.get("push", {}), "enabled": push_enabled}
    settings_["email"] = {**settings_.get("email", {}), "enabled": email_enabled, "from_name": email_from_name}
    settings_["sms"] = {**settings_.get("sms", {}), "enabled": sms_enabled, "sender": sms_sender}
    settings_["whatsapp"] = {**settings_.get("whatsapp", {}), "enabled": whatsapp_enabled,
                             "sender": whatsapp_sender, "template": whatsapp_template}  # fmt: skip
    business.channel_settings = settings_
    business.save(update_fields=["channel_settings"])
    return business


def user_get_or_create(*, email: str, password: str | None = None, first_name: str = ""):
    email = email.strip().lower()
    user, created = User.objects.get_or_create(username=email, defaults={"email": email, "first_name": first_name})
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return user


INVITATION_DAYS = 7


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(*, business: Business, email: str, role: str, invited_by) -> tuple[Invitation, str]:
    """Create an invitation; returns it with the one-time token (only its hash is stored)."""
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    if Membership.objects.filter(business=business, user__username=email).exists():
        raise ValidationError({"email": f"{email} is already a member of this team."})
    token = secrets.token_urlsafe(24)
    invitation = Invitation.objects.create(
        business=business,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    return invitation, token


def invitation_find(*, token: str) -> Invitation | None:
    """An open invitation by its token (across businesses: the token is the capability)."""
    from django_scopes import scopes_disabled

    with scopes_disabled():
        return (
            Invitation.objects.select_related("business")
            .filter(
                token_hash=_token_hash(token),
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .first()
        )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user) -> Membership:
    from django_scopes import scopes_disabled

    with scopes_disabled():
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now()
        )
        if not claimed:
            raise ValidationError("This invitation has already been used.")
        membership, _ = Membership.objects.get_or_create(
            business=invitation.business, user=user, defaults={"role": invitation.role}
        )
    return membership


def membership_role_set(*, membership: Membership, role: str, by) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role “{role}”."})
    if membership.role == Role.OWNER and role != Role.OWNER:
        owners = Membership.objects.filter(business=membership.business, role=Role.OWNER).count()
        if owners <= 1:
            raise ValidationError({"role": "A business needs at least one owner."})
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


def membership_remove(*, membership: Membership) -> None:
    if membership.role == Role.OWNER:
        owners = Membership.objects.filter(business=membership.business, role=Role.OWNER).count()
        if owners <= 1:
            raise ValidationError("A business needs at least one owner.")
    membership.delete()


def membership_unlock(*, membership: Membership) -> int:
    """Let a team member locked out for wrong passwords sign in again: their failed tries are
    forgotten (every address's). An address locked by tries on other accounts stays locked."""
    from axes.utils import reset

    return reset(username=membership.user.username)


def invitation_send(*, invitation: Invitation, link: str) -> None:
    from django.core.mail import send_mail

    send_mail(
        subject=f"You're invited to {invitation.business.name} on Winback",
        message=(
            f"{invitation.invited_by or 'The owner'} invited you to join {invitation.business.name} "
            f"as {invitation.get_role_display()}.\n\nAccept within {INVITATION_DAYS} days: {link}\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
        fail_silently=True,
    )
