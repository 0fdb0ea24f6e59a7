"""The team: staff and their roles, invitations sent and accepted."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from winback.tenancy import role_required

from .. import selectors, services
from ..forms import (
    AcceptInvitationForm,
    InviteForm,
    RoleForm,
)
from ..models import (
    Invitation,
    Membership,
    Role,
)


@role_required("owner")
def team(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    invite_link = None
    if request.method == "POST" and form.is_valid():
        try:
            invitation, token = services.invitation_create(
                business=request.business,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field, errors)
        else:
            invite_link = request.build_absolute_uri(reverse("invitation-accept", args=[token]))
            services.invitation_send(invitation=invitation, link=invite_link)
            messages.success(request, f"Invitation sent to {invitation.email}.")
            form = InviteForm()
    memberships = list(Membership.objects.select_related("user").order_by("role", "user__username"))
    locked = selectors.users_locked_out(usernames=[m.user.username for m in memberships], now=timezone.now())
    invitations = Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).order_by("-created_at")
    return render(
        request,
        "members/team.html",
        {
            "form": form,
            "memberships": memberships,
            "locked_out": locked,
            "invitations": invitations,
            "invite_link": invite_link,
            "roles": Role.choices,
        },
    )


@role_required("owner")
@require_POST
def team_member_update(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    try:
        if request.POST.get("remove"):
            services.membership_remove(membership=membership)
            messages.success(request, f"{membership.user.username} was removed from the team.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise ValidationError(form.errors.as_text())
            services.membership_role_set(membership=membership, role=form.cleaned_data["role"], by=request.user)
            messages.success(request, f"{membership.user.username} is now {membership.get_role_display()}.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("members:team")


@role_required("owner")
@require_POST
def team_member_unlock(request: HttpRequest, membership_id: int) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id)
    services.membership_unlock(membership=membership)
    messages.success(request, f"{membership.user.username} can sign in again.")
    return redirect("members:team")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = services.invitation_find(token=token)
    if invitation is None:
        raise Http404("This invitation is not valid any more.")
    existing = services.User.objects.filter(username=invitation.email).first()
    if request.user.is_authenticated and request.user.username != invitation.email:
        messages.error(request, f"This invitation is for {invitation.email}; sign out first.")
        return redirect("home")
    form = AcceptInvitationForm(request.POST or None) if existing is None else None
    if request.method == "POST":
        if existing is not None and not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.path}")
        if form is not None:
            if not form.is_valid():
                return render(request, "members/invitation_accept.html", {"invitation": invitation, "form": form})
            user = services.user_get_or_create(email=invitation.email, first_name=form.cleaned_data["first_name"])
            try:
                password_validation.validate_password(form.cleaned_data["password"], user)
            except ValidationError as exc:
                form.add_error("password", exc)
                return render(request, "members/invitation_accept.html", {"invitation": invitation, "form": form})
            user.set_password(form.cleaned_data["password"])
            user.save()
        else:
            user = request.user
        membership = services.invitation_accept(invitation=invitation, user=user)
        if not request.user.is_authenticated:
            login(request, user, backend="members.auth.EmailBackend")
        request.session["winback_business_id"] = membership.business_id
        messages.success(request, f"Welcome to {invitation.business.name}.")
        return redirect("home")
    return render(
        request,
        "members/invitation_accept.html",
        {"invitation": invitation, "form": form, "existing": existing},
    )
