"""The contract every channel backend keeps (after healthchecks' transports)."""

from __future__ import annotations

from dataclasses import dataclass, field


class SendError(Exception):
    def __init__(self, reason: str, *, code: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class PermanentSendError(SendError):
    """The provider refused for good (bad number, subscription gone, consent withdrawn):
    fail at once, never retry. ``action`` says what the dispatcher does about it
    ("withdraw_consent"; a push subscription that is gone the web push backend deletes itself)."""

    def __init__(self, reason: str, *, code: str = "", action: str = ""):
        super().__init__(reason, code=code)
        self.action = action


class TransientSendError(SendError):
    """Try again later (rate limit, 5xx, timeout); ``retry_after`` seconds if the provider said."""

    def __init__(self, reason: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(reason, code=code)
        self.retry_after = retry_after


@dataclass(frozen=True)
class PushTarget:
    """One browser's push subscription, as the dispatcher loads it with the batch."""

    id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass
class Message:
    delivery_id: int
    business_id: int
    member_id: int
    channel: str
    to: str  # E.164 phone, email address, or push endpoint
    title: str
    body: str
    url: str = ""
    extra: dict = field(default_factory=dict)
    # Push: every live subscription of the member, newest first (``to`` is the newest's endpoint).
    subscriptions: tuple[PushTarget, ...] = ()
    # A secret in the title or body (a sign-in code): delivered to the member, never stored.
    secret: str = ""


class ChannelBackend:
    channel: str = ""

    def send(self, message: Message) -> str:
        """Hand one message to the provider; return its id. Raises PermanentSendError or
        TransientSendError. No database writes here."""
        raise NotImplementedError

    def flush(self) -> None:
        """Called after a batch; backends that buffer write here."""
