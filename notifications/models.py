"""The delivery outbox: the database, not the broker, is the source of truth."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django_scopes import ScopedManager

from campaigns.models import Campaign, CampaignSend
from members.models import CHANNELS, Business, Member
from members.models import PushSubscription as PushSubscription  # a member's device: members' (same table)

CHANNEL_CHOICES = [
    (c, {"push": "Web push", "sms": "SMS", "whatsapp": "WhatsApp", "email": "Email"}[c]) for c in CHANNELS
]


class DeliveryStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"  # claimed by the dispatcher, handed to a worker
    SENDING = "sending", "Sending"  # a worker is talking to the provider
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped"
    # The worker died while the provider may have accepted it: never resent, counted and visible.
    UNCONFIRMED = "unconfirmed", "Unconfirmed"


PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)

# Where a delivery that went out may move next (sent → delivered → opened; failed only before it
# was delivered). Provider reports and opens move a delivery only along these: a late, repeated or
# replayed report that is not a step forward changes nothing.
NEXT_STATUSES = {
    DeliveryStatus.SENT: (DeliveryStatus.DELIVERED, DeliveryStatus.OPENED, DeliveryStatus.FAILED),
    DeliveryStatus.DELIVERED: (DeliveryStatus.OPENED,),
}


def statuses_before(status: str) -> list[str]:
    """The statuses a delivery may move to ``status`` from: the condition of its UPDATE."""
    return [before for before, nexts in NEXT_STATUSES.items() if status in nexts]


class Delivery(models.Model):
    # As on CampaignSend: no FK constraints or single-column FK indexes on a table the night
    # fills set-based; the composite indexes below serve every query.
    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    send = models.ForeignKey(
        CampaignSend, on_delete=models.DO_NOTHING, related_name="deliveries", db_constraint=False, db_index=False
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.SCHEDULED)
    scheduled_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    provider_id = models.CharField(max_length=120, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    # The channel whose permanent failure moved the send here ("": the night's own delivery).
    # A database default: the night's and the fallback's raw INSERTs leave it out.
    fallback_from = models.CharField(max_length=10, choices=CHANNEL_CHOICES, blank=True, default="", db_default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["send", "channel"], name="delivery_unique_channel")]
        indexes = [
            # The dispatcher's claim: due scheduled deliveries in (scheduled_at, id) order, read
            # from the index without sorting the thousands that share one send-at instant.
            models.Index(fields=["scheduled_at", "id"], condition=Q(status="scheduled"), name="delivery_due"),
            # Lease expiry sweep.
            models.Index(
                fields=["lease_expires_at"], condition=Q(status__in=["queued", "sending"]), name="delivery_leased"
            ),
            # Pausing a campaign; the campaign page's deliveries list.
            models.Index(fields=["business", "campaign", "status"], name="delivery_campaign_status"),
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="delivery_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} → {self.member_id} ({self.status})"


class DeliveryEvent(models.Model):
    """The status history of a delivery."""

    # Three rows per delivery sent, inserted set-based by the dispatcher: no FK constraint (its
    # deferred check cost ~18 µs a row at COMMIT); a business's rows still go with it (Django's
    # CASCADE), through the business_id index.
    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_constraint=False)
    # No single-column index: delivery_event_delivery (delivery, at) serves lookups by delivery.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="events", db_constraint=False, db_index=False
    )
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=500, blank=True, default="")

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["delivery", "at"], name="delivery_event_delivery")]


class RecordedMessage(models.Model):
    """What the recording backend would have sent (development, tests, channels not set up)."""

    # Written one multi-row INSERT per chunk of deliveries: no FK constraint, as on DeliveryEvent,
    # and no single-column index (recorded_business_recent starts with business).
    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    delivery = models.ForeignKey(Delivery, on_delete=models.SET_NULL, null=True, blank=True, db_constraint=False)
    channel = models.CharField(max_length=10, choices=CHANNEL_CHOICES)
    to = models.CharField(max_length=1000)
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    provider_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "-created_at"], name="recorded_business_recent")]


class ProviderEventKind(models.TextChoices):
    STATUS = "status", "Status callback"
    INBOUND = "inbound", "Inbound message"


class ProviderEvent(models.Model):
    """A provider's callback already acted on. Its key is inserted in the transaction of its
    effect, so a second receipt (a replay, the provider's retry, a concurrent duplicate) finds
    it and changes nothing. Status callbacks are keyed by MessageSid and MessageStatus, inbound
    messages by their MessageSid."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_index=False)
    kind = models.CharField(max_length=10, choices=ProviderEventKind.choices)
    key = models.CharField(max_length=120)
    received_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            # The idempotency key; it leads with business, so it also serves the business's rows.
            models.UniqueConstraint(fields=["business", "kind", "key"], name="provider_event_unique"),
        ]


class TemplateStatus(models.TextChoices):
    """WhatsApp's verdict on a template, as Twilio's Content API reports it."""

    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PAUSED = "paused", "Paused"  # WhatsApp paused it after poor feedback from recipients
    DISABLED = "disabled", "Disabled"  # disabled by WhatsApp, or no longer in the Twilio account


class TemplateQuality(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class WhatsAppTemplate(models.Model):
    """A business's WhatsApp message template (a Twilio Content resource), synchronised from
    Twilio's Content API by ``whatsapp_templates_sync``; only an approved one can carry a
    business-initiated WhatsApp message."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="whatsapp_templates")
    content_sid = models.CharField("content SID", max_length=34)
    name = models.CharField(max_length=200)
    language = models.CharField(max_length=20, blank=True)
    body = models.TextField(blank=True)
    # Twilio's sample values of the body's {{1}}, {{2}} …: {"1": "Wei"}.
    variables = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=TemplateStatus.choices, default=TemplateStatus.PENDING)
    quality_rating = models.CharField(max_length=10, choices=TemplateQuality.choices, default=TemplateQuality.UNKNOWN)
    rejected_reason = models.CharField(max_length=500, blank=True)
    last_synced_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        verbose_name = "WhatsApp template"
        constraints = [
            # The sync's upsert key; it leads with business, so it also serves a business's list.
            models.UniqueConstraint(fields=["business", "content_sid"], name="whatsapp_template_unique_sid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})" if self.language else self.name

    @property
    def is_approved(self) -> bool:
        """WhatsApp approved it: it can carry a business-initiated message (the campaign rules ask
        the template through ``Campaign.whatsapp_template``, below this app's layer)."""
        return self.status == TemplateStatus.APPROVED


class MonthlySpend(models.Model):
    """What a business's billable messages cost in one month (its local calendar month): the
    dispatcher reserves each message's price here before sending it, against the business's
    ``monthly_budget``, and gives it back if the provider never accepted the message."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_index=False)
    month = models.DateField(help_text="The first day of the month, in the business's time zone.")
    amount = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    messages = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            # The row every reservation locks; leading with business, it also serves the dashboard.
            models.UniqueConstraint(fields=["business", "month"], name="spend_unique_month"),
        ]

    def __str__(self) -> str:
        return f"{self.business_id} · {self.month:%Y-%m} · {self.amount}"
