"""Records what would be sent instead of sending: development, tests, channels not set up."""

from __future__ import annotations

import uuid

from django.utils import timezone

from .base import ChannelBackend, Message


class RecordingBackend(ChannelBackend):
    def __init__(self, channel: str):
        self.channel = channel
        self._pending: list = []

    def send(self, message: Message) -> str:
        provider_id = f"rec-{uuid.uuid4().hex}"
        self._pending.append((message, provider_id))
        return provider_id

    def flush(self) -> None:
        from django.db import connection

        from notifications.dispatcher import rows_insert
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
