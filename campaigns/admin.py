from django.contrib import admin

from winback.admin_site import BusinessScopedAdmin

from .models import Campaign, CampaignSend, EvaluationRun


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
    raw_id_fields = ["campaign", "member", "run"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(EvaluationRun)
class EvaluationRunAdmin(BusinessScopedAdmin):
    list_display = ["local_date", "business", "campaigns", "sends", "deliveries", "duration_ms", "finished_at"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()
