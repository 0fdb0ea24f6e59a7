"""Records what would be sent instead of sending: development, tests, channels not set up."""

from __future__ import annotations

import dataclasses
import logging
import uuid

from django.conf import settings
from django.utils import timezone

from winback.db import rows_insert

from .base import ChannelBackend, Message

# Tests set this to a list (``tests/conftest.py``): every message sent, in clear, like Django's
# ``mail.outbox``. None elsewhere, so a long-running process keeps nothing in memory.
outbox: list[Message] | None = None
logger = logging.getLogger(__name__)


class RecordingBackend(ChannelBackend):
    def __init__(self, channel: str):
        self.channel = channel
        self._pending: list = []

    def send(self, message: Message) -> str:
        provider_id = f"rec-{uuid.uuid4().hex}"
        if outbox is not None:
            outbox.append(message)
        if message.secret:
            # A sign-in code is recorded masked: whoever reads the recorded messages (owners and
            # managers, in the admin) could sign in as the member. The demo in development needs
            # it somewhere, so it goes to the console log there, and nowhere in production.
            if settings.DEBUG:
                logger.info("Sign-in code to %s (development only, not recorded): %s", message.to, message.body)
            message = _masked(message)
        self._pending.append((message, provider_id))
        return provider_id

    def flush(self) -> None:
        from django.db import connection

        from notifications.models import RecordedMessage

        if not self._pending:
            return
        # One multi-row INSERT of plain values, not a model instance per message.
        payload = RecordedMessage._meta.get_field("payload")
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        rows_insert(
            RecordedMessage,
            ("business_id", "delivery_id", "channel", "to", "title", "body", "payload", "provider_id", "created_at"),
            [
                (m.business_id, m.delivery_id, m.channel, m.to, m.title, m.body,
                 payload.get_db_prep_save({"url": m.url, **m.extra}, connection), pid, now)
                for m, pid in self._pending
            ],
        )  # fmt: skip
        self._pending.clear()


def _masked(message: Message) -> Message:
    mask = "•" * len(message.secret)
    return dataclasses.replace(
        message,
        title=message.title.replace(message.secret, mask),
        body=message.body.replace(message.secret, mask),
        secret="",
    )
