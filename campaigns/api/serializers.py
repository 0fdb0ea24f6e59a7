"""Campaign input and output. The input only types the body; every rule (the wizard's) is
``campaigns.rules.campaign_validate``, run by ``campaign_save``, whose errors come back by field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.engine import FUNNEL_STAGES
from campaigns.models import Campaign, CampaignType, ChannelMode
from campaigns.rules import PACED_CHANNELS
from campaigns.stats import STATES
from members.models import CHANNELS, RewardKind


@extend_schema_field({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$", "example": "09:00"})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time in the business's zone (“09:00”): no offset, so not OpenAPI's `time`."""


class RewardSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RewardKind.choices, required=False, allow_blank=True)
    item = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="free_item")
    count = serializers.IntegerField(required=False, allow_null=True, help_text="bonus_stamps, bonus_points")
    percent = serializers.IntegerField(required=False, allow_null=True, help_text="discount, or amount")
    amount = serializers.DecimalField(
        max_digits=9, decimal_places=2, required=False, allow_null=True, help_text="discount, or percent"
    )
    badge = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="badge")
    expiry_days = serializers.IntegerField(required=False, help_text="1–365, default 30")


class EscalationStepSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=120, required=False, allow_blank=True)
    body = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    reward = RewardSerializer(required=False, allow_null=True, help_text="null: the first send's reward")


class ConditionsSerializer(serializers.Serializer):
    min_visits = serializers.IntegerField(required=False, allow_null=True)
    max_visits = serializers.IntegerField(required=False, allow_null=True)
    min_spend = serializers.DecimalField(max_digits=12, decimal_places=2, required=False, allow_null=True)
    joined_before = serializers.DateField(required=False, allow_null=True)
    joined_after = serializers.DateField(required=False, allow_null=True)
    min_points = serializers.IntegerField(required=False, allow_null=True)
    min_stamps = serializers.IntegerField(required=False, allow_null=True)
    has_email = serializers.BooleanField(required=False)
    has_phone = serializers.BooleanField(required=False)
    max_days_away = serializers.IntegerField(required=False, allow_null=True)


class PacingSerializer(serializers.Serializer):
    interval_seconds = serializers.IntegerField(required=False, min_value=0, max_value=3600)
    daily_cap = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)


class PacingMapSerializer(serializers.Serializer):
    push = PacingSerializer(required=False)
    sms = PacingSerializer(required=False)
    whatsapp = PacingSerializer(required=False)
    email = PacingSerializer(required=False)


assert set(PacingMapSerializer._declared_fields) == set(PACED_CHANNELS)  # noqa: S101 - kept in step


class CampaignInSerializer(serializers.Serializer):
    """Every field optional: a draft is saved as it is built, and validated fully on activation."""

    type = serializers.ChoiceField(choices=CampaignType.choices, required=False)
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    inactivity_days = serializers.IntegerField(required=False, help_text="1–365")
    max_sends = serializers.IntegerField(required=False, help_text="1, 2 or 3")
    title = serializers.CharField(max_length=120, required=False, allow_blank=True)
    body = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    reward = RewardSerializer(required=False, help_text="{} for no reward")
    escalation = serializers.ListField(
        child=EscalationStepSerializer(), required=False, help_text="Sends 2 and 3: empty fields repeat send 1."
    )
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CHANNELS), required=False, help_text="In order: the channel priority."
    )
    channel_mode = serializers.ChoiceField(
        choices=ChannelMode.choices,
        required=False,
        help_text="first_reachable: one message, on the first channel that reaches the member (then the next on a "
        "permanent failure); every: one on each chosen channel.",
    )
    conditions = ConditionsSerializer(required=False)
    ab_enabled = serializers.BooleanField(required=False)
    variant_b_title = serializers.CharField(max_length=120, required=False, allow_blank=True)
    variant_b_body = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    ab_share_b = serializers.IntegerField(required=False, help_text="1–99 (% that gets B)")
    control_share = serializers.IntegerField(required=False, help_text="0–20 (% held out)")
    send_at = LocalTimeField(required=False)
    include_weekends = serializers.BooleanField(required=False)
    pacing = PacingMapSerializer(required=False)
    skip_if_returned = serializers.BooleanField(required=False)
    attribution_days = serializers.IntegerField(required=False, help_text="1–90")

    def validate(self, attrs):
        # Integers are bounded by the rules; keep absurd ones from reaching the database driver.
        for name in ("inactivity_days", "max_sends", "ab_share_b", "control_share", "attribution_days"):
            if name in attrs and not -32768 <= attrs[name] <= 32767:
                raise serializers.ValidationError({name: ["This number is out of range."]})
        # The JSON fields store what the rules read: dates and decimals as strings.
        for name in ("reward", "escalation", "conditions", "pacing"):
            if name in attrs:
                attrs[name] = _jsonable(attrs[name])
        return attrs


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


