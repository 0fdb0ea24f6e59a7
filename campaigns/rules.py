"""Campaign validation, conditions and reachability compiled to SQL, rewards described and rendered.

Used by the model's ``clean()``, the wizard, the API and ``campaign_activate`` alike, so every
interface gives the same errors.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q

from members.models import CHANNELS, RewardKind

if TYPE_CHECKING:
    from .models import Campaign

PLACEHOLDERS = ("{first_name}", "{business}", "{reward}", "{days_away}")
QUIET_START, QUIET_END = time(8, 0), time(21, 0)  # SMS and WhatsApp only between these, member-local
PACED_CHANNELS = ("whatsapp", "sms", "email", "push")

# name → (label, kind of value)
CONDITIONS: dict[str, tuple[str, str]] = {
    "min_visits": ("Lifetime visits at least", "int"),
    "max_visits": ("Lifetime visits at most", "int"),
    "min_spend": ("Total spend at least", "decimal"),
    "joined_before": ("Joined before", "date"),
    "joined_after": ("Joined after", "date"),
    "min_points": ("Points balance at least", "int"),
    "min_stamps": ("Stamp balance at least", "int"),
    "has_email": ("Has an email address", "bool"),
    "has_phone": ("Has a phone number", "bool"),
    "max_days_away": ("Days away at most", "int"),
}

REWARD_FIELDS: dict[str, list[str]] = {
    RewardKind.FREE_ITEM: ["item"],
    RewardKind.BONUS_STAMPS: ["count"],
    RewardKind.BONUS_POINTS: ["count"],
    RewardKind.DISCOUNT: [],  # percent or amount
    RewardKind.BADGE: ["badge"],
}


def _int(value: Any, label: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{label} must be a whole number.") from None
    if isinstance(value, float) and value != number:
        raise ValidationError(f"{label} must be a whole number.")
    if not lo <= number <= hi:
        raise ValidationError(f"{label} must be between {lo} and {hi}.")
    return number


def reward_clean(reward: dict | None) -> dict:
    """Validate and normalise a reward: {} for none, else {"kind", its fields, "expiry_days"}."""
    if not reward or not reward.get("kind"):
        return {}
    if not isinstance(reward, dict):
        raise ValidationError("The reward is not valid.")
    kind = reward["kind"]
    if kind not in RewardKind.values:
        raise ValidationError(f"“{kind}” is not a reward type.")
    out: dict[str, Any] = {"kind": kind}
    if kind == RewardKind.FREE_ITEM:
        item = str(reward.get("item") or "").strip()
        if not item:
            raise ValidationError({"item": "Name the free item (for example “a cup of coffee”)."})
        if len(item) > 80:
            raise ValidationError({"item": "The item name is too long (80 characters at most)."})
        out["item"] = item
    elif kind in (RewardKind.BONUS_STAMPS, RewardKind.BONUS_POINTS):
        label = "Bonus stamps" if kind == RewardKind.BONUS_STAMPS else "Bonus points"
        try:
            out["count"] = _int(reward.get("count"), label, 1, 10_000 if kind == RewardKind.BONUS_POINTS else 50)
        except ValidationError as exc:
            raise ValidationError({"count": exc.messages}) from None
    elif kind == RewardKind.DISCOUNT:
        percent, amount = reward.get("percent"), reward.get("amount")
        if (percent in (None, "")) == (amount in (None, "")):
            raise ValidationError({"percent": "Give the discount as a percent or as an amount (one of them)."})
        if percent not in (None, ""):
            try:
                out["percent"] = _int(percent, "The discount percent", 1, 100)
            except ValidationError as exc:
                raise ValidationError({"percent": exc.messages}) from None
        else:
            try:
                value = Decimal(str(amount))
            except InvalidOperation:
                raise ValidationError({"amount": "The discount amount must be a number."}) from None
            if not Decimal("0.01") <= value <= Decimal("100000"):
                raise ValidationError({"amount": "The discount amount must be more than 0."})
            out["amount"] = str(value.quantize(Decimal("0.01")))
    elif kind == RewardKind.BADGE:
        badge = str(reward.get("badge") or "").strip()
        if not badge:
            raise ValidationError({"badge": "Name the badge."})
        out["badge"] = badge[:60]
    try:
        out["expiry_days"] = _int(reward.get("expiry_days", 30), "The reward expiry", 1, 365)
    except ValidationError as exc:
        raise ValidationError({"expiry_days": exc.messages}) from None
    return out


def reward_title(reward: dict, *, currency: str = "") -> str:
    """A reward as members read it: “a free cup of coffee”, “2 bonus stamps”, “20% off”."""
    kind = (reward or {}).get("kind")
    if not kind:
        return ""
    if kind == RewardKind.FREE_ITEM:
        return f"a free {reward['item']}"
    if kind == RewardKind.BONUS_STAMPS:
        return f"{reward['count']} bonus stamp{'s' if reward['count'] != 1 else ''}"
    if kind == RewardKind.BONUS_POINTS:
        return f"{reward['count']} bonus points"
    if kind == RewardKind.DISCOUNT:
        if "percent" in reward:
            return f"{reward['percent']}% off"
        return f"{currency} {reward['amount']} off".strip()
    if kind == RewardKind.BADGE:
        return f"the “{reward['badge']}” badge"
    return ""


def conditions_clean(conditions: dict | None) -> dict:
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in (conditions or {}).items():
        if name not in CONDITIONS:
            errors.setdefault("conditions", []).append(f"“{name}” is not a condition.")
            continue
        label, kind = CONDITIONS[name]
        if value in (None, ""):
            continue
        try:
            if kind == "int":
                out[name] = _int(value, label, 0, 1_000_000)
            elif kind == "decimal":
                try:
                    number = Decimal(str(value))
                except InvalidOperation:
                    raise ValidationError(f"{label} must be a number.") from None
                if number < 0:
                    raise ValidationError(f"{label} cannot be negative.")
                out[name] = str(number)
            elif kind == "date":
                out[name] = (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
            elif kind == "bool":
                if value not in (True, False, "true", "false", 1, 0):
                    raise ValidationError(f"{label} must be true or false.")
                if value in (True, "true", 1):
                    out[name] = True
        except ValueError:
            errors.setdefault("conditions", []).append(f"{label}: “{value}” is not a date (YYYY-MM-DD).")
        except ValidationError as exc:
            errors.setdefault("conditions", []).extend(exc.messages)
    if "min_visits" in out and "max_visits" in out and out["min_visits"] > out["max_visits"]:
        errors.setdefault("conditions", []).append("Lifetime visits at least is more than at most.")
    if "joined_after" in out and "joined_before" in out and out["joined_after"] >= out["joined_before"]:
        errors.setdefault("conditions", []).append("“Joined after” must be before “joined before”.")
    if errors:
        raise ValidationError(errors)
    return out


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
    from notifications.models import PushSubscription

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
    from notifications.models import PushSubscription

    if channel == "sms" or channel == "whatsapp":
        return f"{member}.phone {'<>' if present else '='} ''"
    if channel == "email":
        return f"{member}.email {'<>' if present else '='} ''"
    if channel == "push":
        table = PushSubscription._meta.db_table
        return f"{'' if present else 'NOT '}EXISTS (SELECT 1 FROM {table} ps WHERE ps.member_id = {member}.id)"
    raise ValueError(f"unknown channel {channel}")


def pacing_clean(pacing: dict | None) -> dict:
    out: dict[str, dict[str, int]] = {}
    for channel, values in (pacing or {}).items():
        if channel not in PACED_CHANNELS or not isinstance(values, dict):
            raise ValidationError({"pacing": f"“{channel}” is not a channel."})
        try:
            out[channel] = {
                "interval_seconds": _int(values.get("interval_seconds", 0) or 0, "The broadcast interval", 0, 3600),
                "daily_cap": _int(values.get("daily_cap", 0) or 0, "The daily cap", 0, 1_000_000),
            }
        except ValidationError as exc:
            raise ValidationError({"pacing": exc.messages}) from None
    return out


def message_check(title: str, body: str, *, field_prefix: str = "") -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not (title or "").strip():
        errors[f"{field_prefix}title"] = ["The title is required."]
    if not (body or "").strip():
        errors[f"{field_prefix}body"] = ["The message is required."]
    for name, text in ((f"{field_prefix}title", title), (f"{field_prefix}body", body)):
        if text and "\x00" in text:
            errors.setdefault(name, []).append("The text contains a NUL character.")
        unknown = {p for p in re.findall(r"\{[^{}]*\}", text or "") if p not in PLACEHOLDERS}
        if unknown:
            errors.setdefault(name, []).append(
                f"Unknown placeholder {', '.join(sorted(unknown))}; use {', '.join(PLACEHOLDERS)}."
            )
    return errors


def whatsapp_template_check(campaign: Campaign, *, for_activation: bool) -> dict[str, list[str]]:
    """The campaign's WhatsApp template must be one of its business's (always, draft or not), and
    approved by WhatsApp when the campaign goes out on WhatsApp."""
    from notifications.models import TemplateStatus

    if campaign.whatsapp_template_id is None:
        return {}
    template = campaign.whatsapp_template
    if template.business_id != campaign.business_id:
        return {"whatsapp_template": ["Choose one of this business's WhatsApp templates."]}
    if for_activation and "whatsapp" in (campaign.channels or []) and template.status != TemplateStatus.APPROVED:
        return {"whatsapp_template": [
            f"WhatsApp template '{template.name}' is {template.get_status_display().lower()}, not approved by "
            "WhatsApp: choose an approved template or remove WhatsApp from the channels."
        ]}  # fmt: skip
    return {}


def campaign_validate(campaign: Campaign, *, for_activation: bool) -> None:
    """Raise ValidationError with every problem, by field. Drafts may leave the message empty."""
    errors: dict[str, list[str]] = {}

    def add(field: str, messages) -> None:
        errors.setdefault(field, []).extend(messages if isinstance(messages, list) else [messages])

    if not (campaign.name or "").strip():
        add("name", "Give the campaign a name.")
    if not 1 <= (campaign.inactivity_days or 0) <= 365:
        add("inactivity_days", "The inactivity period must be between 1 and 365 days.")
    if campaign.max_sends not in (1, 2, 3):
        add("max_sends", "Maximum sends per member must be 1, 2 or 3.")
    try:
        campaign.reward = reward_clean(campaign.reward)
    except ValidationError as exc:
        for field, msgs in (exc.message_dict if hasattr(exc, "error_dict") else {"reward": exc.messages}).items():
            add(f"reward_{field}" if field != "reward" else "reward", msgs)
    if not isinstance(campaign.escalation, list) or len(campaign.escalation) > 2:
        add("escalation", "Escalation has at most two further sends.")
    else:
        cleaned = []
        for i, step in enumerate(campaign.escalation, start=2):
            step = step or {}
            try:
                reward = reward_clean(step.get("reward")) if step.get("reward") is not None else None
            except ValidationError as exc:
                add(f"escalation_{i}_reward", exc.messages)
                reward = None
            for field, msgs in message_check(step.get("title") or "-", step.get("body") or "-").items():
                add(f"escalation_{i}_{field}", msgs)
            cleaned.append({"title": step.get("title") or "", "body": step.get("body") or "", "reward": reward})
        campaign.escalation = cleaned
    if not isinstance(campaign.channels, list) or any(c not in CHANNELS for c in campaign.channels):
        add("channels", f"Channels must be among {', '.join(CHANNELS)}.")
    elif len(set(campaign.channels)) != len(campaign.channels):
        add("channels", "A channel is listed twice.")
    try:
        campaign.conditions = conditions_clean(campaign.conditions)
    except ValidationError as exc:
        for field, msgs in exc.message_dict.items():
            add(field, msgs)
    try:
        campaign.pacing = pacing_clean(campaign.pacing)
    except ValidationError as exc:
        for field, msgs in exc.message_dict.items():
            add(field, msgs)
    if not 0 <= (campaign.control_share or 0) <= 20:
        add("control_share", "The control group must be between 0 % and 20 %.")
    if not 1 <= (campaign.ab_share_b or 0) <= 99:
        add("ab_share_b", "The share for variant B must be between 1 % and 99 %.")
    for text, field in ((campaign.title, "title"), (campaign.body, "body")):
        if text and "\x00" in text:
            add(field, "The text contains a NUL character.")

    if for_activation:
        for field, msgs in message_check(campaign.title, campaign.body).items():
            add(field, msgs)
        if campaign.ab_enabled:
            for field, msgs in message_check(
                campaign.variant_b_title, campaign.variant_b_body, field_prefix="variant_b_"
            ).items():
                add(field, msgs)
        if not campaign.channels:
            add("channels", "Choose at least one channel.")
        else:
            enabled = set(campaign.business.enabled_channels())
            missing = [c for c in campaign.channels if c not in enabled]
            if missing:
                add("channels", f"{', '.join(missing)} is not set up for this business yet (Settings → Channels).")
        if {"sms", "whatsapp"} & set(campaign.channels or []) and not (QUIET_START <= campaign.send_at < QUIET_END):
            add(
                "send_at",
                "SMS and WhatsApp go out only from 08:00 until 21:00 (member-local); choose a send time from 08:00 to 20:59.",
            )
    for field, msgs in whatsapp_template_check(campaign, for_activation=for_activation).items():
        add(field, msgs)
    if errors:
        raise ValidationError(errors)
