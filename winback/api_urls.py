"""The REST API under /api/ (v1), its OpenAPI schema and docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from winback.api_errors import not_found

v1 = [
    path("", include("members.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("notifications.api.urls")),
    # Anything else under v1 answers the API's 404, not the site's HTML page.
    re_path(r"^.*$", not_found, name="not-found"),
]

urlpatterns = [
    path("v1/", include((v1, "api"), namespace="api")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
