"""Tenant scoping: the one mechanism every tenant-owned query goes through.

Tenant-owned models use ``django_scopes.ScopedManager(business="business")``: their queries
raise ``ScopeError`` unless a scope is active. The scope is entered

* once per request, by :class:`TenantMiddleware` (templates render inside it);
* once per API request, by the API's base view (``winback.api``), after authentication;
* once per Celery task, by :class:`TenantTask` (tasks take ``business_id``);
* in management commands, with :func:`business_scope`.

``scopes_disabled()`` is the one greppable escape hatch: the platform admin, cross-tenant
fan-out (the nightly tick) and resolving which businesses a user belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING

from celery.contrib.django.task import DjangoTask
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django_scopes import scope, scopes_disabled

if TYPE_CHECKING:
    from members.models import Business, Membership

SESSION_KEY = "winback_business_id"


@contextmanager
def business_scope(business: Business | int) -> Iterator[None]:
    """Enter the scope of one business (by instance or id)."""
    business_id = business if isinstance(business, int) else business.pk
    if not business_id:
        raise ValueError("business_scope needs a saved business")
    with scope(business=business_id):
        yield


def user_memberships(user) -> list[Membership]:
    """Every business the user belongs to, with its role (resolved before any scope exists)."""
    from members.models import Membership

    if not user.is_authenticated:
        return []
    with scopes_disabled():
        return list(
            Membership.objects.filter(user=user, business__is_active=True)
            .select_related("business")
            .order_by("business__name", "business_id")
        )


class TenantMiddleware:
    """Sets ``request.business`` and ``request.membership`` and runs the view in its scope.

    The current business is the one stored in the session (switchable among the user's
    memberships) or else the user's first. A platform superuser on ``/admin/`` sees every
    business; everyone else is scoped to the current business.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        memberships = user_memberships(request.user)
        chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        membership = next((m for m in memberships if m.business_id == chosen), None)
        if membership is None and memberships:
            membership = memberships[0]
        request.memberships = memberships
        request.membership = membership
        request.business = membership.business if membership else None

        if request.path.startswith("/admin/") and request.user.is_superuser:
            with scopes_disabled():
                return self.get_response(request)
        if request.business is not None:
            # Times on every page are shown in the business's time zone.
            timezone.activate(request.business.tzinfo)
            try:
                with business_scope(request.business):
                    return self.get_response(request)
            finally:
                timezone.deactivate()
        # No business: tenant-owned queries raise ScopeError rather than leak rows.
        return self.get_response(request)


def business_switch(request: HttpRequest, business_id: int) -> bool:
    """Make ``business_id`` the session's current business if the user belongs to it."""
    if not any(m.business_id == business_id for m in user_memberships(request.user)):
        return False
    request.session[SESSION_KEY] = business_id
    return True


OWNER_ROLES = ("owner", "manager")
ALL_ROLES = ("owner", "manager", "staff")


def role_required(*roles: str):
    """View decorator: the user must have one of ``roles`` in the current business.

    Anonymous users go to the login page; a user of the wrong role gets 403.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect(f"/accounts/login/?next={request.path}")
            if request.membership is None or request.membership.role not in roles:
                raise PermissionDenied("Your role in this business does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def tenant_context(request: HttpRequest) -> dict:
    return {
        "current_business": getattr(request, "business", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": getattr(request, "memberships", []),
    }


class TenantTask(DjangoTask):
    """Celery task base class: a task called with ``business_id`` runs inside that scope."""

    abstract = True

    def __call__(self, *args, **kwargs):
        business_id = kwargs.get("business_id")
        if business_id is None:
            return super().__call__(*args, **kwargs)
        with business_scope(int(business_id)):
            return super().__call__(*args, **kwargs)
