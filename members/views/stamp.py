"""The counter: the stamp page, a member's card, rewards redeemed."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from winback.tenancy import ALL_ROLES, role_required

from .. import counter, selectors, services, wallet
from ..forms import (
    RewardCodeForm,
    StampForm,
)
from ..models import (
    Member,
    MemberStatus,
    RewardStatus,
    VisitKind,
    VisitSource,
    WalletReward,
)


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