CAMPAIGN_OUT_FIELDS = [
    "id", "status", "type", "name", "description", "inactivity_days", "max_sends", "title", "body", "reward",
    "escalation", "channels", "channel_mode", "conditions", "ab_enabled", "variant_b_title", "variant_b_body", "ab_share_b",
    "control_share", "send_at", "include_weekends", "pacing", "skip_if_returned", "attribution_days",
    "activated_at", "paused_at", "archived_at", "created_at", "updated_at",
]  # fmt: skip


class CampaignSerializer(serializers.ModelSerializer):
    reward = RewardSerializer(read_only=True)
    escalation = EscalationStepSerializer(many=True, read_only=True)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=CHANNELS), read_only=True)
    conditions = ConditionsSerializer(read_only=True)
    pacing = PacingMapSerializer(read_only=True)
    send_at = LocalTimeField(read_only=True)

    class Meta:
        model = Campaign
        fields = CAMPAIGN_OUT_FIELDS
        read_only_fields = CAMPAIGN_OUT_FIELDS


class FunnelStageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=[key for key, _ in FUNNEL_STAGES],
        help_text="; ".join(f"{key}: {label}" for key, label in FUNNEL_STAGES),
    )
    count = serializers.IntegerField(help_text="Lapsed members left out at this stage (the first rule they fail).")


class UnreachableSerializer(serializers.Serializer):
    channel = serializers.CharField()
    no_contact = serializers.IntegerField(help_text="Of the unreachable: no phone, email or push subscription.")
    no_consent = serializers.IntegerField(help_text="Of the unreachable: an address but no consent on this channel.")


class ChannelCountSerializer(serializers.Serializer):
    channel = serializers.CharField()
    count = serializers.IntegerField()


class FunnelSerializer(serializers.Serializer):
    lapsed = serializers.IntegerField(help_text="Active members without a purchase for the inactivity period.")
    stages = FunnelStageSerializer(many=True, help_text="In order; lapsed minus every stage is messaged.")
    unreachable_by_channel = UnreachableSerializer(many=True)
    messaged = serializers.IntegerField(help_text="Messaged tonight: what the night writes as sends.")
    messaged_by_channel = ChannelCountSerializer(many=True, help_text="Messaged members reachable per channel.")


class AudienceSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Members the campaign would message on the next night (the control group not counted)."
    )
    funnel = FunnelSerializer()
    local_date = serializers.DateField(help_text="The night counted: tomorrow in the business's time zone.")
    away = serializers.DictField(child=serializers.IntegerField(), help_text="Members by how long they have been away.")


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class SendCountSerializer(CountSerializer):
    arm = serializers.CharField()
    outcome = serializers.CharField()


class DeliveryCountSerializer(CountSerializer):
    channel = serializers.CharField()
    status = serializers.CharField()


class RewardCountSerializer(CountSerializer):
    status = serializers.CharField()


