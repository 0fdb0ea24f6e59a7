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
        from notifications.models import RecordedMessage

        if not self._pending:
            return
        now = timezone.now()
        RecordedMessage.objects.bulk_create(
            RecordedMessage(
                business_id=m.business_id,
                delivery_id=m.delivery_id,
                channel=m.channel,
                to=m.to,
                title=m.title,
                body=m.body,
                payload={"url": m.url, **m.extra},
                provider_id=pid,
                created_at=now,
            )
            for m, pid in self._pending
        )
        self._pending.clear()
