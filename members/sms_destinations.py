"""Which phone numbers a sign-in code may be texted to: SMS pumping sends codes to numbers the
sender pays for and the fraudster's carrier earns from, so only the business's countries and only
numbers that can receive a text.

Numbers are parsed and checked with ``phonenumbers`` directly, as ``members.services.
phone_normalise`` reads them: django-phonenumber-field's model and form fields would add nothing
here (phones are read in each business's own country, with our messages, and stored as E.164
text), so that pin was dropped.
"""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from phonenumbers import geocoder

from .models import Business

# The number types a text reaches. A fixed line cannot receive one; premium-rate, shared-cost and
# the like are what SMS pumping sends to (the sender pays, the fraudster's carrier earns).
TEXTABLE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def sms_countries(business: Business) -> list[str]:
    """The countries (ISO 3166) sign-in codes may be texted to: the business's own by default."""
    configured = ((business.channel_settings or {}).get("sign_in") or {}).get("sms_countries")
    return [c.upper() for c in configured] if configured else [business.country.upper()]


def sms_destination_check(*, business: Business, phone: str) -> None:
    """Raise ValidationError on ``phone`` unless this E.164 number can be texted a code."""
    number = phonenumbers.parse(phone)
    allowed = sms_countries(business)
    if phonenumbers.region_code_for_number(number) not in allowed:
        names = [_country_name(c) for c in allowed]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise ValidationError({"phone": [f"We can only text numbers in {listed}."]})
    if phonenumbers.number_type(number) not in TEXTABLE_TYPES:
        raise ValidationError({"phone": ["This number can't receive text messages."]})


_WITH_THE = {"Bahamas", "Gambia", "Maldives", "Netherlands", "Philippines", "Seychelles"}


def _country_name(region: str) -> str:
    """“Malaysia”, “the United Kingdom”: as it reads after “in”."""
    example = phonenumbers.example_number(region)
    name = (geocoder.country_name_for_number(example, "en") if example else "") or region
    plural = name.startswith("United ") or name.endswith(("Republic", "Islands", "Emirates")) or name in _WITH_THE
    return f"the {name}" if plural else name
