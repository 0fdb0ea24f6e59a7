"""The business's settings and its channels (with a test message)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from winback.tenancy import role_required

from .. import services
from ..forms import (
    BusinessSettingsForm,
    ChannelSettingsForm,
)


@role_required("owner")
def business_settings(request: HttpRequest) -> HttpResponse:
    business = request.business
    channels = business.channel_settings or {}
    initial = {f: getattr(business, f) for f in BusinessSettingsForm.base_fields}
    channel_initial = {
        "push_enabled": channels.get("push", {}).get("enabled", False),
        "email_enabled": channels.get("email", {}).get("enabled", False),
        "email_from_name": channels.get("email", {}).get("from_name", ""),
        "sms_enabled": channels.get("sms", {}).get("enabled", False),
        "sms_sender": channels.get("sms", {}).get("sender", ""),
        "whatsapp_enabled": channels.get("whatsapp", {}).get("enabled", False),
        "whatsapp_sender": channels.get("whatsapp", {}).get("sender", ""),
        "whatsapp_template": channels.get("whatsapp", {}).get("template", ""),
    }
    which = request.POST.get("form") if request.method == "POST" else None
    form = BusinessSettingsForm(request.POST if which == "business" else None, initial=initial)
    channel_form = ChannelSettingsForm(request.POST if which == "channels" else None, initial=channel_initial)
    if which == "business" and form.is_valid():
        try:
            services.business_update(business=business, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, "Settings saved.")
            return redirect("members:settings")
    if which == "test":
        return _channel_test(request, business)
    if which == "channels" and channel_form.is_valid():
        services.business_channels_set(business=business, **channel_form.cleaned_data)
        messages.success(request, "Channels saved.")
        return redirect("members:settings")
    test_channels = [("email", "Email"), ("sms", "SMS"), ("whatsapp", "WhatsApp")]
    return render(
        request, "members/settings.html", {"form": form, "channel_form": channel_form, "test_channels": test_channels}
    )


def _channel_test(request: HttpRequest, business) -> HttpResponse:
    from notifications.channels import PermanentSendError, TransientSendError
    from notifications.services import channel_test_send

    channel = request.POST.get("channel", "")
    raw = request.POST.get("to", "").strip()
    try:
        if channel not in ("sms", "whatsapp", "email"):
            raise ValidationError("Choose SMS, WhatsApp or email for a test.")
        if channel not in business.enabled_channels():
            raise ValidationError(f"{channel} is not switched on yet.")
        to = raw.lower() if channel == "email" else services.phone_normalise(raw, region=business.country)
        if not to:
            raise ValidationError("Enter where to send the test.")
        provider_id = channel_test_send(business=business, channel=channel, to=to)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except (PermanentSendError, TransientSendError) as exc:
        messages.error(request, f"The provider refused the test: {exc.reason}")
    else:
        recorded = provider_id.startswith("rec-")
        messages.success(
            request,
            f"Test {channel} message sent to {to}."
            + (" No provider credentials are set, so it was recorded (Admin → Recorded messages)." if recorded else ""),
        )
    return redirect("members:settings")
