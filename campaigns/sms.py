"""SMS length and segments: GSM-7 when every character fits, else UCS-2 (GSM 03.38)."""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # "GSM-7" or "Unicode"
    units: int  # septets for GSM-7 (extended characters count twice), UTF-16 code units for Unicode
    segments: int
    per_segment: int


def sms_size(text: str) -> SmsSize:
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "Unicode"
    if units <= single:
        return SmsSize(encoding, units, 1 if units else 0, single)
    return SmsSize(encoding, units, -(-units // multi), multi)


def sms_text(*, title: str, body: str, url: str) -> str:
    """What an SMS carries: the title, the message and the open link."""
    return "\n".join(part for part in (title.strip(), body.strip(), url) if part)


def unicode_forcing(text: str) -> list[str]:
    """The characters (each once, in order) that are not GSM-7 and so make the SMS Unicode."""
    return list(dict.fromkeys(ch for ch in text if ch not in GSM_BASIC and ch not in GSM_EXTENDED))
