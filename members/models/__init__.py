"""Tenants (Business, Membership, Invitation), members and the visit ledger, one module per group.

Every model keeps the ``members`` app label; migrations import ``validate_timezone`` and
``card_code_new`` from here.
"""

from .credentials import ApiKey, CodeDelivery, MemberToken, OneTimeCode
from .imports import ImportJob, ImportStatus
from .members import ConsentEvent, ConsentSource, Member, MemberStatus, PushSubscription, Suppression, card_code_new
from .tenants import BILLABLE_CHANNELS, CHANNELS, Business, Invitation, Membership, ProgramType, Role, validate_timezone
from .visits import NOT_IN_PERSON, RewardKind, RewardStatus, Visit, VisitKind, VisitSource, WalletReward

__all__ = [
    "BILLABLE_CHANNELS",
    "CHANNELS",
    "NOT_IN_PERSON",
    "ApiKey",
    "Business",
    "CodeDelivery",
    "ConsentEvent",
    "ConsentSource",
    "ImportJob",
    "ImportStatus",
    "Invitation",
    "Member",
    "MemberStatus",
    "MemberToken",
    "Membership",
    "OneTimeCode",
    "ProgramType",
    "PushSubscription",
    "RewardKind",
    "RewardStatus",
    "Role",
    "Suppression",
    "Visit",
    "VisitKind",
    "VisitSource",
    "WalletReward",
    "card_code_new",
    "validate_timezone",
]
