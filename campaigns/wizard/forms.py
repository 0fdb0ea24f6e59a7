"""One form per wizard step. Each reads its initial values from the campaign and turns its
cleaned data into campaign fields; the model's validation (``campaigns.rules``) runs on save."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from members.models import CHANNELS, RewardKind

from ..models import Campaign, CampaignType, ChannelMode, OverBudget
from ..rules import CONDITIONS, PACED_CHANNELS, conditions_clean, message_check, reward_clean
from .channels import CHANNEL_LABELS, channel_order, channel_rows

PRESETS = (14, 30, 60, 90)


def _no_nul(value: str, label: str) -> str:
    if value and "\x00" in value:
        raise forms.ValidationError(f"{label} contains a NUL character.")
    return value


class StepForm(forms.Form):
    title_text = ""
    optional = False

    def __init__(self, *args, campaign: Campaign, **kwargs):
        self.campaign = campaign
        if "initial" not in kwargs and not args:
            kwargs["initial"] = self.initial_from(campaign)
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_from(cls, campaign: Campaign) -> dict:
        return {}

    def campaign_data(self) -> dict:
        raise NotImplementedError


class TypeForm(StepForm):
    title_text = "Type"
    type = forms.ChoiceField(choices=CampaignType.choices, widget=forms.RadioSelect, initial=CampaignType.WINBACK)
    name = forms.CharField(
        max_length=120, help_text="For example “We miss you”.", error_messages={"required": "Give the campaign a name."}
    )
    description = forms.CharField(
        required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}), label="Internal description"
    )

    def clean_name(self):
        name = _no_nul(self.cleaned_data["name"].strip(), "The name")
        if not name:
            raise forms.ValidationError("Give the campaign a name.")
        return name

    def clean_description(self):
        return _no_nul(self.cleaned_data["description"], "The description")

    @classmethod
    def initial_from(cls, campaign):
        return {"type": campaign.type, "name": campaign.name, "description": campaign.description}

    def campaign_data(self):
        return {k: self.cleaned_data[k] for k in ("type", "name", "description")}


class TriggerForm(StepForm):
    title_text = "Trigger"
    inactivity_days = forms.IntegerField(
        label="Inactivity period (days)",
        error_messages={"required": "Enter the inactivity period in days (1–365)."},
    )
    max_sends = forms.TypedChoiceField(
        choices=[(1, "Once"), (2, "Up to 2 times"), (3, "Up to 3 times")],
        coerce=int,
        widget=forms.RadioSelect,
        label="Maximum sends per member",
    )
    send_at = forms.TimeField(label="Send at", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    include_weekends = forms.BooleanField(required=False, label="Include weekends")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for channel in PACED_CHANNELS:
            self.fields[f"{channel}_interval"] = forms.IntegerField(
                min_value=0, max_value=3600, required=False, label=f"{CHANNEL_LABELS[channel]} interval (seconds)"
            )
            self.fields[f"{channel}_cap"] = forms.IntegerField(
                min_value=0, max_value=1_000_000, required=False, label=f"{CHANNEL_LABELS[channel]} daily cap"
            )

    def clean_inactivity_days(self):
        days = self.cleaned_data["inactivity_days"]
        if not 1 <= days <= 365:
            raise forms.ValidationError("The inactivity period must be between 1 and 365 days.")
        return days

    @classmethod
    def initial_from(cls, campaign):
        initial = {
            "inactivity_days": campaign.inactivity_days,
            "max_sends": campaign.max_sends,
            "send_at": campaign.send_at,
            "include_weekends": campaign.include_weekends,
        }
        for channel in PACED_CHANNELS:
            pacing = (campaign.pacing or {}).get(channel, {})
            initial[f"{channel}_interval"] = pacing.get("interval_seconds", 0)
            initial[f"{channel}_cap"] = pacing.get("daily_cap", 0)
        return initial

    def campaign_data(self):
        data = {k: self.cleaned_data[k] for k in ("inactivity_days", "max_sends", "send_at", "include_weekends")}
        pacing = {}
        for channel in PACED_CHANNELS:
            interval = self.cleaned_data.get(f"{channel}_interval") or 0
            cap = self.cleaned_data.get(f"{channel}_cap") or 0
            if interval or cap:
                pacing[channel] = {"interval_seconds": interval, "daily_cap": cap}
        data["pacing"] = pacing
        return data

    def pacing_rows(self):
        return [(CHANNEL_LABELS[c], self[f"{c}_interval"], self[f"{c}_cap"], c == "whatsapp") for c in PACED_CHANNELS]


REWARD_CHOICES = [("", "No reward"), *RewardKind.choices]


class RewardForm(StepForm):
    """Send 1's reward, and with escalation sends 2 and 3 (each "same as send 1" by default)."""

    title_text = "Reward"
    optional = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for n in (1, 2, 3):
            p = f"s{n}_"
            if n > 1:
                self.fields[f"{p}same"] = forms.BooleanField(required=False, label="Same as send 1")
            self.fields[f"{p}kind"] = forms.ChoiceField(
                choices=REWARD_CHOICES, required=False, widget=forms.RadioSelect
            )
            self.fields[f"{p}item"] = forms.CharField(required=False, max_length=80, label="Free item")
            self.fields[f"{p}count"] = forms.IntegerField(required=False, label="How many")
            self.fields[f"{p}percent"] = forms.IntegerField(required=False, label="Percent off")
            self.fields[f"{p}amount"] = forms.DecimalField(required=False, label="Amount off", decimal_places=2)
            self.fields[f"{p}badge"] = forms.CharField(required=False, max_length=60, label="Badge name")
            self.fields[f"{p}expiry_days"] = forms.IntegerField(required=False, label="Expires after (days)")

    @classmethod
    def initial_from(cls, campaign):
        initial = {}
        for n in (1, 2, 3):
            reward = campaign.reward if n == 1 else None
            if n > 1:
                extra = (campaign.escalation or [])[n - 2 : n - 1]
                reward = extra[0].get("reward") if extra else None
                initial[f"s{n}_same"] = reward is None
            reward = reward or {}
            initial[f"s{n}_kind"] = reward.get("kind", "")
            for key in ("item", "count", "percent", "amount", "badge"):
                initial[f"s{n}_{key}"] = reward.get(key)
            initial[f"s{n}_expiry_days"] = reward.get("expiry_days", 30)
        return initial

    def _reward(self, n: int) -> dict | None:
        data = self.cleaned_data
        p = f"s{n}_"
        if n > 1 and data.get(f"{p}same"):
            return None
        raw = {key: data.get(f"{p}{key}") for key in ("kind", "item", "count", "percent", "amount", "badge")}
        raw["expiry_days"] = data.get(f"{p}expiry_days") or 30
        return reward_clean({k: v for k, v in raw.items() if v not in (None, "")})

    def clean(self):
        data = super().clean()
        self.rewards = {}
        max_sends = self.campaign.max_sends
        for n in range(1, max_sends + 1):
            try:
                self.rewards[n] = self._reward(n)
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    name = f"s{n}_{field}"
                    self.add_error(name if name in self.fields else f"s{n}_kind", messages)
        return data

    def campaign_data(self):
        escalation = []
        for n in range(2, self.campaign.max_sends + 1):
            previous = (self.campaign.escalation or [])[n - 2 : n - 1]
            step = dict(previous[0]) if previous else {"title": "", "body": ""}
            step["reward"] = self.rewards.get(n)
            escalation.append(step)
        return {"reward": self.rewards.get(1) or {}, "escalation": escalation}


