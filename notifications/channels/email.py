"""Email through Django's email backends: HTML and text parts, RFC 8058 one-click unsubscribe.

The backend is SMTP (``EMAIL_URL``) or an ESP's API through django-anymail (``ANYMAIL_ESP``); with
anymail the provider id is the ESP's message id, which its bounce and complaint webhooks name
(``notifications.email_tracking``)."""

from __future__ import annotations

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from .base import ChannelBackend, Message, PermanentSendError, TransientSendError

UNSUBSCRIBE_SALT = "winback.unsubscribe"


def unsubscribe_token(*, member_id: int, business_id: int) -> str:
    return signing.dumps({"m": member_id, "b": business_id, "c": "email"}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, member_id: int, business_id: int) -> str:
    return f"{settings.SITE_URL}/u/{unsubscribe_token(member_id=member_id, business_id=business_id)}/"


class EmailBackend(ChannelBackend):
    channel = "email"

    def __init__(self, *, business):
        self.business = business
        self.connection = get_connection()
        self.from_name = (business.channel_settings or {}).get("email", {}).get("from_name") or business.name

    def send(self, message: Message) -> str:
        unsubscribe = unsubscribe_url(member_id=message.member_id, business_id=message.business_id)
        context = {"message": message, "business": self.business, "unsubscribe": unsubscribe,
                   "reward": message.extra.get("reward", "")}  # fmt: skip
        address = settings.DEFAULT_FROM_EMAIL.rsplit("<", 1)[-1].rstrip(">").strip()
        email = EmailMultiAlternatives(
            subject=message.title,
            body=render_to_string("notifications/email_message.txt", context),
            from_email=f"{self.from_name} <{address}>",
            to=[message.to],
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "X-Winback-Delivery": str(message.delivery_id),
            },
            connection=self.connection,
        )
        email.attach_alternative(render_to_string("notifications/email_message.html", context), "text/html")
        try:
            email.send(fail_silently=False)
        except AnymailRecipientsRefused as exc:  # the ESP will not send to this address (bounced before…)
            raise PermanentSendError(f"the address was refused: {exc}") from exc
        except AnymailAPIError as exc:  # before OSError: anymail's requests errors are OSErrors too
            status = getattr(exc, "status_code", None)
            if status is not None and 400 <= status < 500 and status != 429:
                raise PermanentSendError(f"the email provider refused the message: {exc}") from exc
            raise TransientSendError(f"the email provider is unavailable: {exc}") from exc
        except OSError as exc:  # SMTP connection trouble
            raise TransientSendError(f"mail server unreachable: {exc}") from exc
        except ValueError as exc:
            raise PermanentSendError(f"the address was refused: {exc}") from exc
        sent = getattr(email, "anymail_status", None)  # set by anymail's backends only
        if sent is not None and sent.message_id is not None:
            return str(sent.message_id)
        return email.extra_headers.get("Message-ID") or f"email-{message.delivery_id}"
