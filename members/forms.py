from __future__ import annotations

from django import forms

from .counter import code_normalise
from .importing import ImportFailed, import_file_check
from .models import MemberStatus, Role, VisitKind
from .models.tenants import default_sms_price, default_whatsapp_price, validate_country_prices

OTHER_KINDS = [
    (VisitKind.BALANCE_CHECK, "Balance check"),
    (VisitKind.REFERRAL, "Referral"),
    (VisitKind.BIRTHDAY_REWARD, "Birthday reward"),
    (VisitKind.ADJUSTMENT, "Adjustment"),
]


class StampForm(forms.Form):
    """One tap at the counter; the idempotency key makes a double tap or a resubmit harmless."""

    ACTIONS = [("stamp", "Add stamp"), ("points", "Issue points"), ("redeem", "Redeem full card"), ("other", "Other")]
    action = forms.ChoiceField(choices=ACTIONS)
    idempotency_key = forms.UUIDField()
    stamps = forms.IntegerField(required=False, min_value=-50, max_value=50)
    points = forms.IntegerField(required=False, min_value=-100000, max_value=100000)
    amount = forms.DecimalField(required=False, min_value=0, max_digits=10, decimal_places=2, label="Amount spent")
    kind = forms.ChoiceField(choices=OTHER_KINDS, required=False)
    note = forms.CharField(required=False, max_length=200)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "points" and not data.get("points"):
            self.add_error("points", "Enter the points to issue.")
        if action == "points" and (data.get("points") or 0) < 0:
            self.add_error("points", "A purchase cannot take points away; use Other → Adjustment.")
        if action == "other" and not data.get("kind"):
            self.add_error("kind", "Choose what kind of visit this is.")
        return data


class RewardCodeForm(forms.Form):
    """A wallet reward's code, typed or scanned at the counter: lower case, spaces and dashes are fine."""

    code = forms.CharField(max_length=40, required=False, strip=True)

    def clean_code(self) -> str:
        code = code_normalise(self.cleaned_data.get("code") or "")
        if code is None:
            raise forms.ValidationError(
                "A reward code has 10 letters and digits (no 0, O, 1 or I), like 7KQ2MX9P4R: check it and try again."
            )
        return code


class MemberFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *MemberStatus.choices])
    lapsed = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any activity"),
            ("active", "Purchased in the last 14 days"),
            ("14", "No purchase for 14+ days"),
            ("30", "No purchase for 30+ days"),
            ("60", "No purchase for 60+ days"),
            ("90", "No purchase for 90+ days"),
            ("never", "Never purchased"),
        ],
    )
    reach = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any contact"),
            ("email", "Has email"),
            ("phone", "Has phone"),
            ("sms", "SMS consent"),
            ("whatsapp", "WhatsApp consent"),
            ("push", "Push consent"),
        ],
    )


class ImportForm(forms.Form):
    """The upload's checks made at once (size, encoding, header, row limit); the rows themselves
    are checked by the import job."""

    members_file = forms.FileField(label="Members CSV")
    visits_file = forms.FileField(label="Visits CSV (optional)", required=False)

    MAX_BYTES = 20 * 1024 * 1024

    def _text(self, name: str) -> str:
        upload = self.cleaned_data.get(name)
        if not upload:
            return ""
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError({name: "The file is larger than 20 MB; split it."})
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError({name: "The file is not UTF-8 text; save it as “CSV UTF-8”."}) from None

    def _rows(self, name: str, text: str, *, visits: bool) -> int:
        try:
            return import_file_check(text=text, visits=visits)
        except ImportFailed as exc:
            raise forms.ValidationError({name: [str(e) for e in exc.report.errors]}) from None

    def clean(self):
        data = super().clean()
        if not self.errors:
            data["members_text"] = self._text("members_file")
            data["visits_text"] = self._text("visits_file")
            data["total_rows"] = self._rows("members_file", data["members_text"], visits=False)
            if data["visits_text"].strip():
                data["total_rows"] += self._rows("visits_file", data["visits_text"], visits=True)
        return data


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AcceptInvitationForm(forms.Form):
    first_name = forms.CharField(max_length=80)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)


COMMON_ZONES = sorted(__import__("zoneinfo").available_timezones())


class BusinessSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    timezone = forms.ChoiceField(choices=[(z, z) for z in COMMON_ZONES], label="Time zone")
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$", max_length=3, error_messages={"invalid": "Use a 3-letter ISO code, e.g. MYR."}
    )
    country = forms.RegexField(regex=r"^[A-Z]{2}$", max_length=2, label="Country (for local phone numbers)",
                               error_messages={"invalid": "Use a 2-letter ISO code, e.g. MY."})  # fmt: skip
    program_type = forms.ChoiceField(
        choices=[("stamps", "Stamps"), ("points", "Points"), ("both", "Stamps and points")]
    )
    stamps_per_card = forms.IntegerField(min_value=1, max_value=50)
    frequency_cap_days = forms.IntegerField(
        min_value=0, max_value=90, label="Frequency cap (days)",
        help_text="At most one campaign message per member within this many days; 0 turns the cap off.",
    )  # fmt: skip
    sms_price = forms.DecimalField(required=False, min_value=0, max_digits=8, decimal_places=4,
                                   label="Price per SMS segment",
                                   help_text="In your currency; what your SMS provider charges per 160-character "
                                             "segment (70 with emoji or non-Latin letters). Empty: the default.")  # fmt: skip
    whatsapp_price = forms.DecimalField(required=False, min_value=0, max_digits=8, decimal_places=4,
                                        label="Price per WhatsApp message", help_text="Empty: the default.")  # fmt: skip
    country_prices = forms.JSONField(
        required=False, label="Prices by destination country", widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Where a country costs something else, e.g. {"GB": {"sms": "0.04", "whatsapp": "0.05"}}.',
    )  # fmt: skip
    monthly_budget = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=2, label="Monthly budget for SMS and WhatsApp",
        help_text="Empty: no limit. Past it, each campaign falls back to a free channel or waits for next month.",
    )  # fmt: skip

    def clean_sms_price(self):
        value = self.cleaned_data.get("sms_price")
        return default_sms_price() if value is None else value

    def clean_whatsapp_price(self):
        value = self.cleaned_data.get("whatsapp_price")
        return default_whatsapp_price() if value is None else value

    def clean_country_prices(self):
        value = self.cleaned_data.get("country_prices") or {}
        validate_country_prices(value)
        return value


class ChannelSettingsForm(forms.Form):
    push_enabled = forms.BooleanField(required=False, label="Web push")
    email_enabled = forms.BooleanField(required=False, label="Email")
    email_from_name = forms.CharField(required=False, max_length=80, label="Email sender name")
    sms_enabled = forms.BooleanField(required=False, label="SMS")
    sms_sender = forms.CharField(required=False, max_length=40, label="SMS sender (number or messaging service SID)")
    whatsapp_enabled = forms.BooleanField(required=False, label="WhatsApp")
    whatsapp_sender = forms.CharField(required=False, max_length=40, label="WhatsApp sender number")
    whatsapp_template = forms.CharField(required=False, max_length=80, label="Approved template (name or content SID)")

    def clean(self):
        data = super().clean()
        if data.get("whatsapp_enabled") and not data.get("whatsapp_template"):
            self.add_error("whatsapp_template", "WhatsApp needs an approved template for business-initiated messages.")
        return data
