"""Redeeming a wallet reward at the counter: the stamp page and the admin call the service the
point-of-sale API uses (``wallet.reward_redeem``) the same way and tell staff the same words."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from . import wallet
from .models import WalletReward

NOT_FOUND = "No reward with this code."


@dataclass(frozen=True)
class CounterRedeemed:
    reward: WalletReward | None  # the redeemed reward, or None when nothing changed
    message: str


def code_normalise(raw: str) -> str | None:
    """A code as staff type it (lower case, in groups, with spaces or dashes) in its stored form;
    None for what cannot be a code."""
    code = "".join(ch for ch in (raw or "") if ch not in " -\t").upper()
    if len(code) != 10 or any(ch not in wallet.CODE_ALPHABET for ch in code):
        return None
    return code


def reward_redeem_at_counter(*, code: str, recorded_by, source: str) -> CounterRedeemed:
    """Redeem ``code`` in the current scope, once; an unknown code (another business's included)
    and a used or expired one are answered in words, and change nothing."""
    try:
        reward = wallet.reward_redeem(code=code, at=timezone.now(), recorded_by=recorded_by, source=source)
    except WalletReward.DoesNotExist:
        return CounterRedeemed(None, NOT_FOUND)
    except wallet.RewardNotRedeemable as exc:
        return CounterRedeemed(None, exc.messages[0])
    return CounterRedeemed(reward, f"Redeemed {reward.title} for {reward.member.display_name}.")
