"""Campaigns, their sends and the nightly evaluation runs."""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django_scopes import ScopedManager

from members.models import Business, Member


class CampaignType(models.TextChoices):
    WINBACK = "winback", "Win-back"


class ChannelMode(models.TextChoices):
    # Each send on the first channel of ``Campaign.channels`` (in order) that the member is
    # reachable on, falling back along the order on a permanent failure (SPEC §5).
    FIRST_REACHABLE = "first_reachable", "First channel that reaches them"
    EVERY = "every", "Every chosen channel"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


def default_pacing() -> dict:
    # WhatsApp protects the sender from bans: one a minute, 480 a day (SPEC §4).
    return {"whatsapp": {"interval_seconds": 60, "daily_cap": 480}}


class OverBudget(models.TextChoices):
    FALLBACK = "fallback", "Fall back to a free channel (push, email, the inbox)"
    WAIT = "wait", "Wait for next month"


class Campaign(models.Model):
    """A campaign of one business. Validation lives in ``campaigns.rules`` and is used by every
    interface; ``campaign_activate`` is the only way out of draft and re-validates everything."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="campaigns")
    type = models.CharField(max_length=20, choices=CampaignType.choices, default=CampaignType.WINBACK)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=1000)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    activated_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    # Trigger
    inactivity_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    max_sends = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(3)])

    # Send 1's message and reward; ``escalation`` holds sends 2 and 3 ({"title", "body", "reward"}),
    # each falling back to send 1 where empty.
    title = models.CharField(max_length=120, blank=True)
    body = models.TextField(max_length=1000, blank=True)
    reward = models.JSONField(default=dict, blank=True)
    escalation = models.JSONField(default=list, blank=True)
    # In order: the channel priority when ``channel_mode`` is first_reachable.
    channels = models.JSONField(default=list, blank=True)
    channel_mode = models.CharField(max_length=20, choices=ChannelMode.choices, default=ChannelMode.FIRST_REACHABLE)
    # The approved WhatsApp template its WhatsApp messages use (one of the business's, checked by
    # ``rules.whatsapp_template_check``); none: the business's configured template.
    whatsapp_template = models.ForeignKey(
        "notifications.WhatsAppTemplate", on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns"
    )
    conditions = models.JSONField(default=dict, blank=True)

    # A/B test and control group
    ab_enabled = models.BooleanField(default=False)
    variant_b_title = models.CharField(max_length=120, blank=True)
    variant_b_body = models.TextField(max_length=1000, blank=True)
    ab_share_b = models.PositiveSmallIntegerField(default=50, validators=[MinValueValidator(1), MaxValueValidator(99)])
    control_share = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(20)])

    # Schedule
    send_at = models.TimeField(default=time(9, 0))
    include_weekends = models.BooleanField(default=True)
    pacing = models.JSONField(default=default_pacing, blank=True)
    skip_if_returned = models.BooleanField(
        default=True, help_text="Skip a member who purchases after the night's selection but before the send."
    )
    attribution_days = models.PositiveSmallIntegerField(
        default=14, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    # What a billable message (SMS, WhatsApp) does once the business's monthly budget is spent.
    over_budget = models.CharField(max_length=10, choices=OverBudget.choices, default=OverBudget.FALLBACK)

    # The wizard step the owner was on last, so a closed tab resumes there.
    wizard_step = models.CharField(max_length=20, default="type", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScopedManager(business="business")

    class Meta:
        indexes = [models.Index(fields=["business", "status"], name="campaign_business_status")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .rules import campaign_validate

        campaign_validate(self, for_activation=self.status == CampaignStatus.ACTIVE)

    def step(self, send_number: int) -> dict:
        """Title, body and reward of a send number, falling back to send 1's where empty."""
        base = {"title": self.title, "body": self.body, "reward": self.reward or {}}
        if send_number <= 1:
            return base
        extra = (self.escalation or [])[send_number - 2 : send_number - 1]
        override = extra[0] if extra else {}
        return {
            "title": override.get("title") or base["title"],
            "body": override.get("body") or base["body"],
            "reward": override.get("reward") if override.get("reward") is not None else base["reward"],
        }


class Arm(models.TextChoices):
    A = "a", "A"
    B = "b", "B"
    CONTROL = "control", "Control"


