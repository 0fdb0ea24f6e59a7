"""The counter stamp page, the members pages, CSV import and the team page."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from winback.tenancy import ALL_ROLES, OWNER_ROLES, role_required

from . import counter, selectors, services, wallet
from .forms import (
    AcceptInvitationForm,
    BusinessSettingsForm,
    ChannelSettingsForm,
    ImportForm,
    InviteForm,
    MemberFilterForm,
    RewardCodeForm,
    RoleForm,
    StampForm,
)
from .importing import import_job_create
from .models import (
    ImportJob,
    Invitation,
    Member,
    Membership,
    MemberStatus,
    RewardStatus,
    Role,
    VisitKind,
    VisitSource,
    WalletReward,
)
from .tasks import import_job_run_task

# --- the counter -------------------------------------------------------------------------------


@role_required(*ALL_ROLES)
def stamp_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    results = selectors.member_search(query=query) if query else []
    if len(results) == 1 and results[0].card_code == query.upper():
        # A scanned QR code or a typed card code goes straight to the card.
        return redirect("members:stamp-member", member_id=results[0].pk)
    template = "members/stamp_results.html" if request.htmx and not request.htmx.boosted else "members/stamp_page.html"
    return render(request, template, {"query": query, "results": results, "redeem_form": RewardCodeForm()})


@role_required(*ALL_ROLES)
@require_POST
def reward_redeem(request: HttpRequest) -> HttpResponse:
    """A reward code typed or scanned at the top of the stamp page: redeemed once, then the card."""
    form = RewardCodeForm(request.POST)
    if form.is_valid():
        done = counter.reward_redeem_at_counter(
            code=form.cleaned_data["code"], recorded_by=request.user, source=VisitSource.STAMP_PAGE
        )
        if done.reward is not None:
            messages.success(request, done.message)
            if done.reward.member.status == MemberStatus.ACTIVE:
                return redirect("members:stamp-member", member_id=done.reward.member_id)
            return redirect("members:stamp")
        form.add_error("code", done.message)
    return render(request, "members/stamp_page.html", {"query": "", "results": [], "redeem_form": form})


@role_required(*ALL_ROLES)
@require_POST
def stamp_reward_redeem(request: HttpRequest, member_id: int, reward_id: int) -> HttpResponse:
    """The Redeem button beside a reward on the member's card."""
    member = _member_or_404(member_id)
    # Scoped, and the member's own: another business's or another member's reward is a 404.
    reward = get_object_or_404(WalletReward, pk=reward_id, member=member, code__isnull=False)
    done = counter.reward_redeem_at_counter(code=reward.code, recorded_by=request.user, source=VisitSource.STAMP_PAGE)
    (messages.success if done.reward is not None else messages.error)(request, done.message)
    return redirect("members:stamp-member", member_id=member.pk)


def _member_or_404(member_id: int) -> Member:
    # The scoped manager answers only the current business's members: another's id is a 404.
    return get_object_or_404(Member.objects.select_related("business"), pk=member_id, status=MemberStatus.ACTIVE)


