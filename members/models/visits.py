"""The visit ledger and the wallet's rewards."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_scopes import ScopedManager

from .members import Member
from .tenants import Business


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