class MessageForm(StepForm):
    title_text = "Message"
    title = forms.CharField(max_length=120, required=False)
    body = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Message")
    channels = forms.MultipleChoiceField(
        choices=[(c, CHANNEL_LABELS[c]) for c in CHANNELS], widget=forms.CheckboxSelectMultiple, required=False
    )
    channel_mode = forms.ChoiceField(
        choices=[
            (ChannelMode.FIRST_REACHABLE, "First channel that reaches them (recommended)"),
            (ChannelMode.EVERY, "Every chosen channel"),
        ],
        widget=forms.RadioSelect,
        required=False,
        label="Send on",
    )
    # The channel order without JavaScript: a position per channel (the arrows renumber them).
    order_push = forms.IntegerField(required=False, min_value=1, max_value=len(CHANNELS), label="Web push position")
    order_sms = forms.IntegerField(required=False, min_value=1, max_value=len(CHANNELS), label="SMS position")
    order_whatsapp = forms.IntegerField(required=False, min_value=1, max_value=len(CHANNELS), label="WhatsApp position")
    order_email = forms.IntegerField(required=False, min_value=1, max_value=len(CHANNELS), label="Email position")
    over_budget = forms.ChoiceField(
        choices=OverBudget.choices, initial=OverBudget.FALLBACK, required=False, label="Past the monthly budget",
        help_text="What an SMS or WhatsApp message does once the business's monthly budget (Settings) is spent.",
    )  # fmt: skip
    title_2 = forms.CharField(max_length=120, required=False, label="Title")
    body_2 = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Message")
    title_3 = forms.CharField(max_length=120, required=False, label="Title")
    body_3 = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Message")

    @classmethod
    def initial_from(cls, campaign):
        initial = {"title": campaign.title, "body": campaign.body, "channels": campaign.channels,
                   "channel_mode": campaign.channel_mode or ChannelMode.FIRST_REACHABLE,
                   "over_budget": campaign.over_budget}  # fmt: skip
        for position, channel in enumerate(channel_order(campaign.channels), start=1):
            initial[f"order_{channel}"] = position
        for n, step in enumerate(campaign.escalation or [], start=2):
            initial[f"title_{n}"] = step.get("title", "")
            initial[f"body_{n}"] = step.get("body", "")
        return initial

    def clean(self):
        data = super().clean()
        for field, messages in message_check(data.get("title", ""), data.get("body", "")).items():
            self.add_error(field, messages)
        # Checked channels in the order asked for: by position, ties (and blanks) as listed.
        listed = channel_order(self.campaign.channels)
        data["channels"] = sorted(
            data.get("channels") or [],
            key=lambda ch: (data.get(f"order_{ch}") or len(CHANNELS) + 1, listed.index(ch)),
        )
        channels = data["channels"]
        if not channels:
            self.add_error("channels", "Choose at least one channel.")
        enabled = set(self.campaign.business.enabled_channels())
        for channel in channels:
            if channel not in enabled:
                self.add_error("channels", f"{CHANNEL_LABELS[channel]} is not set up yet (Settings → Channels).")
        for n in (2, 3):
            title, body = data.get(f"title_{n}", ""), data.get(f"body_{n}", "")
            for field, messages in message_check(title or "-", body or "-").items():
                self.add_error(f"{field}_{n}", messages)
        return data

    def campaign_data(self):
        data = self.cleaned_data
        escalation = []
        for n in range(2, self.campaign.max_sends + 1):
            previous = (self.campaign.escalation or [])[n - 2 : n - 1]
            reward = previous[0].get("reward") if previous else None
            escalation.append(
                {"title": data.get(f"title_{n}", ""), "body": data.get(f"body_{n}", ""), "reward": reward}
            )
        return {"title": data["title"], "body": data["body"], "channels": data["channels"],
                "channel_mode": data.get("channel_mode") or ChannelMode.FIRST_REACHABLE, "escalation": escalation,
                "over_budget": data.get("over_budget") or OverBudget.FALLBACK}  # fmt: skip

    def channel_rows(self) -> list[dict]:
        return channel_rows(self)


