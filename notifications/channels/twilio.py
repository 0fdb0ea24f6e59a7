"""SMS and WhatsApp through Twilio's Messages API (one client per worker process)."""

from __future__ import annotations

import json
from functools import lru_cache

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import ChannelBackend, Message, PermanentSendError, TransientSendError

# Twilio error codes and what they mean for us.
WITHDRAW = {21610: "the recipient replied STOP", 21614: "not a mobile number"}
PERMANENT = {
    21211: "invalid phone number",
    21408: "no permission to send to this region",
    21612: "this number cannot be reached from the sender",
    63016: "WhatsApp allows only an approved template outside the 24-hour window; the template was not accepted",
    63003: "the WhatsApp recipient is not on WhatsApp",
    63024: "invalid WhatsApp recipient",
}


class LocalTwilioHttpClient(TwilioHttpClient):
    """Sends the real client's requests to another base URL (a fake Twilio on 127.0.0.1 in tests)."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        for origin in ("https://api.twilio.com", "https://messaging.twilio.com"):
            if url.startswith(origin):
                url = self.base_url + url[len(origin) :]
        return super().request(method, url, *args, **kwargs)


@lru_cache(maxsize=8)
def twilio_client(account_sid: str, auth_token: str, base_url: str = "") -> Client:
    http_client = LocalTwilioHttpClient(base_url, timeout=10) if base_url else TwilioHttpClient(timeout=10)
    return Client(account_sid, auth_token, http_client=http_client)


def status_callback_url() -> str:
    return f"{settings.SITE_URL}/webhooks/twilio/status/"


def _map_error(exc: TwilioRestException, channel: str) -> Exception:
    code = exc.code or 0
    reason = f"Twilio {code or exc.status}: {exc.msg}"
    if code in WITHDRAW:
        return PermanentSendError(f"{reason} ({WITHDRAW[code]})", code=str(code), action="withdraw_consent")
    if code in PERMANENT:
        return PermanentSendError(f"{reason} ({PERMANENT[code]})", code=str(code))
    if exc.status == 429 or exc.status >= 500:
        return TransientSendError(reason, code=str(code or exc.status))
    return PermanentSendError(reason, code=str(code or exc.status))


class SmsBackend(ChannelBackend):
    channel = "sms"

    def __init__(self, *, business, account_sid: str, auth_token: str, base_url: str = ""):
        self.client = twilio_client(account_sid, auth_token, base_url)
        self.sender = (business.channel_settings or {}).get("sms", {}).get("sender", "")

    def _sender(self) -> dict:
        if self.sender.startswith("MG"):
            return {"messaging_service_sid": self.sender}
        return {"from_": self.sender}

    def send(self, message: Message) -> str:
        from campaigns.sms import sms_text

        try:
            sent = self.client.messages.create(
                to=message.to,
                body=sms_text(title=message.title, body=message.body, url=message.url),
                status_callback=status_callback_url(),
                **self._sender(),
            )
        except TwilioRestException as exc:
            raise _map_error(exc, self.channel) from exc
        except OSError as exc:  # connection refused, timeout
            raise TransientSendError(f"Twilio unreachable: {exc}") from exc
        return sent.sid


class WhatsAppBackend(SmsBackend):
    """Business-initiated WhatsApp messages use the business's approved template (content SID)
    with the title, the body and the open link as its variables 1–3."""

    channel = "whatsapp"

    def __init__(self, *, business, account_sid: str, auth_token: str, base_url: str = ""):
        self.client = twilio_client(account_sid, auth_token, base_url)
        config = (business.channel_settings or {}).get("whatsapp", {})
        self.sender = config.get("sender", "")
        self.template = config.get("template", "")

    def send(self, message: Message) -> str:
        params = {
            "to": f"whatsapp:{message.to}",
            "from_": f"whatsapp:{self.sender}",
            "status_callback": status_callback_url(),
        }
        if self.template.startswith("HX"):
            params["content_sid"] = self.template
            params["content_variables"] = json.dumps({"1": message.title, "2": message.body, "3": message.url})
        else:
            params["body"] = f"{message.title}\n{message.body}\n{message.url}"
        try:
            sent = self.client.messages.create(**params)
        except TwilioRestException as exc:
            raise _map_error(exc, self.channel) from exc
        except OSError as exc:
            raise TransientSendError(f"Twilio unreachable: {exc}") from exc
        return sent.sid
