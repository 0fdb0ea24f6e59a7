"""API fixtures: a member signed in on a device, a point-of-sale key, an owner's token, and a
campaign message with a reward offered in the member's inbox."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from knox.models import AuthToken
from rest_framework.test import APIClient

from campaigns.models import CampaignSend
from members import credentials
from members.models import RewardKind, WalletReward
from notifications.models import Delivery
from tests.conftest import campaign_make


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # DRF's throttles count in the cache: every test starts with none used.
    cache.clear()
    yield
    cache.clear()


def member_client_for(member, device_name: str = "phone") -> APIClient:
    with scope(business=member.business_id):
        issued = credentials.member_token_issue(member=member, device_name=device_name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.token = issued.token
    return client


def pos_client_for(business, name: str = "Till 1") -> APIClient:
    with scope(business=business.pk):
        issued = credentials.api_key_create(business=business, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    client.key = issued.key
    return client


def user_client_for(user) -> APIClient:
    _, secret = AuthToken.objects.create(user, expiry=timedelta(days=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture
def member_api(member) -> APIClient:
    return member_client_for(member)


@pytest.fixture
def pos_api(business) -> APIClient:
    return pos_client_for(business)


@pytest.fixture
def owner_api(owner) -> APIClient:
    return user_client_for(owner)


@pytest.fixture
def manager_api(manager) -> APIClient:
    return user_client_for(manager)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return user_client_for(staff)


REWARDS = {
    RewardKind.FREE_ITEM: {"kind": "free_item", "item": "cup of coffee", "expiry_days": 30},
    RewardKind.BONUS_STAMPS: {"kind": "bonus_stamps", "count": 2, "expiry_days": 30},
    RewardKind.BONUS_POINTS: {"kind": "bonus_points", "count": 50, "expiry_days": 30},
    RewardKind.DISCOUNT: {"kind": "discount", "percent": 20, "expiry_days": 30},
    RewardKind.BADGE: {"kind": "badge", "badge": "Regular", "expiry_days": 30},
}
TITLES = {
    RewardKind.FREE_ITEM: "a free cup of coffee",
    RewardKind.BONUS_STAMPS: "2 bonus stamps",
    RewardKind.BONUS_POINTS: "50 bonus points",
    RewardKind.DISCOUNT: "20% off",
    RewardKind.BADGE: "the “Regular” badge",
}


def send_make(member, *, reward_kind: str | None = RewardKind.FREE_ITEM, campaign=None, expires_in_days: int = 30,
              outcome: str = "sent", local_date: date | None = None, arm: str = "a", send_number: int = 1):  # fmt: skip
    """A campaign message the night sent to ``member`` (one SMS delivery), its reward offered."""
    business = member.business
    campaign = campaign or campaign_make(business, reward=REWARDS[reward_kind] if reward_kind else {})
    now = timezone.now()
    with scope(business=business.pk):
        send = CampaignSend.objects.create(
            business=business,
            campaign=campaign,
            member=member,
            send_number=send_number,
            arm=arm,
            local_date=local_date or timezone.localdate(now, business.tzinfo),
            outcome=outcome,
            created_at=now - timedelta(hours=1),
        )
        Delivery.objects.create(
            business=business, send=send, campaign=campaign, member=member, channel="sms",
            status="sent" if outcome == "sent" else "scheduled", scheduled_at=now - timedelta(hours=1),
            sent_at=now - timedelta(minutes=50) if outcome == "sent" else None, created_at=now, updated_at=now,
        )  # fmt: skip
        if reward_kind:
            WalletReward.objects.create(
                business=business,
                member=member,
                send=send,
                kind=reward_kind,
                title=TITLES[reward_kind],
                details=REWARDS[reward_kind],
                status="offered",
                offered_at=now - timedelta(hours=1),
                expires_at=now + timedelta(days=expires_in_days),
            )
    return send


def rows(model, **filters) -> list:
    with scopes_disabled():
        return list(model.objects.filter(**filters).order_by("pk").values())
