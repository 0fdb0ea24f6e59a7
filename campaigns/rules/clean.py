"""Campaign validation, by field, shared by every interface; rewards cleaned and described."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from members.models import CHANNELS, RewardKind

from ..messages import PLACEHOLDERS

if TYPE_CHECKING:
    from ..models import Campaign

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
    """Raise ValidationError with every problem, by field. Drafts may leave the message empty.

    Each check looks at one part of the campaign (and normalises it where it cleans a value);
    activation adds the checks a draft may fail.
    """
    checks = _DRAFT_CHECKS + (_ACTIVATION_CHECKS if for_activation else ())
    errors: dict[str, list[str]] = {}
    for check in checks:
        for field, messages in check(campaign).items():
            errors.setdefault(field, []).extend(messages)
    for field, messages in whatsapp_template_check(campaign, for_activation=for_activation).items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


Errors = dict[str, list[str]]


def _basics_check(campaign: Campaign) -> Errors:
    errors: Errors = {}
    if not (campaign.name or "").strip():
        errors["name"] = ["Give the campaign a name."]
    if not 1 <= (campaign.inactivity_days or 0) <= 365:
        errors["inactivity_days"] = ["The inactivity period must be between 1 and 365 days."]
    if campaign.max_sends not in (1, 2, 3):
        errors["max_sends"] = ["Maximum sends per member must be 1, 2 or 3."]
    return errors


def _reward_check(campaign: Campaign) -> Errors:
    try:
        campaign.reward = reward_clean(campaign.reward)
    except ValidationError as exc:
        by_field = exc.message_dict if hasattr(exc, "error_dict") else {"reward": exc.messages}
        return {(f"reward_{field}" if field != "reward" else "reward"): msgs for field, msgs in by_field.items()}
    return {}


def _escalation_check(campaign: Campaign) -> Errors:
    if not isinstance(campaign.escalation, list) or len(campaign.escalation) > 2:
        return {"escalation": ["Escalation has at most two further sends."]}
    errors: Errors = {}
    cleaned = []
    for i, step in enumerate(campaign.escalation, start=2):
        step = step or {}
        try:
            reward = reward_clean(step.get("reward")) if step.get("reward") is not None else None
        except ValidationError as exc:
            errors[f"escalation_{i}_reward"] = exc.messages
            reward = None
        for field, msgs in message_check(step.get("title") or "-", step.get("body") or "-").items():
            errors[f"escalation_{i}_{field}"] = msgs
        cleaned.append({"title": step.get("title") or "", "body": step.get("body") or "", "reward": reward})
    campaign.escalation = cleaned
    return errors


def _channels_check(campaign: Campaign) -> Errors:
    if not isinstance(campaign.channels, list) or any(c not in CHANNELS for c in campaign.channels):
        return {"channels": [f"Channels must be among {', '.join(CHANNELS)}."]}
    if len(set(campaign.channels)) != len(campaign.channels):
        return {"channels": ["A channel is listed twice."]}
    return {}


def _conditions_check(campaign: Campaign) -> Errors:
    try:
        campaign.conditions = conditions_clean(campaign.conditions)
    except ValidationError as exc:
        return exc.message_dict
    return {}


def _pacing_check(campaign: Campaign) -> Errors:
    try:
        campaign.pacing = pacing_clean(campaign.pacing)
    except ValidationError as exc:
        return exc.message_dict
    return {}


def _shares_check(campaign: Campaign) -> Errors:
    errors: Errors = {}
    if not 0 <= (campaign.control_share or 0) <= 20:
        errors["control_share"] = ["The control group must be between 0 % and 20 %."]
    if not 1 <= (campaign.ab_share_b or 0) <= 99:
        errors["ab_share_b"] = ["The share for variant B must be between 1 % and 99 %."]
    return errors


def _text_check(campaign: Campaign) -> Errors:
    return {
        field: ["The text contains a NUL character."]
        for text, field in ((campaign.title, "title"), (campaign.body, "body"))
        if text and "\x00" in text
    }


def _message_ready_check(campaign: Campaign) -> Errors:
    """The message (and variant B's, in an A/B test) is written."""
    errors = message_check(campaign.title, campaign.body)
    if campaign.ab_enabled:
        errors.update(message_check(campaign.variant_b_title, campaign.variant_b_body, field_prefix="variant_b_"))
    return errors


def _channels_ready_check(campaign: Campaign) -> Errors:
    """At least one channel, each set up for the business."""
    if not campaign.channels:
        return {"channels": ["Choose at least one channel."]}
    enabled = set(campaign.business.enabled_channels())
    missing = [c for c in campaign.channels if c not in enabled]
    if missing:
        return {"channels": [f"{', '.join(missing)} is not set up for this business yet (Settings → Channels)."]}
    return {}


def _send_at_check(campaign: Campaign) -> Errors:
    if {"sms", "whatsapp"} & set(campaign.channels or []) and not (QUIET_START <= campaign.send_at < QUIET_END):
        return {
            "send_at": [
                "SMS and WhatsApp go out only from 08:00 until 21:00 (member-local); choose a send time from 08:00 to 20:59."
            ]
        }
    return {}


_DRAFT_CHECKS = (
    _basics_check,
    _reward_check,
    _escalation_check,
    _channels_check,
    _conditions_check,
    _pacing_check,
    _shares_check,
    _text_check,
)
_ACTIVATION_CHECKS = (_message_ready_check, _channels_ready_check, _send_at_check)
