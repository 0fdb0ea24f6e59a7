"""The member web wallet: an installable page per business that uses the member API."""

from __future__ import annotations

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control

from members.models import Business


def _business(slug: str) -> Business:
    business = Business.objects.filter(slug=slug, is_active=True).first()
    if business is None:
        raise Http404("No such loyalty program.")
    return business


def wallet_page(request: HttpRequest, slug: str) -> HttpResponse:
    business = _business(slug)
    return render(
        request,
        "wallet/app.html",
        # The push key comes from the API (businesses/<slug>/push-key/), as the mobile app gets it.
        {"business": business, "api": "/api/v1"},
    )


def wallet_manifest(request: HttpRequest, slug: str) -> JsonResponse:
    business = _business(slug)
    manifest = {
        "name": f"{business.name} loyalty card",
        "short_name": business.name[:12],
        "start_url": f"/w/{business.slug}/",
        "scope": "/w/",
        "display": "standalone",
        "background_color": "#f6f7f9",
        "theme_color": "#5b3df5",
        "icons": [
            {"src": static("wallet/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("wallet/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any maskable"},
        ],
    }
    return JsonResponse(manifest, content_type="application/manifest+json")


@cache_control(no_cache=True)
def service_worker(request: HttpRequest) -> HttpResponse:
    """Served under /w/ so that it may control every wallet page."""
    path = finders.find("wallet/sw.js")
    with open(path, encoding="utf-8") as handle:
        response = HttpResponse(handle.read(), content_type="application/javascript")
    response["Service-Worker-Allowed"] = "/w/"
    return response
