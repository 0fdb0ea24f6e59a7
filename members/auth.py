"""Signing in: email addresses as usernames, and what a locked-out sign-in is answered."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

LOCKED_OUT = (
    "Too many failed sign-ins for this account or from this network. Try again in {minutes} minutes, "
    "or ask the owner of your business to unlock your account on the team page."
)


def username_normalise(username: str | None) -> str:
    return (username or "").strip().lower()


class EmailBackend(ModelBackend):
    """Users sign in with their email address; usernames are stored lower-cased emails."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username:
            username = username_normalise(username)
        return super().authenticate(request, username=username, password=password, **kwargs)


def login_username(request: HttpRequest, credentials: dict | None) -> str:
    """The account django-axes counts a try against: the username as the backend reads it, so
    ``OWNER@x `` and ``owner@x`` are one account's tries (``AXES_USERNAME_CALLABLE``)."""
    if credentials and credentials.get("username") is not None:
        return username_normalise(credentials["username"])
    return username_normalise(request.POST.get("username"))


def login_address(request: HttpRequest) -> str | None:
    """The address django-axes counts a try against (``AXES_CLIENT_IP_CALLABLE``): the API
    throttles' ``client_ip``, stored as an IP address — so none for a request without one (a test
    client's ``force_login``) and the connection's own for a forwarded entry that is not one."""
    from winback.api import client_ip

    for address in (client_ip(request), request.META.get("REMOTE_ADDR")):
        try:
            validate_ipv46_address(address)
        except ValidationError:
            continue
        return address
    return None


def lockout_message() -> str:
    return LOCKED_OUT.format(minutes=int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """A locked-out try (``AXES_LOCKOUT_CALLABLE``): the API's JSON error on the API, else the
    sign-in page with the message. 429 with ``Retry-After`` either way."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        # Its CORS headers are added by the CORS middleware, around axes' as around every answer.
        body = {"error": {"code": "locked_out", "message": lockout_message(), "fields": {}}}
        response = JsonResponse(body, status=settings.AXES_HTTP_RESPONSE_CODE)
    else:
        form = AuthenticationForm(request, initial={"username": login_username(request, credentials)})
        context = {"form": form, "locked_out": lockout_message(), "next": request.POST.get("next", "")}
        response = TemplateResponse(
            request, "registration/login.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
        ).render()
    response["Retry-After"] = retry_after
    return response
