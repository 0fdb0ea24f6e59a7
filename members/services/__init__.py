"""Every write on businesses, members and the visit ledger, one module per kind of write."""

from .consent import (
    SUPPRESSION_CHUNK,
    member_consent_set,
    member_is_suppressed,
    phone_normalise,
    suppressed_values,
    suppression_digest,
)
from .ledger import DuplicateIdempotencyKey, members_recompute_totals, visit_record
from .members import member_create, member_update
from .team import (
    INVITATION_DAYS,
    User,
    business_channels_set,
    business_create,
    business_update,
    invitation_accept,
    invitation_create,
    invitation_find,
    invitation_send,
    membership_remove,
    membership_role_set,
    membership_unlock,
    user_get_or_create,
)

__all__ = [
    "INVITATION_DAYS",
    "SUPPRESSION_CHUNK",
    "DuplicateIdempotencyKey",
    "User",
    "business_channels_set",
    "business_create",
    "business_update",
    "invitation_accept",
    "invitation_create",
    "invitation_find",
    "invitation_send",
    "member_consent_set",
    "member_create",
    "member_is_suppressed",
    "member_update",
    "members_recompute_totals",
    "membership_remove",
    "membership_role_set",
    "membership_unlock",
    "phone_normalise",
    "suppressed_values",
    "suppression_digest",
    "user_get_or_create",
    "visit_record",
]
