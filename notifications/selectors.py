"""Reads shared by several callers."""

from __future__ import annotations

from members.models import Business

from .models import TemplateStatus, WhatsAppTemplate


def whatsapp_template_businesses() -> list[int]:
    """The active businesses with WhatsApp set up: the ones whose templates are synchronised."""
    return list(
        Business.objects.filter(is_active=True, channel_settings__whatsapp__enabled=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def whatsapp_templates_approved(*, business: Business) -> list[WhatsAppTemplate]:
    """The templates a WhatsApp campaign may use (the wizard's choice), by name."""
    return list(
        WhatsAppTemplate.objects.filter(business=business, status=TemplateStatus.APPROVED).order_by("name", "language")
    )