class ConditionsForm(StepForm):
    title_text = "Conditions"
    optional = True
    active = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, kind) in CONDITIONS.items():
            if kind == "int":
                field = forms.IntegerField(required=False, min_value=0, label=label)
            elif kind == "decimal":
                field = forms.DecimalField(required=False, min_value=0, label=label)
            elif kind == "date":
                field = forms.DateField(required=False, label=label, widget=forms.DateInput(attrs={"type": "date"}))
            else:
                field = forms.BooleanField(required=False, label=label, initial=True)
            self.fields[name] = field

    @classmethod
    def initial_from(cls, campaign):
        conditions = campaign.conditions or {}
        return {"active": ",".join(conditions), **conditions}

    def active_names(self) -> list[str]:
        raw = self.data.get("active") if self.is_bound else self.initial.get("active", "")
        return [n for n in (raw or "").split(",") if n in CONDITIONS]

    def rows(self):
        return [self[name] for name in self.active_names()]

    def available(self):
        active = set(self.active_names())
        return [(name, label) for name, (label, _) in CONDITIONS.items() if name not in active]

    def clean(self):
        data = super().clean()
        conditions = {}
        for name in self.active_names():
            value = data.get(name)
            if CONDITIONS[name][1] == "bool":
                value = True
            if value in (None, ""):
                self.add_error(name, "Enter a value, or remove this condition.")
                continue
            conditions[name] = value.isoformat() if hasattr(value, "isoformat") else value
        try:
            self.conditions = conditions_clean(conditions)
        except ValidationError as exc:
            for messages in exc.message_dict.values():
                self.add_error(None, messages)
        return data

    def campaign_data(self):
        return {"conditions": self.conditions}


class ABForm(StepForm):
    title_text = "A/B test"
    optional = True
    ab_enabled = forms.BooleanField(required=False, label="Test a second message (variant B)")
    variant_b_title = forms.CharField(max_length=120, required=False, label="Variant B title")
    variant_b_body = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Variant B message"
    )
    ab_share_b = forms.IntegerField(min_value=1, max_value=99, label="Share that gets B (%)")
    control_share = forms.IntegerField(
        min_value=0, max_value=20, label="Control group (%)", help_text="Members held out to measure real lift: 0–20 %."
    )

    @classmethod
    def initial_from(cls, campaign):
        return {k: getattr(campaign, k) for k in ("ab_enabled", "variant_b_title", "variant_b_body", "ab_share_b",
                                                  "control_share")}  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("ab_enabled"):
            for field, messages in message_check(
                data.get("variant_b_title", ""), data.get("variant_b_body", ""), field_prefix="variant_b_"
            ).items():
                self.add_error(field, messages)
        return data

    def campaign_data(self):
        return {k: self.cleaned_data[k] for k in ("ab_enabled", "variant_b_title", "variant_b_body", "ab_share_b",
                                                  "control_share")}  # fmt: skip


class ReviewForm(StepForm):
    title_text = "Review"

    def campaign_data(self):
        return {}


STEPS: list[tuple[str, type[StepForm]]] = [
    ("type", TypeForm),
    ("trigger", TriggerForm),
    ("reward", RewardForm),
    ("message", MessageForm),
    ("conditions", ConditionsForm),
    ("ab", ABForm),
    ("review", ReviewForm),
]
STEP_NAMES = [name for name, _ in STEPS]
