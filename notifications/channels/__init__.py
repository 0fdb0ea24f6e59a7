"""One module per provider; every channel backend implements ``base.ChannelBackend``."""

from __future__ import annotations

from django.conf import settings

from .base import ChannelBackend, Message, PermanentSendError, PushTarget, TransientSendError
from .recording import RecordingBackend

__all__ = ["ChannelBackend", "Message", "PermanentSendError", "PushTarget", "TransientSendError", "backend_for"]


def backend_for(channel: str, *, business=None) -> ChannelBackend:
    """The backend that sends ``channel`` for a business: the provider when its credentials are
    configured, else the recording backend (development, tests, a channel not set up)."""
    if channel in ("sms", "whatsapp") and settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
        from .twilio import SmsBackend, WhatsAppBackend

        cls = SmsBackend if channel == "sms" else WhatsAppBackend
        return cls(
            business=business,
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            base_url=settings.TWILIO_API_BASE,
        )
    if channel == "push" and settings.VAPID_PRIVATE_KEY:
        from .webpush import WebPushBackend

        return WebPushBackend(private_key=settings.VAPID_PRIVATE_KEY, subject=settings.VAPID_SUBJECT)
    if channel == "email" and settings.EMAIL_CHANNEL_ENABLED:
        from .email import EmailBackend

        return EmailBackend(business=business)
    return RecordingBackend(channel)
