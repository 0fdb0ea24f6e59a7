"""Tenants: the business, its staff (Membership) and invitations."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_scopes import ScopedManager

CHANNELS = ("push", "sms", "whatsapp", "email")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known IANA time zone (for example Europe/London).")


class ProgramType(models.TextChoices):
    STAMPS = "stamps", "Stamps"
    POINTS = "points", "Points"
    BOTH = "both", "Stamps and points"


class Business(models.Model):
    """The tenant. Every tenant-owned row carries ``business_id``."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code, e.g. MYR.")
    country = models.CharField(
        max_length=2, default="US", help_text="ISO 3166 country used to read local phone numbers."
    )
    program_type = models.CharField(max_length=10, choices=ProgramType.choices, default=ProgramType.STAMPS)
    stamps_per_card = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    points_per_currency_unit = models.PositiveSmallIntegerField(
        default=1, help_text="Points suggested per unit of currency spent."
    )
    frequency_cap_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(90)],
        help_text="At most one campaign message per member within this many days (0: no cap).",
    )
    # Which channels are set up and their senders: {"sms": {"enabled": true, "sender": "+1…"}, …}
    channel_settings = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "businesses"

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def uses_stamps(self) -> bool:
        return self.program_type in (ProgramType.STAMPS, ProgramType.BOTH)

    @property
    def uses_points(self) -> bool:
        return self.program_type in (ProgramType.POINTS, ProgramType.BOTH)

    def enabled_channels(self) -> list[str]:
        return [c for c in CHANNELS if (self.channel_settings or {}).get(c, {}).get("enabled")]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    STAFF = "staff", "Staff"


class Membership(models.Model):
    """A user's role in one business; a user may belong to several."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business", "user"], name="membership_unique_user")]
        indexes = [models.Index(fields=["user"], name="membership_user")]  # the middleware's lookup

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} of {self.business}"


class Invitation(models.Model):
    """An owner's invitation for someone to join the business with a role."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "email"], name="invitation_business_email")]
