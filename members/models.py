"""Tenants (Business, Membership, Invitation), members and the visit ledger."""

from __future__ import annotations

import secrets
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
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


class VisitKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REDEMPTION = "redemption", "Redemption"
    BALANCE_CHECK = "balance_check", "Balance check"
    REFERRAL = "referral", "Referral"
    BIRTHDAY_REWARD = "birthday_reward", "Birthday reward"
    CAMPAIGN_REWARD = "campaign_reward", "Campaign reward"
    ADJUSTMENT = "adjustment", "Adjustment"


# Ledger entries that are not the member at the counter: they move balances only.
NOT_IN_PERSON = (VisitKind.CAMPAIGN_REWARD, VisitKind.ADJUSTMENT)


class VisitSource(models.TextChoices):
    ADMIN = "admin", "Admin"
    STAMP_PAGE = "stamp_page", "Stamp page"
    API = "api", "API"
    IMPORT = "import", "Import"
    CAMPAIGN = "campaign", "Campaign"
    SYSTEM = "system", "System"


class Visit(models.Model):
    """Append-only ledger of everything that happens on a card. Never updated, never deleted."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="visits")
    kind = models.CharField(max_length=20, choices=VisitKind.choices)
    stamps_delta = models.IntegerField(default=0)
    points_delta = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    source = models.CharField(max_length=20, choices=VisitSource.choices)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            # A point-of-sale retry with the same key never records a second visit.
            models.UniqueConstraint(
                fields=["business", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="visit_unique_idempotency_key",
            ),
        ]
        indexes = [
            # A member's history, newest first; attribution's "purchase after a send".
            models.Index(fields=["business", "member", "-occurred_at"], name="visit_member_recent"),
            models.Index(fields=["business", "-occurred_at"], name="visit_business_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.member_id} · {self.occurred_at:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """A hashed phone or email of an erased member: a re-import of it is not messaged."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business", "digest"], name="suppression_unique")]


class RewardKind(models.TextChoices):
    FREE_ITEM = "free_item", "Free item"
    BONUS_STAMPS = "bonus_stamps", "Bonus stamps"
    BONUS_POINTS = "bonus_points", "Bonus points"
    DISCOUNT = "discount", "Discount"
    BADGE = "badge", "Special badge"


class RewardStatus(models.TextChoices):
    OFFERED = "offered", "Offered"  # queued with a campaign send, not yet claimed
    AVAILABLE = "available", "Available"  # in the wallet, to redeem at the counter
    REDEEMED = "redeemed", "Redeemed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"  # its send was cancelled (campaign paused)


class WalletReward(models.Model):
    """A reward in a member's wallet; campaign rewards are created ``offered`` with their send."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="rewards", db_constraint=False)
    send = models.ForeignKey(
        "campaigns.CampaignSend", on_delete=models.CASCADE, null=True, blank=True, related_name="rewards",
        db_constraint=False,
    )  # fmt: skip
    kind = models.CharField(max_length=20, choices=RewardKind.choices)
    title = models.CharField(max_length=140)
    details = models.JSONField(default=dict, blank=True)
    code = models.CharField(max_length=16, null=True, blank=True)
    status = models.CharField(max_length=12, choices=RewardStatus.choices, default=RewardStatus.OFFERED)
    offered_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business", "code"], condition=Q(code__isnull=False), name="reward_unique_code"
            ),
            # Exactly one reward per campaign send.
            models.UniqueConstraint(fields=["send"], condition=Q(send__isnull=False), name="reward_unique_send"),
        ]
        indexes = [
            models.Index(fields=["business", "member", "status"], name="reward_member_status"),
            # The expiry sweep (wallet.rewards_expire): only rewards that can still expire.
            models.Index(
                fields=["expires_at"], condition=Q(status__in=["offered", "available"]), name="reward_expiring"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} · {self.get_status_display()}"


# --- API credentials: the member app's sign-in, member tokens and point-of-sale keys -----------


class CodeDelivery(models.TextChoices):
    NONE = "none", "Not sent: no such member"
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OneTimeCode(models.Model):
    """A sign-in code sent to a member's phone or email. Only digests are stored: the identifier
    and the client address as keyed hashes (they still count for the rate limits), the code as an
    HMAC. A request for an identifier that is no member's stores a row without a member, so the
    limits count it too and the answer looks the same.

    The code goes out through a task with retries (``members.code_send``); how that went is kept
    here for the operator (the admin), never told to the member app."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    identifier_digest = models.CharField(max_length=64)
    ip_digest = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=[(c, c) for c in CHANNELS])
    code_digest = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    delivery_status = models.CharField(max_length=10, choices=CodeDelivery.choices, default=CodeDelivery.NONE)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)  # provider calls (``attempts``: guesses)
    delivery_error = models.CharField(max_length=500, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        verbose_name = "sign-in code"
        indexes = [
            # The exchange (the newest open code of an identifier) and the per-identifier limit.
            models.Index(fields=["business", "identifier_digest", "-created_at"], name="otc_identifier_recent"),
            # The per-client limit.
            models.Index(fields=["ip_digest", "-created_at"], name="otc_ip_recent"),
            # The business's hourly and daily caps on codes (SMS pumping).
            models.Index(fields=["business", "-created_at"], name="otc_business_recent"),
        ]


class MemberToken(models.Model):
    """One signed-in device of the member app. The token itself is never stored, only its
    SHA-256; it expires and can be revoked (sign-out, erasure, the member's device list).

    Not a knox token (knox serves the users' API tokens): knox's ``AuthToken`` has a foreign key
    to ``AUTH_USER_MODEL``, and a member is not a user — a customer of one business who signs in
    with a texted or emailed code, has no password and must not become an account of the site
    (nor reach the admin, the browser session or another business). Issued and checked in
    ``members.credentials``."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)  # the authentication lookup
    device_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "member"], name="member_token_member")]  # device list

    def __str__(self) -> str:
        return f"{self.member_id} · {self.device_name or 'device'}"


class ApiKey(models.Model):
    """A point-of-sale key of one business. Shown once at creation; only its SHA-256 and a
    short non-secret prefix (to tell keys apart in the list) are kept. Why this is not
    djangorestframework-api-key's model: ``members.credentials``."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)  # the authentication lookup
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV upload, imported in the background all-or-nothing (``members.importing``).

    The files are kept in the row, not under MEDIA_ROOT: the web and the worker may run on
    different machines with no shared disk (docker-compose has none), the upload and its job are
    committed together (no orphan file, no job without its file), and the text is cleared once the
    job has finished, so no copy of members' personal data outlives the import. ``rows_checked``
    and ``rows_done`` are written while the import runs, on a connection of their own, so the page
    reads them before the import's transaction commits.
    """

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    members_name = models.CharField(max_length=255, blank=True)
    members_csv = models.TextField(blank=True)
    visits_name = models.CharField(max_length=255, blank=True)
    visits_csv = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    rows_checked = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    members_imported = models.PositiveIntegerField(default=0)
    visits_imported = models.PositiveIntegerField(default=0)
    suppressed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{file, line, field, message}]
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()  # the running worker's heartbeat (progress writes)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "-created_at"], name="import_job_recent")]  # recent imports

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    @property
    def percent(self) -> int:
        """How far the import is: checking every row is the first half, writing the second."""
        if self.status == ImportStatus.DONE:
            return 100
        if not self.total_rows:
            return 0
        return min(99, (self.rows_checked + self.rows_done) * 50 // self.total_rows)