class ArmFiguresSerializer(serializers.Serializer):
    arm = serializers.CharField()
    members = serializers.IntegerField()
    sends = serializers.IntegerField()
    reached = serializers.IntegerField(help_text="Sends with a delivery that went out.")
    opened = serializers.IntegerField()
    won = serializers.IntegerField(
        help_text="Members who made a purchase within the attribution window after one of their nights."
    )
    win_rate = serializers.FloatField(help_text="won / members")
    open_rate = serializers.FloatField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class ComparisonSerializer(serializers.Serializer):
    label_a = serializers.CharField()
    label_b = serializers.CharField()
    won_a = serializers.IntegerField(help_text="Members of group a who came back.")
    n_a = serializers.IntegerField(help_text="Members of group a.")
    won_b = serializers.IntegerField()
    n_b = serializers.IntegerField()
    rate_a = serializers.FloatField()
    rate_b = serializers.FloatField()
    difference = serializers.FloatField(help_text="rate_b − rate_a")
    ci_low = serializers.FloatField(help_text="95 % interval of the difference: Newcombe's hybrid score (method 10).")
    ci_high = serializers.FloatField()
    probability = serializers.FloatField(
        allow_null=True, help_text="Posterior P(rate_b > rate_a), Beta(1, 1) priors; null while a group is empty."
    )
    state = serializers.ChoiceField(choices=STATES, help_text="collecting, inconclusive, ahead or behind.")
    needed_a = serializers.IntegerField(help_text="Members group a still needs before the state leaves collecting.")
    needed_b = serializers.IntegerField()
    needed_returns = serializers.IntegerField(help_text="Returns (both groups) still needed before that.")
    incremental = serializers.FloatField(help_text="Members of group b who came back beyond group a's rate.")
    incremental_low = serializers.FloatField()
    incremental_high = serializers.FloatField()
    incremental_revenue = serializers.DecimalField(max_digits=14, decimal_places=0)
    incremental_revenue_low = serializers.DecimalField(max_digits=14, decimal_places=0)
    incremental_revenue_high = serializers.DecimalField(max_digits=14, decimal_places=0)
    method = serializers.CharField()


class NightSerializer(serializers.Serializer):
    local_date = serializers.DateField()
    sends = serializers.IntegerField()
    control = serializers.IntegerField()
    reached = serializers.IntegerField()
    won = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)


class ResultsSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    attribution_days = serializers.IntegerField()
    members_targeted = serializers.IntegerField()
    opened = serializers.IntegerField(help_text="Sends opened by their member.")
    sends = SendCountSerializer(many=True)
    deliveries = DeliveryCountSerializer(many=True)
    rewards = RewardCountSerializer(many=True)
    arms = ArmFiguresSerializer(many=True)
    treatment = ArmFiguresSerializer()
    ab = ComparisonSerializer(allow_null=True)
    lift = ComparisonSerializer(allow_null=True, help_text="The campaign (A and B) against the control group.")
    lift_by_arm = ComparisonSerializer(many=True, help_text="Each variant against the control group (A/B tests).")
    state = serializers.ChoiceField(choices=STATES, allow_null=True, help_text="The lift's state; null before a send.")
    summary = serializers.CharField(help_text="The plain sentence the campaign page leads with.")
    by_night = NightSerializer(many=True)


class RunStatsSerializer(serializers.Serializer):
    selected = serializers.IntegerField(required=False)
    capped = serializers.IntegerField(required=False)
    control = serializers.IntegerField(required=False)
    sends = serializers.IntegerField(required=False)
    deliveries = serializers.IntegerField(required=False)
    rewards = serializers.IntegerField(required=False)


class RunWentOutSerializer(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Deliveries that left: sent, delivered or opened.")
    delivered = serializers.IntegerField(help_text="Confirmed delivered by the provider, or opened.")
    opened = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Still to go: scheduled, queued or sending.")
    failed = serializers.IntegerField(help_text="Failed, or unconfirmed (the worker was lost mid-send).")
    not_sent = serializers.IntegerField(help_text="Cancelled (campaign paused) or skipped at send time.")


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    local_date = serializers.DateField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField()
    stats = RunStatsSerializer(help_text="This campaign's figures of the night: what it scheduled.")
    went_out = RunWentOutSerializer(help_text="What the night's deliveries have done since.")
