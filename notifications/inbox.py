"""The member's inbox: which campaign sends a member can see, opening one, claiming its reward.

``reward_claim`` is the one way a reward offered with a campaign send reaches the wallet, used by
the app's open (the API) and by the open link's page alike, exactly once per send whatever runs
concurrently: the reward row is locked, and every change is a conditional update. What a member
can see depends on the deliveries (a send is seen once one went out), so it is the outbox's;
redeeming at the counter and the wallet's reads are ``members.wallet``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from campaigns import messages
from campaigns.models import Campaign, CampaignSend, SendOutcome
from campaigns.pacing import last_night_sent_by
from members.models import Member, RewardKind, RewardStatus, VisitKind, VisitSource, WalletReward
from members.services import visit_record
from members.wallet import CREDITED_KINDS, member_badge_add, reward_code_new

from .dispatcher import WENT_OUT
from .models import Delivery
from .services import send_mark_opened


def sends_visible_at(sends: QuerySet[CampaignSend], *, now: datetime) -> QuerySet[CampaignSend]:
    """Of ``sends``, those the member can see at ``now`` — in the inbox, on the open link's page,
    to claim.

    A send is visible once it went out on some channel (a delivery sent, delivered or opened;
    its outcome then settles ``sent``), or, for a send that has no delivery at all (the
    in-app inbox is its only channel), once its send-at time has passed. Scheduled, returned,
    skipped, failed, cancelled, control and capped sends are not: nothing reaches the member
    before it is sent, and what pausing cancels was never seen.
    """
    deliveries = Delivery.objects.filter(send_id=OuterRef("pk"))
    # A delivery that went out moments ago, before the batch settles its send's outcome, counts.
    went_out = Exists(deliveries.filter(status__in=WENT_OUT))
    inbox_only = ~Exists(deliveries) & _sent_by(sends, now=now)
    return sends.filter(Q(outcome=SendOutcome.SENT) | (Q(outcome=SendOutcome.SCHEDULED) & (went_out | inbox_only)))


def _sent_by(sends: QuerySet[CampaignSend], *, now: datetime) -> Q:
    """Sends of a night whose send-at instant is ``now`` or earlier, per campaign (its send-at
    time, weekends and its business's zone; one query for the few campaigns involved)."""
    campaigns = Campaign.objects.filter(pk__in=sends.values("campaign_id")).select_related("business")
    condition = Q(pk__in=[])
    for campaign in campaigns:
        condition |= Q(campaign_id=campaign.pk, local_date__lte=last_night_sent_by(campaign, now=now))
    return condition


@transaction.atomic
def reward_claim(*, send, at: datetime) -> WalletReward | None:
    """Claim the reward offered with ``send`` into the member's wallet, exactly once.

    Bonus stamps and points are credited as one ``campaign_reward`` ledger entry (idempotency key
    ``claim:<send>``) and the reward is done (``redeemed``); a free item, a discount or a badge
    becomes ``available`` with its own single-use code and keeps its expiry (a badge also goes on
    the member). An offer past its expiry lapses (``expired``). Returns the reward as it stands,
    or None when the send carries none. A second claim, concurrent or not, changes nothing.

    Raises ``CampaignSend.DoesNotExist`` when the send is not visible to the member at ``at``
    (not sent yet, returned, skipped, cancelled…): nothing is claimed before it went out.
    """
    return _claim(send=send, at=at)[0]


def _claim(*, send, at: datetime) -> tuple[WalletReward | None, bool]:
    """``reward_claim``, and whether this call claimed it: decided under the reward's lock, so of
    concurrent claimers exactly one hears it was added."""
    reward = WalletReward.objects.select_for_update().filter(send_id=send.pk).first()
    # Checked under the lock: a pause or a settled send cancels the offer in a transaction that
    # waits for this one, or that this one waited for and now sees.
    if not sends_visible_at(CampaignSend.objects.filter(pk=send.pk), now=at).exists():
        raise CampaignSend.DoesNotExist("No such message.")
    if reward is None or reward.status != RewardStatus.OFFERED:
        return reward, False
    offered = WalletReward.objects.filter(pk=reward.pk, status=RewardStatus.OFFERED)
    if reward.expires_at is not None and reward.expires_at <= at:
        offered.update(status=RewardStatus.EXPIRED)
        reward.status = RewardStatus.EXPIRED
        return reward, False

    if reward.kind in CREDITED_KINDS:
        count = int((reward.details or {}).get("count") or 0)
        # The conditional update is the claim; the ledger key keeps a retry from crediting twice.
        if not offered.update(status=RewardStatus.REDEEMED, claimed_at=at, redeemed_at=at):
            reward.refresh_from_db()
            return reward, False
        member = Member.objects.get(pk=reward.member_id)
        visit_record(
            member=member,
            kind=VisitKind.CAMPAIGN_REWARD,
            stamps=count if reward.kind == RewardKind.BONUS_STAMPS else 0,
            points=count if reward.kind == RewardKind.BONUS_POINTS else 0,
            occurred_at=at,
            source=VisitSource.CAMPAIGN,
            idempotency_key=f"claim:{send.pk}",
            note=reward.title[:200],
        )
        reward.status, reward.claimed_at, reward.redeemed_at = RewardStatus.REDEEMED, at, at
        return reward, True

    for _ in range(5):
        code = reward_code_new()
        try:
            with transaction.atomic():
                claimed = offered.update(status=RewardStatus.AVAILABLE, claimed_at=at, code=code)
        except IntegrityError:
            continue  # the code is another reward's in this business: draw again
        if not claimed:
            reward.refresh_from_db()
            return reward, False
        reward.status, reward.claimed_at, reward.code = RewardStatus.AVAILABLE, at, code
        if reward.kind == RewardKind.BADGE:
            member_badge_add(member_id=reward.member_id, badge=str((reward.details or {}).get("badge") or reward.title))
        return reward, True
    raise RuntimeError("could not draw a unique reward code")


@dataclass
class Opened:
    send: object
    reward: WalletReward | None
    first_open: bool
    claimed: bool  # this open put the reward in the wallet (or on the card)


@transaction.atomic
def inbox_open(*, send, at: datetime, delivery=None) -> Opened:
    """The member opened a message (in the app, or the link's "add to my wallet" on ``delivery``):
    claim its reward and mark it opened (once). Safe to repeat and to run concurrently. Raises
    ``CampaignSend.DoesNotExist`` for a message not visible to the member at ``at``."""
    # The claim first: it locks the reward before the send row, in the order a pause takes them.
    reward, claimed = _claim(send=send, at=at)
    first = send_mark_opened(send=send, at=at, delivery=delivery)
    if not first:
        send.opened_at = CampaignSend.objects.filter(pk=send.pk).values_list("opened_at", flat=True).get()
    return Opened(send=send, reward=reward, first_open=first, claimed=claimed)


def inbox_sends(*, member: Member, now: datetime) -> QuerySet:
    """The member's campaign messages visible at ``now`` (gone out; never before their send time,
    nor returned, skipped, cancelled, control or capped), each with its campaign, the texts its
    night fixed, its reward and the member's last purchase before it (for ``{days_away}``)."""
    return (
        sends_visible_at(CampaignSend.objects.filter(member=member), now=now)
        .select_related("campaign__business", "business", "message")
        .prefetch_related("rewards")
        .annotate(purchase_before=messages.purchase_before())
    )


def inbox_message(send, *, member: Member) -> dict:
    """Title and body as this member got them (``campaigns.messages``, as every surface renders
    them), and the send's reward."""
    rendered = messages.send_render(send, campaign=send.campaign, business=send.business,
                                    purchase_before=send.purchase_before, first_name=member.first_name)  # fmt: skip
    rewards = list(send.rewards.all())
    return {"title": rendered.title, "body": rendered.body, "reward": rewards[0] if rewards else None}
