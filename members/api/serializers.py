"""Input and output serializers of the members API: explicit fields, never ``__all__``.

Inputs name only what a caller may set; business, balances, status and timestamps exist only
on outputs, so posting them changes nothing.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from rest_framework import serializers

from members.apiauth import identifier_normalise
from members.models import CHANNELS, Business, Member, RewardStatus, Visit, VisitKind, WalletReward
from members.wallet import reward_effective_status

# --- the member app ------------------------------------------------------------------------------


class IdentifierSerializer(serializers.Serializer):
    business = serializers.SlugField(max_length=60, help_text="The business's slug.")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if bool(attrs.get("phone")) == bool(attrs.get("email")):
            raise serializers.ValidationError({"phone": ["Give a phone number or an email address (one of them)."]})
        return attrs


class CodeRequestSerializer(IdentifierSerializer):
    pass


class CodeRequestedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds a code stays valid.")


class CodeExchangeSerializer(IdentifierSerializer):
    code = serializers.RegexField(r"^\d{6}$", max_length=6, help_text="The six-digit code that was sent.")
    device_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class JoinConsentsSerializer(serializers.Serializer):
    """Nothing is granted unless it is ``true``: the form shows every box unticked."""

    push = serializers.BooleanField(default=False, help_text="Notifications from the app.")
    sms = serializers.BooleanField(default=False, help_text="Text messages (needs the phone).")
    whatsapp = serializers.BooleanField(default=False, help_text="WhatsApp messages (needs the phone).")
    email = serializers.BooleanField(default=False, help_text="Emails (needs the email address).")


class JoinSerializer(IdentifierSerializer):
    first_name = serializers.CharField(
        max_length=80, error_messages={"required": "Enter your first name.", "blank": "Enter your first name."}
    )
    last_name = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    consents = JoinConsentsSerializer(
        required=False, help_text="The channels the person agreed to be messaged on; omitted ones are not granted."
    )

    business_found: Business | None = None

    def validate_business(self, slug: str) -> str:
        self.business_found = Business.objects.filter(slug=slug, is_active=True).first()
        if self.business_found is None:
            raise serializers.ValidationError("No such business.")
        return slug

    def validate_phone(self, phone: str) -> str:
        # Read in the business's country here, so a bad phone (or one that cannot be texted a
        # code) is told with the other field errors.
        if not phone or self.business_found is None:
            return phone
        try:
            return identifier_normalise(business=self.business_found, phone=phone)[1]
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


class BusinessBriefSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    slug = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    program_type = serializers.CharField(read_only=True)


class ProfileSerializer(serializers.ModelSerializer):
    business = BusinessBriefSerializer(read_only=True)
    email = serializers.CharField(read_only=True, help_text="Blank when none.")

    class Meta:
        model = Member
        fields = ["id", "first_name", "last_name", "email", "phone", "birthday", "joined_on", "business"]
        read_only_fields = ["id", "phone", "joined_on", "business"]


class ProfileUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)


class MemberTokenIssuedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once. Send it as `Authorization: Bearer <token>`.")
    expires_at = serializers.DateTimeField()
    device_id = serializers.IntegerField()
    member = ProfileSerializer()


class DeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    device_name = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True)
    current = serializers.SerializerMethodField()

    def get_current(self, token) -> bool:
        return token.pk == self.context.get("current_token_id")


class CardSerializer(serializers.Serializer):
    card_code = serializers.CharField(help_text="Shown as a QR code at the counter.")
    qr_svg_url = serializers.CharField(help_text="The card code as an SVG QR code.")
    program_type = serializers.CharField()
    stamps_balance = serializers.IntegerField()
    points_balance = serializers.IntegerField()
    stamps_per_card = serializers.IntegerField()
    stamps_on_card = serializers.IntegerField()
    stamps_to_full_card = serializers.IntegerField()
    full_cards = serializers.IntegerField()
    badges = serializers.ListField(child=serializers.CharField())


def card_data(member: Member) -> dict:
    per_card = member.business.stamps_per_card
    on_card = member.stamps_on_card()
    return {
        "card_code": member.card_code,
        "qr_svg_url": "/api/v1/member/card/qr.svg",
        "program_type": member.business.program_type,
        "stamps_balance": member.stamps_balance,
        "points_balance": member.points_balance,
        "stamps_per_card": per_card,
        "stamps_on_card": on_card,
        "stamps_to_full_card": per_card - on_card,
        "full_cards": member.full_cards,
        "badges": [str(b) for b in (member.badges or [])],
    }


class VisitSerializer(serializers.ModelSerializer):
    class Meta:
        model = Visit
        fields = ["id", "kind", "stamps_delta", "points_delta", "amount", "occurred_at"]
        read_only_fields = fields


class ConsentSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=CHANNELS)
    granted = serializers.BooleanField()
    changed_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_null=True)


class PreferencesUpdateSerializer(serializers.Serializer):
    push = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    whatsapp = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)


class WalletRewardSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    code = serializers.SerializerMethodField(help_text="The single-use code to show at the counter (while available).")
    details = serializers.SerializerMethodField()

    class Meta:
        model = WalletReward
        fields = ["id", "kind", "title", "status", "code", "details", "offered_at", "claimed_at", "redeemed_at",
                  "expires_at"]  # fmt: skip
        read_only_fields = fields

    def _now(self):
        return self.context.get("now") or timezone.now()

    def get_status(self, reward) -> str:
        return reward_effective_status(reward, now=self._now())

    def get_code(self, reward) -> str | None:
        return reward.code if self.get_status(reward) == RewardStatus.AVAILABLE else None

    def get_details(self, reward) -> dict[str, str]:
        # The reward as configured (item, count, percent, amount, badge), as strings.
        return {
            k: str(v) for k, v in (reward.details or {}).items() if k in ("item", "count", "percent", "amount", "badge")
        }


class InboxItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    business = serializers.CharField()
    sent_on = serializers.DateField(help_text="The local date of the message.")
    created_at = serializers.DateTimeField()
    opened_at = serializers.DateTimeField(allow_null=True)
    reward = WalletRewardSerializer(allow_null=True)


class InboxOpenedSerializer(InboxItemSerializer):
    claimed = serializers.BooleanField(
        help_text="Whether this open put the reward in the wallet (or on the card): of several at once, one."
    )


# --- point of sale -------------------------------------------------------------------------------


class PosRewardSerializer(serializers.ModelSerializer):
    class Meta:
        model = WalletReward
        fields = ["id", "kind", "title", "expires_at"]
        read_only_fields = fields


class PosMemberSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)
    stamps_per_card = serializers.IntegerField(source="business.stamps_per_card", read_only=True)
    stamps_on_card = serializers.SerializerMethodField()
    full_cards = serializers.IntegerField(read_only=True)
    available_rewards = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = ["id", "name", "first_name", "last_name", "card_code", "stamps_balance", "points_balance",
                  "stamps_per_card", "stamps_on_card", "full_cards", "last_visit_at", "available_rewards"]  # fmt: skip
        read_only_fields = fields

    def get_stamps_on_card(self, member) -> int:
        return member.stamps_on_card()

    def get_available_rewards(self, member) -> list[dict]:
        from django.db.models import Q

        now = timezone.now()
        rewards = WalletReward.objects.filter(member=member, status=RewardStatus.AVAILABLE).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )
        return PosRewardSerializer(rewards.order_by("expires_at", "pk"), many=True).data


POS_VISIT_KINDS = [VisitKind.PURCHASE, VisitKind.REDEMPTION, VisitKind.BALANCE_CHECK]


class VisitCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=POS_VISIT_KINDS, default=VisitKind.PURCHASE)
    stamps = serializers.IntegerField(min_value=-1000, max_value=1000, default=0)
    points = serializers.IntegerField(min_value=-1_000_000, max_value=1_000_000, default=0)
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False, allow_null=True)
    occurred_at = serializers.DateTimeField(required=False, help_text="Default: now. Backdated visits are allowed.")
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    idempotency_key = serializers.CharField(
        max_length=100, required=False, help_text="Instead of the `Idempotency-Key` header."
    )

    def validate(self, attrs):
        kind, stamps, points = attrs["kind"], attrs["stamps"], attrs["points"]
        if kind == VisitKind.PURCHASE and (stamps < 0 or points < 0):
            raise serializers.ValidationError({"stamps": ["A purchase cannot take stamps or points away."]})
        if kind == VisitKind.REDEMPTION and (stamps > 0 or points > 0):
            raise serializers.ValidationError({"stamps": ["A redemption takes stamps or points away."]})
        if kind == VisitKind.BALANCE_CHECK and (stamps or points):
            raise serializers.ValidationError({"stamps": ["A balance check moves no stamps or points."]})
        return attrs


class PosVisitSerializer(serializers.ModelSerializer):
    member = serializers.IntegerField(source="member_id", read_only=True)

    class Meta:
        model = Visit
        fields = ["id", "member", "kind", "stamps_delta", "points_delta", "amount", "occurred_at", "source", "note"]
        read_only_fields = fields


class RedeemSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=16, help_text="The reward's single-use code (scanned or typed).")


class RedeemedSerializer(serializers.ModelSerializer):
    member = serializers.IntegerField(source="member_id", read_only=True)

    class Meta:
        model = WalletReward
        fields = ["id", "member", "kind", "title", "status", "redeemed_at", "expires_at"]
        read_only_fields = fields


# --- owners and managers -------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=200, style={"input_type": "password"}, trim_whitespace=False)
    device_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class LoginTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once. Send it as `Authorization: Token <token>`.")
    expires_at = serializers.DateTimeField()
    businesses = BusinessBriefSerializer(many=True)


class ApiKeySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    prefix = serializers.CharField(read_only=True, help_text="The key's first characters, to tell keys apart.")
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown only in this response; only a hash is kept.")


class ConsentsInSerializer(serializers.Serializer):
    push = serializers.BooleanField(required=False)
    sms = serializers.BooleanField(required=False)
    whatsapp = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)


class MemberSerializer(serializers.ModelSerializer):
    consents = serializers.SerializerMethodField()
    email = serializers.CharField(read_only=True, help_text="Blank when none.")

    class Meta:
        model = Member
        fields = ["id", "first_name", "last_name", "phone", "email", "card_code", "birthday", "timezone", "joined_on",
                  "status", "stamps_balance", "points_balance", "badges", "consents", "last_purchase_at",
                  "last_visit_at", "purchase_count", "visit_count", "total_spent", "created_at", "erased_at"]  # fmt: skip
        read_only_fields = fields

    def get_consents(self, member) -> dict[str, bool]:
        return {c: member.has_consent(c) for c in CHANNELS}


class MemberUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False, allow_blank=True)


class MemberCreateSerializer(MemberUpdateSerializer):
    card_code = serializers.RegexField(r"^[A-Za-z0-9-]{4,32}$", required=False, help_text="Default: a new code.")
    consents = ConsentsInSerializer(required=False, help_text="Consent recorded by staff, per channel.")