@role_required(*ALL_ROLES)
def stamp_member(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member_or_404(member_id)
    form = StampForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            visit = _record_from_form(request, member, form.cleaned_data)
        except ValidationError as exc:
            for field, errors in (
                exc.message_dict.items() if hasattr(exc, "error_dict") else [("__all__", exc.messages)]
            ):
                form.add_error(field if field in form.fields else None, errors)
        else:
            if visit.replayed:
                messages.info(request, "Already recorded — nothing was added twice.")
            else:
                messages.success(request, _confirmation(member, visit))
            return redirect("members:stamp-member", member_id=member.pk)
    return render(request, "members/stamp_member.html", _card_context(member, form))


def _record_from_form(request: HttpRequest, member: Member, data: dict):
    action = data["action"]
    common = {
        "member": member,
        "recorded_by": request.user,
        "source": VisitSource.STAMP_PAGE,
        "idempotency_key": f"stamp:{data['idempotency_key']}",
        "note": data.get("note") or "",
    }
    if action == "stamp":
        return services.visit_record(kind=VisitKind.PURCHASE, stamps=1, amount=data.get("amount"), **common)
    if action == "points":
        return services.visit_record(
            kind=VisitKind.PURCHASE, points=data["points"], amount=data.get("amount"), **common
        )
    if action == "redeem":
        size = member.business.stamps_per_card
        if member.stamps_balance < size:
            raise ValidationError(f"The card has {member.stamps_balance} of {size} stamps: not full yet.")
        return services.visit_record(kind=VisitKind.REDEMPTION, stamps=-size, **common)
    return services.visit_record(
        kind=data["kind"], stamps=data.get("stamps") or 0, points=data.get("points") or 0, **common
    )


def _confirmation(member: Member, visit) -> str:
    parts = []
    if visit.stamps_delta:
        parts.append(f"{visit.stamps_delta:+d} stamp{'s' if abs(visit.stamps_delta) != 1 else ''}")
    if visit.points_delta:
        parts.append(f"{visit.points_delta:+d} points")
    what = " and ".join(parts) or visit.get_kind_display()
    return f"{what} for {member.display_name}."


def _card_context(member: Member, form: StampForm) -> dict:
    size = member.business.stamps_per_card
    on_card = max(min(member.stamps_balance, size), 0)
    return {
        "member": member,
        "form": form,
        "new_key": uuid.uuid4(),
        "slots": [i < on_card for i in range(size)],
        "card_full": member.stamps_balance >= size,
        "full_cards": member.full_cards,
        "visits": selectors.member_recent_visits(member=member, limit=8),
        "rewards": list(
            wallet.wallet_rewards(member=member, status=RewardStatus.AVAILABLE).order_by(
                F("expires_at").asc(nulls_last=True), "pk"
            )
        ),
        "other_kinds": [(k, v) for k, v in VisitKind.choices if k not in ("purchase", "redemption", "campaign_reward")],
    }


# --- members for owners -------------------------------------------------------------------------


@role_required(*OWNER_ROLES)
def member_list(request: HttpRequest) -> HttpResponse:
    form = MemberFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    members = selectors.member_list(
        query=data.get("q", ""),
        status=data.get("status", ""),
        lapsed=data.get("lapsed", ""),
        reach=data.get("reach", ""),
    )
    page = Paginator(members, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "members/member_list.html",
        {"form": form, "page": page, "members": page.object_list, "querystring": query.urlencode()},
    )


@role_required(*OWNER_ROLES)
def member_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    member = get_object_or_404(Member.objects.select_related("business"), pk=member_id)
    visits = Paginator(selectors.member_visits(member=member), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "members/member_detail.html",
        {"member": member, "visits": visits, "consents": selectors.member_consents(member=member)},
    )


@role_required("owner")
@require_POST
def member_erase(request: HttpRequest, member_id: int) -> HttpResponse:
    member = get_object_or_404(Member, pk=member_id)
    services.member_erase(member=member)
    messages.success(request, "The member's personal data was erased; anonymous counts are kept.")
    return redirect("members:member-detail", member_id=member.pk)


@role_required(*OWNER_ROLES)
def member_import(request: HttpRequest) -> HttpResponse:
    """The upload is checked and stored at once; a worker imports it (the page then follows it)."""
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = import_job_create(
            business=request.business,
            created_by=request.user,
            members_name=data["members_file"].name,
            members_csv=data["members_text"],
            visits_name=data["visits_file"].name if data["visits_file"] else "",
            visits_csv=data["visits_text"],
            total_rows=data["total_rows"],
            enqueue=lambda job: import_job_run_task.delay(business_id=job.business_id, job_id=job.pk),
        )
        return redirect("members:import-job", job_id=job.pk)
    jobs = ImportJob.objects.select_related("created_by").defer("members_csv", "visits_csv").order_by("-created_at")
    return render(request, "members/member_import.html", {"form": form, "jobs": jobs[:10]})


@role_required(*OWNER_ROLES)
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """One import: its progress bar (which polls ``import_job_progress`` while it runs), then its result."""
    job = get_object_or_404(ImportJob.objects.defer("members_csv", "visits_csv"), pk=job_id)
    return render(request, "members/import_job.html", {"job": job})


@role_required(*OWNER_ROLES)
def import_job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.defer("members_csv", "visits_csv"), pk=job_id)
    return render(request, "members/_import_job.html", {"job": job})


# --- business settings ----------------------------------------------------------------------------


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


# --- the team -----------------------------------------------------------------------------------


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
