"""The open link every message carries: signed per delivery (push, email), or the send's short
code (SMS, WhatsApp: ``/m/<code>``, random, expiring with the attribution window plus the same
margin from when it was made); no login.

A GET marks the message opened and shows it with its reward; only the "add to my wallet"
button's POST claims the reward (exactly once) — mail scanners and link previews fetch links by
themselves, so a GET must never issue anything. A message not visible to the member (not sent
yet, returned, skipped, cancelled) is "not valid", as a forged link is.

Whoever holds the link is not necessarily the member (a forwarded text, a mail scanner's log), so
the reward's code and the card code are shown only to the browser that made the explicit POST
(a signed cookie for this delivery, on this link's path); a GET elsewhere shows the message, the
reward and a button to show the code. The link expires with the campaign's attribution window
plus a margin (``open_link_expires_at``), counted from the signature's timestamp: the send."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.db.models import Case, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_scopes import scope, scopes_disabled

from campaigns import messages
from campaigns.messages import OPEN_SALT
from campaigns.models import CampaignSend
from members.models import BILLABLE_CHANNELS, WalletReward

from .dispatcher import WENT_OUT, open_link_expires_at
from .inbox import inbox_open, sends_visible_at
from .models import Delivery
from .services import send_mark_opened

CLAIMED_COOKIE_SALT = "winback.open.claimed"


def _delivery(token: str) -> tuple[Delivery, datetime]:
    """The delivery the token names and when the token was signed."""
    try:
        data = signing.loads(token, salt=OPEN_SALT)
        # Verified above: "payload:timestamp:signature", the timestamp in base 62.
        signed_at = datetime.fromtimestamp(signing.b62_decode(token.rsplit(signing.Signer().sep, 2)[1]), tz=UTC)
    except (signing.BadSignature, ValueError, IndexError):
        raise Http404("This link is not valid.") from None
    with scopes_disabled():  # the signed token names the delivery; everything after runs in its scope
        delivery = (
            Delivery.objects.select_related("send__message", "campaign__business", "member", "business")
            .filter(pk=data.get("d"))
            .first()
        )
    if delivery is None:
        raise Http404("This link is not valid.")
    return delivery, signed_at


def _claimed_cookie(delivery: Delivery) -> str:
    return f"wb_claimed_{delivery.pk}"


def _claimed_here(request: HttpRequest, delivery: Delivery) -> bool:
    value = request.get_signed_cookie(_claimed_cookie(delivery), default=None, salt=CLAIMED_COOKIE_SALT)
    return value == str(delivery.pk)


def _short_delivery(code: str) -> tuple[Delivery, datetime]:
    """The delivery a short code's send went out on (SMS or WhatsApp first, the latest), and
    when the code expires. The code names the send, and the send its business: everything after
    runs in that business's scope, whatever wallet the browser has open."""
    with scopes_disabled():
        send = CampaignSend.objects.filter(short_code=code).values_list("pk", "short_expires_at").first()
        if send is None or send[1] is None:
            raise Http404("This link is not valid.")
        delivery = (
            Delivery.objects.select_related("send", "campaign", "member", "business")
            .filter(send_id=send[0], status__in=WENT_OUT)
            .order_by(Case(When(channel__in=BILLABLE_CHANNELS, then=0), default=1), "-sent_at", "-id")
            .first()
        )
    if delivery is None:  # it never went out: nothing to show, as with a forged code
        raise Http404("This link is not valid.")
    return delivery, send[1]


@require_http_methods(["GET", "POST"])
def message_open(request: HttpRequest, token: str) -> HttpResponse:
    delivery, signed_at = _delivery(token)
    expires_at = open_link_expires_at(signed_at=signed_at, attribution_days=delivery.campaign.attribution_days)
    return _message_page(request, delivery, expires_at)


@require_http_methods(["GET", "POST"])
def message_open_short(request: HttpRequest, code: str) -> HttpResponse:
    """The short link SMS and WhatsApp carry (``SITE_URL/m/<code>``): the same page as the signed one."""
    delivery, expires_at = _short_delivery(code)
    return _message_page(request, delivery, expires_at)


def _message_page(request: HttpRequest, delivery: Delivery, expires_at: datetime) -> HttpResponse:
    send, campaign, member, business = delivery.send, delivery.campaign, delivery.member, delivery.business
    now = timezone.now()
    if now >= expires_at:
        return render(request, "notifications/message_expired.html", {"business": business}, status=410)
    with scope(business=business.pk):
        # The member's last purchase before the send, with the check that it is visible: the
        # night's {days_away}, even once the member has returned.
        visible = list(
            sends_visible_at(CampaignSend.objects.filter(pk=send.pk), now=now).values_list(
                "pk", messages.purchase_before()
            )
        )
        if not visible:
            raise Http404("This link is not valid.")
        claimed = None  # a GET claims nothing; a POST says whether it was this one that claimed
        if request.method == "POST":
            try:
                opened = inbox_open(send=send, at=now, delivery=delivery)
            except CampaignSend.DoesNotExist:  # cancelled in the meantime
                raise Http404("This link is not valid.") from None
            reward, claimed = opened.reward, opened.claimed
        else:
            send_mark_opened(send=send, at=now, delivery=delivery)
            reward = WalletReward.objects.filter(send_id=send.pk).first()
        rendered = messages.send_render(send, campaign=campaign, business=business, purchase_before=visible[0][1],
                                        first_name=member.first_name)  # fmt: skip
    response = render(
        request,
        "notifications/message_open.html",
        {
            "business": business,
            "member": member,
            "title": rendered.title,
            "body": rendered.body,
            "reward": reward,
            "claimed": claimed,
            "show_codes": request.method == "POST" or _claimed_here(request, delivery),
            "now": now,
        },
    )
    if request.method == "POST":
        response.set_signed_cookie(
            _claimed_cookie(delivery),
            str(delivery.pk),
            salt=CLAIMED_COOKIE_SALT,
            max_age=max(0, int((expires_at - now).total_seconds())),
            path=request.path,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    return response
