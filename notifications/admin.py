from django.contrib import admin

from winback.admin_site import BusinessScopedAdmin

from .models import Delivery, DeliveryEvent, PushSubscription, RecordedMessage, WhatsAppTemplate


class DeliveryEventInline(admin.TabularInline):
    model = DeliveryEvent
    fields = ["at", "status", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(BusinessScopedAdmin):
    list_display = ["scheduled_at", "channel", "status", "member", "campaign", "attempts", "provider_id", "last_error"]
    list_filter = ["status", "channel"]
    list_select_related = ["member", "campaign"]
    raw_id_fields = ["send", "campaign", "member"]
    inlines = [DeliveryEventInline]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(RecordedMessage)
class RecordedMessageAdmin(BusinessScopedAdmin):
    """What the recording backend would have sent (no provider credentials configured)."""

    list_display = ["created_at", "channel", "to", "title", "body"]
    list_filter = ["channel"]
    search_fields = ["to", "title", "body"]
    raw_id_fields = ["delivery"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(PushSubscription)
class PushSubscriptionAdmin(BusinessScopedAdmin):
    list_display = ["member", "endpoint", "created_at", "last_success_at"]
    raw_id_fields = ["member"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()


@admin.register(WhatsAppTemplate)
class WhatsAppTemplateAdmin(BusinessScopedAdmin):
    """Synchronised from Twilio's Content API: read-only here, changed in Twilio."""

    list_display = ["name", "language", "status", "quality_rating", "category", "content_sid", "last_synced_at"]
    list_filter = ["status"]
    search_fields = ["name", "content_sid"]
    view_roles = ("owner", "manager")
    add_roles = change_roles = ()