class SendOutcome(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    CONTROL = "control", "Held out (control)"
    SENT = "sent", "Sent"
    RETURNED = "returned", "Returned before send"
    SKIPPED = "skipped", "Skipped (no reachable channel)"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Another campaign with a longer threshold won this member tonight (the frequency cap).
    CAPPED = "capped", "Capped by another campaign"


# Rows that are not a message to the member: they take no send number and space nothing.
NOT_COUNTED = (SendOutcome.CANCELLED, SendOutcome.CAPPED)


class EvaluationRun(models.Model):
    """One nightly evaluation of a business for one local date. Its unique key is the lock: a
    second evaluation of the same date waits on the insert, then finds it taken and writes nothing."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="evaluation_runs")
    local_date = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    campaigns = models.PositiveIntegerField(default=0)
    sends = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    # Per campaign id: {"selected", "capped", "control", "sends", "deliveries", "rewards"}.
    stats = models.JSONField(default=dict, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["business", "local_date"], name="run_unique_local_date")]
        indexes = [
            # The tick: every business's last run within the catch-up window. Leading with the
            # date, the scan reads only the window's few nights, whatever the history behind them
            # (the unique key leads with the business: read for local_date alone, it is scanned whole).
            models.Index(fields=["local_date", "business"], name="run_local_date"),
        ]

    def __str__(self) -> str:
        return f"{self.business_id} · {self.local_date}"


class EvaluationFailure(models.Model):
    """A business whose nightly evaluation is failing: the date it is stuck on, how many times in a
    row it failed, the last error, and when the tick tries it again (exponential backoff). A
    success deletes the row, so the table holds only the businesses failing right now."""

    business = models.OneToOneField(Business, on_delete=models.CASCADE, related_name="evaluation_failure")
    local_date = models.DateField(help_text="The local date whose evaluation failed last.")
    failures = models.PositiveIntegerField(default=1, help_text="Failures in a row.")
    error = models.TextField()
    first_failed_at = models.DateTimeField()
    failed_at = models.DateTimeField()
    retry_at = models.DateTimeField(help_text="The tick leaves the business alone until then.")

    objects = ScopedManager(business="business")

    def __str__(self) -> str:
        return f"{self.business_id} · {self.local_date} · {self.failures}×"


class CampaignMessage(models.Model):
    """A campaign's texts as a night fixed them (SPEC §4: an edit takes effect from the next night).

    One row per campaign and content version: the night writes one when the campaign's texts
    changed since the last (its ``digest`` differs), otherwise reuses it, and each send it writes
    names it. Every surface renders a send from it (``campaigns.messages``)."""

    business = models.ForeignKey(Business, on_delete=models.CASCADE, related_name="+")
    # (no index of its own: the unique key leads with it)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages", db_index=False)
    digest = models.CharField(max_length=64)
    # Per send number from 1: {"title", "body", "reward"} with send 1's fallbacks applied and the
    # reward in words ("a free kopi").
    steps = models.JSONField(default=list)
    # Send 1's texts in arm B, fallbacks applied; empty when the campaign has no A/B test.
    variant_b_title = models.CharField(max_length=120, blank=True)
    variant_b_body = models.TextField(blank=True)
    created_at = models.DateTimeField()

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            # The night looks up a campaign's current version by its digest.
            models.UniqueConstraint(fields=["campaign", "digest"], name="message_unique_digest"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} · {self.digest[:8]}"


class CampaignSend(models.Model):
    """A campaign's message to one member on one night (or a control hold-out)."""

    # No FK constraints and no single-column FK indexes here: the night inserts millions of rows
    # set-based, PostgreSQL's deferred FK checks at COMMIT cost more than the insert itself, and
    # every index on the table slows it (../shared/PERF.md, docs/benchmarks.md); the composite
    # indexes below serve every query.
    business = models.ForeignKey(Business, on_delete=models.CASCADE, db_constraint=False, db_index=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, related_name="sends", db_constraint=False, db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.DO_NOTHING, related_name="campaign_sends", db_constraint=False, db_index=False
    )
    run = models.ForeignKey(EvaluationRun, on_delete=models.DO_NOTHING, null=True, db_constraint=False, db_index=False)
    send_number = models.PositiveSmallIntegerField()
    arm = models.CharField(max_length=10, choices=Arm.choices, default=Arm.A)
    local_date = models.DateField()
    outcome = models.CharField(max_length=12, choices=SendOutcome.choices, default=SendOutcome.SCHEDULED)
    created_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    # The texts the night fixed for it (a constant per campaign in the night's INSERT). None on
    # sends written before there were snapshots: they read the campaign's current texts.
    message = models.ForeignKey(
        CampaignMessage, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+",
        db_constraint=False, db_index=False,
    )  # fmt: skip
    # The short open link ``SITE_URL/m/<short_code>`` that SMS and WhatsApp carry: random
    # (``secrets``), written by the dispatcher the first time the send goes out on a billable
    # channel, valid until ``short_expires_at``.
    short_code = models.CharField(max_length=16, null=True, blank=True)
    short_expires_at = models.DateTimeField(null=True, blank=True)

    objects = ScopedManager(business="business")

    class Meta:
        constraints = [
            # With the spacing rule and the unique run per night, a rerun writes nothing new. The
            # same index serves every query on a campaign's counted sends, and the night reads a
            # member's count and last send date of a campaign from it alone (index-only).
            models.UniqueConstraint(
                fields=["campaign", "member", "send_number"],
                condition=~Q(outcome__in=["cancelled", "capped"]),
                include=["local_date"],
                name="send_unique_number",
            ),
            # The short link's lookup; partial, so the millions of sends without one cost nothing.
            models.UniqueConstraint(
                fields=["short_code"], condition=Q(short_code__isnull=False), name="send_short_code"
            ),
        ]
        indexes = [
            # The business-wide frequency cap and a member's inbox: a member's recent sends.
            models.Index(fields=["business", "member", "local_date"], name="send_business_member_date"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} → {self.member_id} #{self.send_number}"
