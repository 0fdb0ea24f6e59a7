from django.contrib import admin

from winback.admin_site import BusinessScopedAdmin

from .models import Campaign, CampaignSend, EvaluationFailure, EvaluationRun


@admin.register(Campaign)
class CampaignAdmin(BusinessScopedAdmin):
    """Read-only here: campaigns are built and changed in the wizard, which validates every step."""

    list_display = ["name", "status", "inactivity_days", "max_sends", "activated_at", "business"]
    list_filter = ["status"]
    search_fields = ["name"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(CampaignSend)
class CampaignSendAdmin(BusinessScopedAdmin):
    list_display = ["local_date", "campaign", "member", "send_number", "arm", "outcome", "opened_at"]
    list_filter = ["outcome", "arm", "local_date"]
    list_select_related = ["campaign", "member"]
    raw_id_fields = ["campaign", "member", "run", "message"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(EvaluationRun)
class EvaluationRunAdmin(BusinessScopedAdmin):
    list_display = ["local_date", "business", "campaigns", "sends", "deliveries", "duration_ms", "finished_at"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(EvaluationFailure)
class EvaluationFailureAdmin(BusinessScopedAdmin):
    """The platform operator's view of the businesses whose night is failing (the tick retries
    them with backoff; a success removes the row). No team role sees it: it is about our engine."""

    list_display = ["business", "local_date", "failures", "short_error", "failed_at", "retry_at", "first_failed_at"]
    list_select_related = ["business"]
    ordering = ["-failures", "business__name"]
    readonly_fields = ["business", "local_date", "failures", "error", "first_failed_at", "failed_at", "retry_at"]
    search_fields = ["business__name", "business__slug", "error"]
    view_roles = ()
    add_roles = change_roles = ()
    # Deleting a record is the operator's "retry now": the next tick evaluates the business.
    delete_roles = ("superuser",)

    @admin.display(description="last error")
    def short_error(self, obj: EvaluationFailure) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:119] + "…"
