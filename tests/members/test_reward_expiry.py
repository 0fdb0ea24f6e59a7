"""Figures that age: an unclaimed offer or an unredeemed wallet reward past its expiry becomes
``expired`` by the periodic sweep, in every business at once, so the results' "Expired" is true."""

from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
import time_machine
from django.apps import apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_scopes import scope, scopes_disabled

from campaigns.results import campaign_results
from members import tasks, wallet
from members.models import WalletReward
from notifications import inbox
from tests.api.conftest import send_make
from tests.conftest import business_make, member_make

EXPIRY = datetime(2026, 4, 1, 16, 0, tzinfo=UTC)  # midnight in Kuala Lumpur


def reward_at(member, status, *, expires_at=EXPIRY):
    send = send_make(member, reward_kind="free_item")
    with scopes_disabled():
        WalletReward.objects.filter(send=send).update(status=status, expires_at=expires_at,
                                                      code=f"C{send.pk:09d}" if status != "offered" else None)  # fmt: skip
        return WalletReward.objects.get(send=send)


def statuses(rewards) -> list[str]:
    with scopes_disabled():
        got = dict(WalletReward.objects.filter(pk__in=[r.pk for r in rewards]).values_list("pk", "status"))
    return [got[r.pk] for r in rewards]


@pytest.fixture
def two_shops(db):
    return [member_make(business_make(), first_name=name) for name in ("Wei", "Ana")]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (EXPIRY - timedelta(seconds=1), ["offered", "available"]),
        (EXPIRY, ["expired", "expired"]),  # the instant of expiry is past it, as the claim reads it
        (EXPIRY + timedelta(days=3), ["expired", "expired"]),
    ],
)
def test_offers_and_wallet_rewards_expire_at_their_expiry_in_every_business(two_shops, now, expected):
    rewards = [reward_at(member, status) for member in two_shops for status in ("offered", "available")]

    wallet.rewards_expire(now=now)

    assert statuses(rewards) == expected * 2


def test_redeemed_cancelled_and_undated_rewards_are_left_alone(two_shops):
    wei, _ = two_shops
    kept = [reward_at(wei, "redeemed"), reward_at(wei, "cancelled"), reward_at(wei, "available", expires_at=None),
            reward_at(wei, "expired")]  # fmt: skip

    assert wallet.rewards_expire(now=EXPIRY + timedelta(days=1)) == 0
    assert statuses(kept) == ["redeemed", "cancelled", "available", "expired"]


def test_the_sweep_is_one_statement_for_every_business(two_shops, django_assert_num_queries):
    for member in two_shops:
        for _ in range(3):
            reward_at(member, "offered")

    with django_assert_num_queries(1):
        expired = wallet.rewards_expire(now=EXPIRY)

    assert expired == 6


def test_the_task_reads_the_clock_and_the_results_count_them_expired(two_shops):
    wei, _ = two_shops
    offer = reward_at(wei, "offered")
    with scopes_disabled():
        campaign = WalletReward.objects.get(pk=offer.pk).send.campaign

    with time_machine.travel(EXPIRY - timedelta(minutes=1), tick=False):
        assert tasks.rewards_expire_task() == 0
    with time_machine.travel(EXPIRY + timedelta(minutes=1), tick=False):
        assert tasks.rewards_expire_task() == 1

    with scope(business=wei.business_id):
        assert campaign_results(campaign).rewards["expired"] == 1


def test_an_expired_reward_cannot_be_claimed_or_redeemed_any_more(two_shops):
    wei, _ = two_shops
    offer, held = reward_at(wei, "offered"), reward_at(wei, "available")
    wallet.rewards_expire(now=EXPIRY)

    with scope(business=wei.business_id):
        assert inbox.reward_claim(send=offer.send, at=timezone.now()).status == "expired"
        with pytest.raises(wallet.RewardNotRedeemable) as refused:
            wallet.reward_redeem(code=held.code, at=timezone.now())
    assert refused.value.code == "expired"


def test_the_sweep_is_scheduled_in_beat_and_the_migration_reverses(db):
    migration = import_module("members.migrations.0005_reward_expiry_schedule")
    task = PeriodicTask.objects.get(task="members.rewards_expire")
    assert (task.enabled, task.interval.every, task.interval.period) == (True, 900, "seconds")

    migration.remove(apps, None)
    assert not PeriodicTask.objects.filter(task="members.rewards_expire").exists()
    migration.create(apps, None)
    assert PeriodicTask.objects.filter(task="members.rewards_expire", enabled=True).count() == 1
