"""Tenants: the business, its staff (Membership) and invitations."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django_scopes import ScopedManager

CHANNELS = ("push", "sms", "whatsapp", "email")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known IANA time zone (for example Europe/London).")


BILLABLE_CHANNELS = ("sms", "whatsapp")


def default_sms_price() -> Decimal:
    return Decimal(settings.DEFAULT_SMS_SEGMENT_PRICE)


def default_whatsapp_price() -> Decimal:
    return Decimal(settings.DEFAULT_WHATSAPP_MESSAGE_PRICE)


def validate_country_prices(value) -> None:
    """``{"GB": {"sms": "0.04", "whatsapp": "0.05"}, …}``: ISO 3166 codes, billable channels,
    prices at least 0."""
    if not isinstance(value, dict):
        raise ValidationError('Country prices are an object: {"GB": {"sms": "0.04"}}.')
    for country, prices in value.items():
        if not (isinstance(country, str) and len(country) == 2 and country.isascii() and country.isupper()):
            raise ValidationError(f"“{country}” is not a 2-letter country code like GB.")
        if not isinstance(prices, dict) or not prices or set(prices) - set(BILLABLE_CHANNELS):
            raise ValidationError(f'{country}: give prices for sms and/or whatsapp, e.g. {{"sms": "0.04"}}.')
        for channel, price in prices.items():
            try:
                ok = Decimal(str(price)).is_finite() and Decimal(str(price)) >= 0
            except InvalidOperation:
                ok = False
            if not ok or isinstance(price, bool):
                raise ValidationError(f"{country} {channel}: “{price}” is not a price (a number, at least 0).")


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
    # What billable messages cost (in ``currency``): a price per SMS segment and per WhatsApp
    # message, per destination country where it differs ({"GB": {"sms": "0.04"}, …}), and an
    # optional monthly budget the dispatcher reserves every billable message against.
    sms_price = models.DecimalField(max_digits=8, decimal_places=4, default=default_sms_price,
                                    validators=[MinValueValidator(0)])  # fmt: skip
    whatsapp_price = models.DecimalField(max_digits=8, decimal_places=4, default=default_whatsapp_price,
                                         validators=[MinValueValidator(0)])  # fmt: skip
    country_prices = models.JSONField(default=dict, blank=True, validators=[validate_country_prices])
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                         validators=[MinValueValidator(0)])  # fmt: skip
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
