"""The message step's channels in order: the campaign's chosen channels first, as the owner
ordered them (arrows with JavaScript, a position per channel without), then the rest."""

from __future__ import annotations

from members.models import CHANNELS
from notifications.models import CHANNEL_CHOICES

CHANNEL_LABELS = dict(CHANNEL_CHOICES)


def channel_order(chosen: list[str] | None) -> list[str]:
    """Every channel, the chosen ones first in their order, then the others as ``CHANNELS`` lists them."""
    chosen = [ch for ch in (chosen or []) if ch in CHANNELS]
    return chosen + [ch for ch in CHANNELS if ch not in chosen]


def channel_rows(form) -> list[dict]:
    """The channels as the message step lists them, in order: what is chosen first (as posted, or
    as saved), then the rest; each with its label, whether it is checked and its position."""
    if form.is_bound:
        posted = form.data.getlist("channels") if hasattr(form.data, "getlist") else form.data.get("channels", [])
        posted = [posted] if isinstance(posted, str) else posted  # (a stashed step keeps one value bare)

        def position(ch: str) -> int:
            raw = str(form.data.get(f"order_{ch}", "")).strip()
            return int(raw) if raw.isdigit() else len(CHANNELS) + 1

        saved = channel_order(form.campaign.channels)
        order = sorted(CHANNELS, key=lambda ch: (position(ch), saved.index(ch)))
        checked = set(posted)
    else:
        order, checked = channel_order(form.campaign.channels), set(form.campaign.channels or [])
    return [
        {"value": ch, "label": CHANNEL_LABELS[ch], "checked": ch in checked, "position": i,
         "field": form[f"order_{ch}"]}
        for i, ch in enumerate(order, start=1)
    ]  # fmt: skip
