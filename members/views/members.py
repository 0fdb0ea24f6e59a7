"""Members for owners: the list, a member, erasure, CSV import."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from notifications import erasure
from winback.tenancy import OWNER_ROLES, role_required

from .. import selectors
from ..forms import (
    ImportForm,
    MemberFilterForm,
)
from ..importing import import_job_create
from ..models import (
    ImportJob,
    Member,
)
from ..tasks import import_job_run_task


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
    erasure.member_erase(member=member)
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
