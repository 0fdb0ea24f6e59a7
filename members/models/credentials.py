"""API credentials: the member app's sign-in, member tokens and point-of-sale keys."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django_scopes import ScopedManager

from .members import Member
from .tenants import CHANNELS, Business


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
