"""Provider callbacks: Twilio status callbacks and inbound messages (STOP / START / HELP), and
the one-click email unsubscribe. None of them has a login: each checks its own signature."""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from django_scopes import scope, scopes_disabled
from twilio.request_validator import RequestValidator

from members.models import Business, ConsentSource, Member, MemberStatus
from members.services import member_consent_set

from .channels.email import UNSUBSCRIBE_SALT
from .models import Delivery, DeliveryEvent, DeliveryStatus

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "STOP ALL"}
START_WORDS = {"START", "YES", "UNSTOP", "SUBSCRIBE", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}
TWILIO_STATUS = {
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.OPENED,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
}


def _twilio_signature_ok(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    url = f"{settings.SITE_URL}{request.get_full_path()}"
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, request.POST.dict(), signature)


def _twiml(text: str = "") -> HttpResponse:
    body = f"<Message>{escape(text)}</Message>" if text else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>', content_type="text/xml")


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """A message's fate: delivered, read, failed or undelivered (with its error code)."""
    if not _twilio_signature_ok(request):
        return HttpResponse("invalid signature", status=403)
    sid, status = request.POST.get("MessageSid", ""), request.POST.get("MessageStatus", "")
    new = TWILIO_STATUS.get(status)
    if not sid or new is None:
        return HttpResponse(status=204)
    with scopes_disabled():  # found by the provider's id, then handled in its business's scope
        delivery = Delivery.objects.filter(provider_id=sid).select_related("member").first()
    if delivery is None:
        return HttpResponse(status=204)
    with scope(business=delivery.business_id), transaction.atomic():
        code = request.POST.get("ErrorCode", "")
        detail = f"Twilio {status}" + (f" (error {code})" if code else "")
        # Never move backwards: an "opened" delivery stays opened when a late "delivered" arrives.
        order = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.OPENED]
        if new in order and delivery.status in order and order.index(new) <= order.index(delivery.status):
            return HttpResponse(status=204)
        Delivery.objects.filter(pk=delivery.pk).update(
            status=new, updated_at=timezone.now(), last_error=detail if new == DeliveryStatus.FAILED else ""
        )
        DeliveryEvent.objects.create(
            business_id=delivery.business_id, delivery=delivery, status=new, at=timezone.now(), detail=detail
        )
        if code in ("21610", "21614"):
            member_consent_set(member=delivery.member, channel=delivery.channel, granted=False,
                               source=ConsentSource.PROVIDER, note=detail)  # fmt: skip
    return HttpResponse(status=204)


def _businesses_for_sender(to: str, channel: str) -> list[int]:
    number = to.removeprefix("whatsapp:")
    with scopes_disabled():
        matches = [
            b.pk
            for b in Business.objects.filter(is_active=True).only("pk", "channel_settings")
            if (b.channel_settings or {}).get(channel, {}).get("sender") == number
        ]
    return matches


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """STOP / START / HELP (and their usual synonyms) from a member's phone."""
    if not _twilio_signature_ok(request):
        return HttpResponse("invalid signature", status=403)
    sender = request.POST.get("From", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    phone = sender.removeprefix("whatsapp:")
    word = " ".join(request.POST.get("Body", "").strip().upper().split())
    businesses = _businesses_for_sender(request.POST.get("To", ""), channel)
    with scopes_disabled():
        members = Member.objects.filter(phone=phone, status=MemberStatus.ACTIVE).select_related("business")
        if businesses:
            members = members.filter(business_id__in=businesses)
        members = list(members)
    names = ", ".join(sorted({m.business.name for m in members})) or "Winback"
    if word in STOP_WORDS or word in START_WORDS:
        granted = word in START_WORDS
        for member in members:
            with scope(business=member.business_id):
                member_consent_set(member=member, channel=channel, granted=granted, source=ConsentSource.SMS_KEYWORD,
                                   note=f"replied {word}")  # fmt: skip
        if granted:
            return _twiml(f"{names}: you are subscribed again. Reply STOP to unsubscribe. Msg&data rates may apply.")
        return _twiml(f"{names}: you are unsubscribed and will get no more messages. Reply START to resubscribe.")
    if word in HELP_WORDS:
        return _twiml(f"{names} loyalty messages. Reply STOP to unsubscribe, START to resubscribe. "
                      "Msg&data rates may apply.")  # fmt: skip
    return _twiml()


def _unsubscribe_member(token: str) -> Member:
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        raise Http404("This unsubscribe link is not valid.") from None
    with scopes_disabled():
        member = Member.objects.select_related("business").filter(pk=data.get("m"), business_id=data.get("b")).first()
    if member is None:
        raise Http404("This unsubscribe link is not valid.")
    return member


@csrf_exempt
@require_http_methods(["GET", "POST"])
def email_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: a POST (the mail client's one click, or the page's button) withdraws email
    consent; a GET only shows the page, because scanners and previews fetch links by themselves."""
    member = _unsubscribe_member(token)
    done = False
    if request.method == "POST":
        with scope(business=member.business_id):
            member_consent_set(member=member, channel="email", granted=False, source=ConsentSource.UNSUBSCRIBE,
                               note="one-click unsubscribe")  # fmt: skip
        done = True
    return render(request, "notifications/unsubscribe.html", {"member": member, "done": done, "token": token})
