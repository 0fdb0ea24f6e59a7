"""SMS and WhatsApp through Twilio's Messages API (one client per worker process), and the
WhatsApp templates of an account from Twilio's Content API."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
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
        for origin in ("https://api.twilio.com", "https://messaging.twilio.com", "https://content.twilio.com"):
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


# --- WhatsApp templates (Content API) --------------------------------------------------------------

CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
CONTENT_PAGE_SIZE = 500  # the API's maximum is 1000; an account rarely has more than a few dozen


class TemplateFetchError(Exception):
    """Twilio's Content API did not answer with a list of templates (an error, a malformed or
    unreachable answer): nothing is known, so nothing should change."""


@dataclass(frozen=True)
class ContentTemplate:
    """One Content resource and WhatsApp's verdict on it, in Twilio's words (``status``:
    received, pending, approved, rejected, paused, disabled, or unsubmitted)."""

    sid: str
    name: str
    language: str
    body: str
    variables: dict
    category: str
    status: str
    rejection_reason: str
    quality_rating: str


def twilio_account_of(business) -> tuple[str, str] | None:
    """The Twilio account (SID, auth token) holding a business's WhatsApp templates: its own
    subaccount when its settings name one (``whatsapp.account_sid``; the subaccount's token in
    TWILIO_SUBACCOUNTS, since the Content API lives on its own domain and takes only the
    subaccount's credentials), else the platform's account. None when there is no such account."""
    sid = ((business.channel_settings or {}).get("whatsapp") or {}).get("account_sid", "")
    if sid:
        token = settings.TWILIO_SUBACCOUNTS.get(sid, "")
        return (sid, token) if token else None
    if settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN:
        return settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
    return None


def _whatsapp_approval(approvals) -> dict:
    # ContentAndApprovals gives one approval object; be lenient with a list of them.
    if isinstance(approvals, list):
        approvals = next((a for a in approvals if isinstance(a, dict) and a.get("type", "whatsapp") == "whatsapp"), {})
    if approvals is None:
        return {}
    if not isinstance(approvals, dict):
        raise TypeError(f"approval_requests is a {type(approvals).__name__}")
    return approvals


def _body(types) -> str:
    if not types:
        return ""
    if not isinstance(types, dict):
        raise TypeError(f"types is a {type(types).__name__}")
    preferred = types.get("twilio/text") or next((t for t in types.values() if isinstance(t, dict) and "body" in t), {})
    return str(preferred.get("body") or "")


def _content_template(content) -> ContentTemplate:
    if not CONTENT_SID.match(content.sid or ""):
        raise ValueError(f"not a content SID: {content.sid!r}")
    approval = _whatsapp_approval(content.approval_requests)
    variables = content.variables or {}
    if not isinstance(variables, dict):
        raise TypeError(f"variables is a {type(variables).__name__}")
    return ContentTemplate(
        sid=content.sid,
        name=str(approval.get("name") or content.friendly_name or content.sid)[:200],
        language=str(content.language or "")[:20],
        body=_body(content.types),
        variables={str(k): str(v) for k, v in variables.items()},
        category=str(approval.get("category") or "").lower()[:40],
        status=str(approval.get("status") or "unsubmitted").lower(),
        rejection_reason=str(approval.get("rejection_reason") or "")[:500],
        quality_rating=str(approval.get("quality_rating") or "").lower(),
    )


def content_templates_fetch(*, account_sid: str, auth_token: str, base_url: str = "") -> list[ContentTemplate]:
    """Every template of the Twilio account with its WhatsApp approval status (the Content and
    Approvals list, every page). Raises TemplateFetchError unless the whole answer is read: a
    partial list would look like templates that vanished."""
    client = twilio_client(account_sid, auth_token, base_url)
    try:
        contents = client.content.v1.content_and_approvals.list(page_size=CONTENT_PAGE_SIZE)
        return [_content_template(content) for content in contents]
    except TwilioRestException as exc:
        raise TemplateFetchError(f"Twilio {exc.code or exc.status}: {exc.msg}") from exc
    except (TwilioException, ValueError, TypeError, KeyError, AttributeError) as exc:  # ValueError: bad JSON
        raise TemplateFetchError(f"malformed Content API answer: {exc}") from exc
    except OSError as exc:
        raise TemplateFetchError(f"Twilio unreachable: {exc}") from exc
