from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from winback.admin_site import BusinessScopedAdmin
from winback.tenancy import business_scope

from . import services
from .counter import reward_redeem_at_counter
from .models import (
    CHANNELS,
    Business,
    ConsentEvent,
    ConsentSource,
    Member,
    Membership,
    OneTimeCode,
    PushSubscription,
    Visit,
    VisitKind,
    VisitSource,
    WalletReward,
)


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "currency", "program_type", "is_active", "created_at"]
    search_fields = ["name", "slug"]

    # The platform's only: a team sees its business through the settings page, not here. Django
    # calls the object permissions with ``obj`` (one shared one-argument method answered 500).
    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(BusinessScopedAdmin):
    list_display = ["user", "business", "role", "created_at"]
    view_roles = ("owner",)
    add_roles = change_roles = ()
    list_select_related = ["user", "business"]
    raw_id_fields = ["user"]


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    fields = ["channel", "granted", "source", "occurred_at", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class VisitInline(admin.TabularInline):
    model = Visit
    fields = ["occurred_at", "kind", "stamps_delta", "points_delta", "amount", "source", "recorded_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-occurred_at"]
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(BusinessScopedAdmin):
    list_display = [
        "card_code", "first_name", "last_name", "phone", "email",
        "stamps_balance", "points_balance", "last_purchase_at", "purchase_count", "status",
    ]  # fmt: skip
    list_filter = ["status", "consent_sms", "consent_email"]
    search_fields = ["card_code", "first_name", "last_name", "phone", "email"]
    readonly_fields = [
        "stamps_balance", "points_balance", "last_purchase_at", "last_visit_at",
        "purchase_count", "visit_count", "total_spent", "status", "erased_at", "created_at",
    ]  # fmt: skip
    inlines = [VisitInline, ConsentEventInline]
    list_select_related = ["business"]
    ordering = ["-last_purchase_at"]

    def save_model(self, request, obj, form, change):
        if not change and not request.user.is_superuser:
            obj.business = request.business
        if obj.phone:
            obj.phone = services.phone_normalise(obj.phone, region=obj.business.country)
        # Consent has a history: the member is saved with the consent it had, and each change
        # then goes through the consent service, which records its ConsentEvent.
        changed = {c: getattr(obj, f"consent_{c}") for c in CHANNELS if f"consent_{c}" in form.changed_data}
        for channel in changed:
            setattr(obj, f"consent_{channel}", form.initial.get(f"consent_{channel}", False))
        super().save_model(request, obj, form, change)
        for channel, granted in changed.items():
            services.member_consent_set(member=obj, channel=channel, granted=granted, source=ConsentSource.STAFF,
                                        note=f"changed in the admin by {request.user}")  # fmt: skip

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        business = obj.business if obj else getattr(request, "business", None)

        class Form(form):
            def clean_phone(self):
                raw = self.cleaned_data.get("phone", "")
                region = business.country if business else ""
                try:
                    return services.phone_normalise(raw, region=region)
                except ValidationError as exc:
                    raise forms.ValidationError(exc.messages) from None

        return Form


class VisitAddForm(forms.ModelForm):
    # No Meta here: the admin builds the fields inside the request's scope.

    def clean(self):
        data = super().clean()
        member = data.get("member")
        if member is not None:
            if member.stamps_balance + (data.get("stamps_delta") or 0) < 0:
                self.add_error("stamps_delta", f"The card has only {member.stamps_balance} stamps.")
            if member.points_balance + (data.get("points_delta") or 0) < 0:
                self.add_error("points_delta", f"The card has only {member.points_balance} points.")
        return data


@admin.register(Visit)
class VisitAdmin(BusinessScopedAdmin):
    """The ledger is append-only: visits are added through visit_record, never changed."""

    form = VisitAddForm
    fields = ["member", "kind", "stamps_delta", "points_delta", "amount", "occurred_at", "note"]
    list_display = ["occurred_at", "member", "kind", "stamps_delta", "points_delta", "amount", "source", "recorded_by"]
    list_filter = ["kind", "source"]
    search_fields = ["member__card_code", "member__first_name", "member__last_name", "member__phone"]
    autocomplete_fields = ["member"]
    list_select_related = ["member", "member__business", "recorded_by"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at"]
    add_roles = ("owner", "manager", "staff")
    change_roles = ()

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return [f.name for f in Visit._meta.fields]
        return []

    def save_model(self, request, obj, form, change):
        if change:
            return
        visit = services.visit_record(
            member=obj.member,
            kind=obj.kind,
            stamps=obj.stamps_delta,
            points=obj.points_delta,
            amount=obj.amount,
            occurred_at=obj.occurred_at,
            recorded_by=request.user,
            source=VisitSource.ADMIN,
            note=obj.note,
        )
        obj.pk = visit.pk
        obj.business_id = visit.business_id

    def get_changeform_initial_data(self, request):
        from django.utils import timezone

        return {"kind": VisitKind.PURCHASE, "stamps_delta": 1, "occurred_at": timezone.now()}


@admin.register(WalletReward)
class WalletRewardAdmin(BusinessScopedAdmin):
    """Rewards are written by the claim and the redeem services only: read here, and redeemed
    with the action, through the same service as the counter and the point-of-sale API."""

    list_display = ["title", "member", "kind", "status", "code", "expires_at", "redeemed_at"]
    list_filter = ["status", "kind"]
    search_fields = ["code", "member__card_code", "member__first_name", "member__last_name", "member__phone"]
    list_select_related = ["member"]
    ordering = ["-offered_at", "-pk"]
    add_roles = change_roles = ()
    actions = ["redeem_selected"]

    def has_redeem_permission(self, request):
        return self._allowed(request, self.view_roles)

    @admin.action(description="Redeem selected available rewards", permissions=["redeem"])
    def redeem_selected(self, request, queryset):
        for reward in queryset.select_related("member").order_by("pk"):
            if reward.code:
                # The platform superuser's admin runs unscoped; a code is unique only in its business.
                with business_scope(reward.business_id):
                    done = reward_redeem_at_counter(
                        code=reward.code, recorded_by=request.user, source=VisitSource.ADMIN
                    )
                if done.reward is not None:
                    self.message_user(request, done.message, messages.SUCCESS)
                    continue
                why = done.message
            else:
                why = "This reward is not in the wallet."  # an offer not claimed yet has no code
            self.message_user(request, f"{reward.title} ({reward.member.display_name}): {why}", messages.ERROR)


@admin.register(OneTimeCode)
class OneTimeCodeAdmin(BusinessScopedAdmin):
    """The member app's sign-in codes and how sending each went: a provider that stays down shows
    here as failed codes with its reason. Only digests are stored, so no code or address is shown."""

    fields = ["created_at", "member", "channel", "delivery_status", "delivery_attempts", "delivery_error",
              "sent_at", "expires_at", "used_at"]  # fmt: skip
    readonly_fields = fields
    list_display = ["created_at", "member", "channel", "delivery_status", "delivery_attempts", "delivery_error",
                    "sent_at", "used_at"]  # fmt: skip
    list_filter = ["delivery_status", "channel"]
    list_select_related = ["member"]
    ordering = ["-created_at"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(PushSubscription)
class PushSubscriptionAdmin(BusinessScopedAdmin):
    list_display = ["member", "endpoint", "created_at", "last_success_at"]
    raw_id_fields = ["member"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()
