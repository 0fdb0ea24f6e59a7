"""Celery envelopes for the wallet: the clock read, one plain function called."""

from celery import shared_task
from django.utils import timezone

from . import wallet


@shared_task(name="members.rewards_expire", ignore_result=True)
def rewards_expire_task() -> int:
    return wallet.rewards_expire(now=timezone.now())
