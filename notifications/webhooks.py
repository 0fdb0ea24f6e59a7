"""Provider callbacks: Twilio status callbacks and inbound messages (STOP / START / HELP), and
the one-click email unsubscribe. None of them has a login: each checks its own signature."""

from __future__ import annotations

import logging
import re
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

from members.models import Business, ConsentSource, Member
from members.services import member_consent_set

from .channels.email import UNSUBSCRIBE_SALT
from .channels.twilio import WITHDRAW
from .models import Delivery, DeliveryStatus
from .services import delivery_report_apply, inbound_message_apply

logger = logging.getLogger(__name__)

# Twilio's default keywords for long codes (help.twilio.com, "Twilio support for opt-out keywords
# (SMS STOP filtering)"; the Advanced Opt-Out tutorial lists the opt-out ones): written as words,
# so "STOP ALL", "OPT-OUT" and "Opt out" are STOPALL and OPTOUT too.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP", "YES", "SUBSCRIBE", "OPTIN"}
HELP_WORDS = {"HELP", "INFO"}
_WORDS = re.compile(r"[^\W_]+")  # runs of letters and digits: punctuation, spaces and emoji drop out
_FIRST_CLAUSE = re.compile(r"[.!?,;:\n]")
TWILIO_STATUS = {
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.OPENED,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
}


def _keyword(text: str) -> str:
    return "".join(_WORDS.findall(text)).upper()


def inbound_keyword(body: str) -> str | None:
    """The keyword an inbound message is: "stop", "start", "help", or None for anything else.

    Twilio's rule: "only single-word messages will trigger the block", in any case — "STOP" opts
    out, "STOP PLEASE" and "PLEASE CANCEL" do not (Twilio support, "opt-out keywords (SMS STOP
    filtering)"). Punctuation and spacing around the word do not count ("stop!", " StOp "). One
    step further for opt-outs only, because withdrawing is the side to err on: an opt-out word
    that is a message's whole first sentence or clause ("Stop. Thank you", "Stop, thanks") opts
    out. A word mentioned inside a sentence ("don't stop sending") is not a keyword, and opting
    in again stays strict: "Yes, please call me" subscribes no one."""
    word = _keyword(body)
    if word in STOP_WORDS or _keyword(_FIRST_CLAUSE.split(body.strip(), maxsplit=1)[0]) in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


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
    """A message's fate: delivered, read, failed or undelivered (with its error code). A repeat
    or a replay of a callback, or news older than the delivery's status, changes nothing."""
    if not _twilio_signature_ok(request):
        return HttpResponse("invalid signature", status=403)
    sid, status = request.POST.get("MessageSid", ""), request.POST.get("MessageStatus", "")
    new = TWILIO_STATUS.get(status)
    if not sid or new is None:
        return HttpResponse(status=204)
    with scopes_disabled():  # found by the provider's id, then handled in its business's scope
        delivery = Delivery.objects.filter(provider_id=sid).first()
    if delivery is None:
        return HttpResponse(status=204)
    code = request.POST.get("ErrorCode", "")
    with scope(business=delivery.business_id):
        delivery_report_apply(
            delivery=delivery,
            key=f"{sid}:{status}",
            status=new,
            detail=f"Twilio {status}" + (f" (error {code})" if code else ""),
            withdraws_consent=code.isdigit() and int(code) in WITHDRAW,
            at=timezone.now(),
        )
    return HttpResponse(status=204)


def _businesses_for_sender(request: HttpRequest, channel: str) -> list[Business]:
    """The businesses whose configured sender the message was sent to: its number, or the
    messaging service it came through (whose pool numbers are not in the settings)."""
    senders = [request.POST.get("To", "").removeprefix("whatsapp:"), request.POST.get("MessagingServiceSid", "")]
    lookup = {f"channel_settings__{channel}__sender__in": [s for s in senders if s]}
    return list(Business.objects.filter(is_active=True, **lookup).only("pk", "name").order_by("name"))


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """STOP / START / HELP (and their usual synonyms) from a member's phone, for the members of
    the business whose sender it was sent to — never another business's. A repeat or a replay
    of a message (its MessageSid seen before) changes nothing and answers nothing."""
    if not _twilio_signature_ok(request):
        return HttpResponse("invalid signature", status=403)
    message_sid = request.POST.get("MessageSid", "")
    if not message_sid:
        return HttpResponse("MessageSid is missing", status=400)
    sender = request.POST.get("From", "")
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    keyword = inbound_keyword(request.POST.get("Body", ""))  # its line breaks end a clause
    body = " ".join(request.POST.get("Body", "").split())
    businesses = _businesses_for_sender(request, channel)
    if not businesses:
        logger.warning("Inbound %s %s to %s: no business's sender; ignored", channel, message_sid,
                       request.POST.get("To", ""))  # fmt: skip
        return _twiml()
    granted = {"start": True, "stop": False}.get(keyword)
    now = timezone.now()
    with transaction.atomic():
        applied = []
        for business in businesses:
            with scope(business=business.pk):
                if inbound_message_apply(business_id=business.pk, message_sid=message_sid, channel=channel,
                                         phone=sender.removeprefix("whatsapp:"), granted=granted,
                                         note=f"replied {body}"[:200], at=now):  # fmt: skip
                    applied.append(business)
    if not applied:
        return _twiml()  # seen before: the member already had the answer
    names = ", ".join(b.name for b in applied)
    if granted is True:
        return _twiml(f"{names}: you are subscribed again. Reply STOP to unsubscribe. Msg&data rates may apply.")
    if granted is False:
        return _twiml(f"{names}: you are unsubscribed and will get no more messages. Reply START to resubscribe.")
    if keyword == "help":
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
