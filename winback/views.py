from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .tenancy import OWNER_ROLES, business_switch


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    if request.membership is None:
        if request.user.is_superuser:
            return redirect("admin:index")
        return render(request, "no_business.html", status=403)
    if request.membership.role in OWNER_ROLES:
        return redirect("campaigns:dashboard")
    return redirect("members:stamp")


@require_POST
def switch_business(request: HttpRequest) -> HttpResponse:
    try:
        business_id = int(request.POST.get("business", ""))
    except ValueError:
        raise Http404("No such business.") from None
    if not business_switch(request, business_id):
        raise Http404("No such business.")
    messages.success(request, "Switched business.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target or "/")


def healthz(request: HttpRequest) -> HttpResponse:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
