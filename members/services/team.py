"""Businesses, their staff and invitations."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import (
    Business,
    Invitation,
    Membership,
    Role,
)

User = get_user_model()


@transaction.atomic
def business_create(*, name: str, slug: str, owner, **fields) -> Business:
    business = Business(name=name, slug=slug, **fields)
    business.full_clean()
    business.save()
    Membership.objects.create(business=business, user=owner, role=Role.OWNER)
    return business


def business_update(*, business: Business, **fields) -> Business:
    allowed = {"name", "timezone", "currency", "country", "program_type", "stamps_per_card", "frequency_cap_days",
               "sms_price", "whatsapp_price", "country_prices", "monthly_budget"}  # fmt: skip
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
