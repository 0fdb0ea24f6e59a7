"""The night's conditions and reachability as SQL (and reachability as an ORM filter for pages)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q

# Each condition as the member column it tests, the comparison, and the value's SQL type. The
# night's selection carries one nullable column per condition for every campaign (NULL: not
# set), so one statement evaluates every campaign of a business; never per member in Python.
CONDITION_SQL: dict[str, tuple[str, str, str]] = {
    "min_visits": ("purchase_count", ">=", "integer"),
    "max_visits": ("purchase_count", "<=", "integer"),
    "min_spend": ("total_spent", ">=", "numeric"),
    "joined_before": ("joined_on", "<", "date"),
    "joined_after": ("joined_on", ">", "date"),
    "min_points": ("points_balance", ">=", "integer"),
    "min_stamps": ("stamps_balance", ">=", "integer"),
    # max_days_away arrives as the instant a member must have purchased at or after.
    "max_days_away": ("last_purchase_at", ">=", "timestamp with time zone"),
}
FLAG_CONDITION_SQL: dict[str, str] = {"has_email": "email", "has_phone": "phone"}


def condition_values(conditions: dict, *, days_away_since) -> dict[str, Any]:
    """The value each condition of CONDITION_SQL compares with (None: not set), plus the flags.

    ``days_away_since(n)`` gives the instant a member must have purchased at or after to be
    at most ``n`` days away on the night being evaluated.
    """
    c = conditions or {}
    values: dict[str, Any] = {
        "min_visits": c.get("min_visits"),
        "max_visits": c.get("max_visits"),
        "min_spend": Decimal(c["min_spend"]) if "min_spend" in c else None,
        "joined_before": date.fromisoformat(c["joined_before"]) if "joined_before" in c else None,
        "joined_after": date.fromisoformat(c["joined_after"]) if "joined_after" in c else None,
        "min_points": c.get("min_points"),
        "min_stamps": c.get("min_stamps"),
        "max_days_away": days_away_since(c["max_days_away"]) if "max_days_away" in c else None,
    }
    values.update({name: bool(c.get(name)) for name in FLAG_CONDITION_SQL})
    return values


def conditions_sql(*, member: str = "m", values: str = "c", names=None) -> str:
    """The conditions (all, or those in ``names``) as SQL over ``member`` rows and a ``values``
    row of condition_values(); TRUE when there are none."""
    parts = [
        f"({values}.{name} IS NULL OR {member}.{column} {op} {values}.{name})"
        for name, (column, op, _) in CONDITION_SQL.items()
        if names is None or name in names
    ]
    parts += [
        f"(NOT {values}.{name} OR {member}.{column} <> '')"
        for name, column in FLAG_CONDITION_SQL.items()
        if names is None or name in names
    ]
    return " AND ".join(parts) or "1 = 1"


def reachable_q(channel: str, *, prefix: str = "") -> Q:
    """Members reachable on ``channel`` with consent (push: a live subscription).

    ``reachable_sql`` says the same in SQL for the night; a test holds the two equal.
    """
    from members.models import PushSubscription

    if channel == "sms" or channel == "whatsapp":
        return Q(**{f"{prefix}consent_{channel}": True}) & ~Q(**{f"{prefix}phone": ""})
    if channel == "email":
        return Q(**{f"{prefix}consent_email": True}) & ~Q(**{f"{prefix}email": ""})
    if channel == "push":
        member_ref = OuterRef(prefix.removesuffix("__") + "_id" if prefix else "pk")
        return Q(**{f"{prefix}consent_push": True}) & Q(Exists(PushSubscription.objects.filter(member=member_ref)))
    raise ValueError(f"unknown channel {channel}")


def reachable_sql(channel: str, *, member: str = "m") -> str:
    """``reachable_q`` as a SQL condition on the member row ``member``."""
    return f"({member}.consent_{channel} AND {_address_sql(channel, member=member, present=True)})"


def contact_missing_sql(channel: str, *, member: str = "m") -> str:
    """The member row ``member`` has nothing to reach on ``channel`` (no phone, no email, no push
    subscription): with ``reachable_sql`` it tells "no address" from "no consent"."""
    return f"({_address_sql(channel, member=member, present=False)})"


def _address_sql(channel: str, *, member: str, present: bool) -> str:
    """Whether the member row has (``present``) or lacks an address on ``channel``."""
    from members.models import PushSubscription

    if channel == "sms" or channel == "whatsapp":
        return f"{member}.phone {'<>' if present else '='} ''"
    if channel == "email":
        return f"{member}.email {'<>' if present else '='} ''"
    if channel == "push":
        table = PushSubscription._meta.db_table
        return f"{'' if present else 'NOT '}EXISTS (SELECT 1 FROM {table} ps WHERE ps.member_id = {member}.id)"
    raise ValueError(f"unknown channel {channel}")
