from __future__ import annotations

from django import forms

from .models import MemberStatus, Role, VisitKind

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

    def clean(self):
        data = super().clean()
        if not self.errors:
            data["members_text"] = self._text("members_file")
            data["visits_text"] = self._text("visits_file")
        return data


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AcceptInvitationForm(forms.Form):
    first_name = forms.CharField(max_length=80)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
