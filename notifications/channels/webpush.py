"""Web Push with VAPID through pywebpush (RFC 8030/8291/8292), one pooled session per worker."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from .base import ChannelBackend, Message, PermanentSendError, PushTarget, TransientSendError

MAX_PAYLOAD = 3800  # the push services' limit is 4 KB of encrypted payload; stay under it
TTL = 4 * 24 * 3600


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def push_payload(message: Message) -> str:
    """Title, body, icon and the open link, trimmed to fit the push size limit."""
    data = {
        "title": message.title,
        "body": message.body,
        "icon": f"{settings.SITE_URL}/static/wallet/icon-192.png",
        "url": message.url,
        "tag": f"winback-{message.extra.get('send_id', message.delivery_id)}",
    }
    encoded = json.dumps(data, ensure_ascii=False)
    while len(encoded.encode()) > MAX_PAYLOAD and data["body"]:
        data["body"] = data["body"][: max(len(data["body"]) - 200, 0)].rstrip() + "…"
        encoded = json.dumps(data, ensure_ascii=False)
    return encoded


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max((parsedate_to_datetime(value) - timezone.now()).total_seconds(), 0)
        except (TypeError, ValueError):
            return None


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid02:
    return Vapid02.from_string(private_key)


_signed: dict[tuple[str, str], tuple[float, dict]] = {}
VAPID_LIFETIME = 12 * 3600


def vapid_headers(*, private_key: str, subject: str, endpoint: str) -> dict:
    """The VAPID Authorization header for a push service, signed once per origin and reused
    for up to 11 hours (a JWT may live 24 h; signing each message costs more than encrypting it)."""
    parts = urlsplit(endpoint)
    origin = f"{parts.scheme}://{parts.netloc}"
    now = time.time()
    cached = _signed.get((origin, subject))
    if cached and cached[0] - now > 3600:
        return dict(cached[1])
    expires = int(now) + VAPID_LIFETIME
    headers = _vapid(private_key).sign({"sub": subject, "aud": origin, "exp": expires})
    _signed[(origin, subject)] = (expires, headers)
    return dict(headers)


class WebPushBackend(ChannelBackend):
    """Sends a message to every live subscription of the member (``message.subscriptions``, loaded
    by the dispatcher with its batch: no query per message).

    The message is sent once one push service accepted it (a subscription that was busy misses
    this one). A subscription answered 404/410 is deleted, the member's others stay. When none
    accepted, a busy one makes it a retry; otherwise it failed, "every subscription gone" when all
    answered 404/410. The writes — last success, deletions — wait for ``flush()``: one statement
    each per chunk of messages."""

    channel = "push"

    def __init__(self, *, private_key: str, subject: str):
        self.private_key = private_key
        self.subject = subject
        self._accepted: list[int] = []
        self._gone: list[int] = []

    def send(self, message: Message) -> str:
        if not message.subscriptions:
            raise PermanentSendError("the member has no push subscription any more")
        accepted: list[str] = []
        busy: list[TransientSendError] = []
        refused: list[PermanentSendError] = []
        for target in message.subscriptions:
            try:
                accepted.append(self._push(target, message))
            except TransientSendError as exc:
                busy.append(exc)
            except PermanentSendError as exc:
                refused.append(exc)
                if exc.action == "delete_subscription":
                    self._gone.append(target.id)
            else:
                self._accepted.append(target.id)
        if accepted:
            return accepted[0]
        if busy:
            waits = [exc.retry_after for exc in busy if exc.retry_after is not None]
            raise TransientSendError(busy[0].reason, code=busy[0].code, retry_after=max(waits) if waits else None)
        kept = [exc for exc in refused if exc.action != "delete_subscription"]
        if kept:
            raise kept[0]
        codes = "/".join(sorted({exc.code for exc in refused}))
        raise PermanentSendError(f"every push subscription of the member has expired (push service answered {codes})",
                                 code=refused[0].code)  # fmt: skip

    def _push(self, target: PushTarget, message: Message) -> str:
        try:
            response = webpush(
                subscription_info={"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}},
                data=push_payload(message),
                ttl=TTL,
                headers={
                    **vapid_headers(private_key=self.private_key, subject=self.subject, endpoint=target.endpoint),
                    "Urgency": "normal",
                    "Topic": f"wb{message.extra.get('send_id', '')}"[:32],
                },
                timeout=10,
                requests_session=_session(),
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in (404, 410):
                raise PermanentSendError(
                    f"push service answered {status}: the subscription expired", code=str(status),
                    action="delete_subscription",
                ) from exc  # fmt: skip
            if status == 429 or status >= 500 or status == 0:
                raise TransientSendError(f"push service answered {status or 'nothing'}", code=str(status),
                                         retry_after=_retry_after(exc.response)) from exc  # fmt: skip
            raise PermanentSendError(f"push service refused: {status} {exc.message}", code=str(status)) from exc
        except requests.RequestException as exc:
            raise TransientSendError(f"push service unreachable: {exc}") from exc
        return response.headers.get("Location", "") or f"push-{message.delivery_id}"

    def flush(self) -> None:
        from members.models import PushSubscription

        if self._accepted:
            PushSubscription.objects.filter(pk__in=self._accepted).update(last_success_at=timezone.now())
        if self._gone:
            PushSubscription.objects.filter(pk__in=self._gone).delete()
        self._accepted, self._gone = [], []
