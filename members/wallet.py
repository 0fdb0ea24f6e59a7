"""The member's wallet: redeeming a reward at the counter, expiring offers, the reads the member
app shows. Claiming a campaign send's reward into the wallet is the inbox's
(``notifications.inbox.reward_claim``): what a member may claim depends on the deliveries.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_scopes import scopes_disabled

from .models import Member, RewardKind, RewardStatus, VisitKind, VisitSource, WalletReward
from .services import visit_record

CREDITED_KINDS = (RewardKind.BONUS_STAMPS, RewardKind.BONUS_POINTS)  # straight onto the card
COUNTER_KINDS = (RewardKind.FREE_ITEM, RewardKind.DISCOUNT)  # handed over at the counter: a ledger entry
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud and typed at the counter
WALLET_STATUSES = (RewardStatus.AVAILABLE, RewardStatus.REDEEMED, RewardStatus.EXPIRED)


class RewardNotRedeemable(ValidationError):
    """Already redeemed, expired, or never claimed: nothing changed. ``code`` says which."""


def reward_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def member_badge_add(*, member_id: int, badge: str) -> bool:
    """Put ``badge`` on the member once (a badge is a name, held or not); returns whether it was
    new. The member row is locked: two badges claimed at once both land."""
    member = Member.objects.select_for_update().only("pk", "badges").get(pk=member_id)
    badges = list(member.badges or [])
    if not badge or badge in badges:
        return False
    member.badges = [*badges, badge]
    member.save(update_fields=["badges"])
    return True


@transaction.atomic
def reward_redeem(*, code: str, at: datetime, recorded_by=None, source: str = VisitSource.API) -> WalletReward:
    """Redeem an available reward at the counter by its code (in the current business), once.

    Raises ``WalletReward.DoesNotExist`` for a code this business never issued, and
    ``RewardNotRedeemable`` (code ``already_redeemed``, ``expired`` or ``not_available``) without
    changing anything. A free item or a discount is recorded as a ``redemption`` ledger entry (the
    member was at the counter); it is not a purchase and moves no balance.
    """
    code = (code or "").strip().upper()
    if not code or "\x00" in code:
        raise WalletReward.DoesNotExist()
    reward = WalletReward.objects.select_for_update().select_related("member").get(code=code)
    if reward.status == RewardStatus.REDEEMED:
        raise RewardNotRedeemable("This reward was already redeemed.", code="already_redeemed")
    if reward.status == RewardStatus.EXPIRED or (
        reward.status == RewardStatus.AVAILABLE and reward.expires_at is not None and reward.expires_at <= at
    ):
        raise RewardNotRedeemable("This reward has expired.", code="expired")
    if reward.status != RewardStatus.AVAILABLE:
        raise RewardNotRedeemable("This reward is not in the wallet.", code="not_available")
    if not WalletReward.objects.filter(pk=reward.pk, status=RewardStatus.AVAILABLE).update(
        status=RewardStatus.REDEEMED, redeemed_at=at
    ):
        raise RewardNotRedeemable("This reward was already redeemed.", code="already_redeemed")
    reward.status, reward.redeemed_at = RewardStatus.REDEEMED, at
    if reward.kind in COUNTER_KINDS:
        visit_record(
            member=reward.member,
            kind=VisitKind.REDEMPTION,
            occurred_at=at,
            recorded_by=recorded_by,
            source=source,
            idempotency_key=f"redeem:{reward.pk}",
            note=f"Redeemed {reward.title}"[:200],
        )
    return reward


def rewards_expire(*, now: datetime) -> int:
    """Every offer not claimed and every wallet reward not redeemed by its expiry becomes
    ``expired``, in every business, in one UPDATE (the ``reward_expiring`` index finds them);
    returns how many. The claim and the redemption check the expiry themselves: this makes the
    stored status, and the results' "Expired", true without waiting for a late claim."""
    with scopes_disabled():  # the wallet's one cross-tenant sweep, like the night's tick
        return WalletReward.objects.filter(
            status__in=(RewardStatus.OFFERED, RewardStatus.AVAILABLE), expires_at__lte=now
        ).update(status=RewardStatus.EXPIRED)


# --- reads ---------------------------------------------------------------------------------------


def reward_effective_status(reward: WalletReward, *, now: datetime) -> str:
    """An available reward past its expiry reads as expired (nothing writes it on a read)."""
    if (
        reward.status in (RewardStatus.AVAILABLE, RewardStatus.OFFERED)
        and reward.expires_at
        and reward.expires_at <= now
    ):
        return RewardStatus.EXPIRED
    return reward.status


def wallet_rewards(*, member: Member, status: str = "", now: datetime | None = None) -> QuerySet[WalletReward]:
    """The member's wallet: claimed rewards (available, redeemed, expired). Offers are not in it."""
    now = now or timezone.now()
    rewards = WalletReward.objects.filter(member=member, status__in=WALLET_STATUSES)
    live = Q(status=RewardStatus.AVAILABLE) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if status == RewardStatus.AVAILABLE:
        rewards = rewards.filter(live)
    elif status == RewardStatus.EXPIRED:
        rewards = rewards.filter(Q(status=RewardStatus.EXPIRED) | (Q(status=RewardStatus.AVAILABLE) & ~live))
    elif status == RewardStatus.REDEEMED:
        rewards = rewards.filter(status=RewardStatus.REDEEMED)
    return rewards
