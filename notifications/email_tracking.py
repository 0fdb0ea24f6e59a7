"""Email bounces and complaints from the ESP, through django-anymail's tracking webhooks.

Anymail checks each webhook's auth (HTTP basic auth, and Mailgun's signature), parses the ESP's
payload and hands each normalised event to its ``tracking`` signal. The project has no signals
(STYLE.md); this is the one exception, because the signal is anymail's only way to hand events
over: one receiver, which finds the delivery and calls one plain service, ``email_event_apply``.
"""

from __future__ import annotations

from anymail.signals import tracking
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.conf import settings
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_scopes import scope, scopes_disabled

from .models import Delivery
from .services import EMAIL_EVENTS, email_event_apply

TRACKING_VIEWS = {"postmark": PostmarkTrackingWebhookView, "mailgun": MailgunTrackingWebhookView}


@csrf_exempt
def email_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """The configured ESP's tracking webhook. Without ``ANYMAIL_WEBHOOK_SECRET`` anymail would
    take anyone's post (and only warn): anyone could then withdraw members' consent by posting
    complaints. So it answers 404 until the secret is set, as for another ESP."""
    view = TRACKING_VIEWS.get(esp)
    if view is None or esp != settings.ANYMAIL_ESP or not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        raise Http404("No such webhook.")
    return view.as_view()(request)


@receiver(tracking, dispatch_uid="winback.email_tracking")
def tracking_received(sender, event, esp_name: str, **kwargs) -> None:
    if event.event_type not in EMAIL_EVENTS or not event.message_id:
        return
    with scopes_disabled():  # found by the ESP's message id, then handled in its business's scope
        delivery = Delivery.objects.filter(provider_id=str(event.message_id), channel="email").first()
    if delivery is None:
        return
    reason = event.description or event.mta_response or ""
    detail = f"{esp_name} {event.event_type}" + (f": {reason}" if reason else "")
    with scope(business=delivery.business_id):
        email_event_apply(
            delivery=delivery,
            event_type=event.event_type,
            key=f"{esp_name.lower()}:{event.event_id or event.message_id}:{event.event_type}",
            detail=detail[:500],
            occurred_at=event.timestamp,
            at=timezone.now(),
        )
