"""Members, their consent history and the suppression list of erased ones."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models
from django_scopes import ScopedManager

from .tenants import CHANNELS, Business, validate_timezone


def card_code_new() -> str:
    # No 0/O or 1/I: staff type these from worn cards.
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class MemberStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ERASED = "erased", "Erased"


class Member(models.Model):
    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="members")
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +60123456789.")
    email = models.EmailField(blank=True)
    card_code = models.CharField(max_length=32, default=card_code_new)
    joined_on = models.DateField()
    birthday = models.DateField(null=True, blank=True)
    timezone = models.CharField(
        max_length=64, blank=True, validators=[validate_timezone], help_text="Blank: the business's."
    )
    status = models.CharField(max_length=10, choices=MemberStatus.choices, default=MemberStatus.ACTIVE)

    stamps_balance = models.IntegerField(default=0)
    points_balance = models.IntegerField(default=0)
    badges = models.JSONField(default=list, blank=True)

    # Current consent per channel, for set-based audience queries; ConsentEvent keeps the history.
    consent_push = models.BooleanField(default=False)
    consent_sms = models.BooleanField(default=False)
    consent_whatsapp = models.BooleanField(default=False)
    consent_email = models.BooleanField(default=False)

    # Denormalised from the ledger by visits.visit_record, backdated visits included.
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    # Visits in person (not campaign rewards or adjustments).
    last_visit_at = models.DateTimeField(null=True, blank=True)
    purchase_count = models.PositiveIntegerField(default=0)
    visit_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))

    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["business", "card_code"], name="member_unique_card_code"),
        ]
        indexes = [
            # The nightly audience: members of a business lapsed since a date with what decides
            # whether they can be reached, read index-only (members of a business are scattered
            # over the table: a heap fetch per member was most of a steady-state night).
            models.Index(
                fields=["business", "last_purchase_at"],
                include=[
                    "id",
                    "purchase_count",
                    "status",
                    "consent_push",
                    "consent_sms",
                    "consent_whatsapp",
                    "consent_email",
                    "phone",
                    "email",
                ],
                name="member_business_lapsed",
            ),
            models.Index(fields=["business", "phone"], name="member_business_phone"),  # stamp lookup
            models.Index(fields=["business", "email"], name="member_business_email"),  # sign-in
            models.Index(fields=["business", "last_name", "first_name"], name="member_business_name"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.status == MemberStatus.ERASED:
            return f"Erased member #{self.pk}"
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.phone or self.email or self.card_code

    @property
    def tz_name(self) -> str:
        return self.timezone or self.business.timezone

    def stamps_on_card(self) -> int:
        return self.stamps_balance % self.business.stamps_per_card if self.stamps_balance >= 0 else 0

    @property
    def full_cards(self) -> int:
        return max(self.stamps_balance, 0) // self.business.stamps_per_card

    def has_consent(self, channel: str) -> bool:
        return bool(getattr(self, f"consent_{channel}"))


class ConsentSource(models.TextChoices):
    SIGNUP = "signup", "Sign-up form"
    STAFF = "staff", "Recorded by staff"
    MEMBER_APP = "member_app", "Member app"
    IMPORT = "import", "Import"
    SMS_KEYWORD = "sms_keyword", "SMS/WhatsApp keyword"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
    PROVIDER = "provider", "Provider error"
    ERASURE = "erasure", "Erasure"
    SUPPRESSION = "suppression", "Suppression list"


class ConsentEvent(models.Model):
    """Append-only history of consent given or withdrawn, per channel."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consent_events")
    channel = models.CharField(max_length=10, choices=[(c, c) for c in CHANNELS])
    granted = models.BooleanField()
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    occurred_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "member", "-occurred_at"], name="consent_member_recent")]


class Suppression(models.Model):
    """A hashed phone or email of an erased member: a re-import of it is not messaged."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business", "digest"], name="suppression_unique")]


class PushSubscription(models.Model):
    """A member's Web Push subscription (one per browser or device)."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        # Moved from notifications (the app that sends to it): the table kept its name.
        db_table = "notifications_pushsubscription"
        constraints = [models.UniqueConstraint(fields=["member", "endpoint"], name="push_unique_endpoint")]
        indexes = [models.Index(fields=["business", "member"], name="push_business_member")]
