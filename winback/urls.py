from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from members import views as member_views

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("switch/", views.switch_business, name="switch-business"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("invite/<str:token>/", member_views.invitation_accept, name="invitation-accept"),
    path("admin/", admin.site.urls),
    path("api/", include("winback.api_urls")),
    path("", include("campaigns.urls")),
    path("", include("notifications.urls")),
    path("", include("members.urls")),
]
