from django.urls import path

from . import views
from .wizard import views as wizard

app_name = "campaigns"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/<int:campaign_id>/export.csv", views.campaign_export, name="campaign-export"),
    path("campaigns/new/", wizard.wizard_new, name="wizard-new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", wizard.wizard_resume, name="wizard-resume"),
    path("campaigns/<int:campaign_id>/edit/<slug:step>/", wizard.wizard_step, name="wizard-step"),
    path("campaigns/<int:campaign_id>/audience/", wizard.audience_count, name="audience-count"),
    path("campaigns/<int:campaign_id>/preview/", wizard.message_preview, name="message-preview"),
    path("campaigns/<int:campaign_id>/test-send/", views.campaign_test_send, name="campaign-test-send"),
    path("campaigns/<int:campaign_id>/tonight/", views.campaign_tonight, name="campaign-tonight"),
    path(
        "campaigns/<int:campaign_id>/<slug:action>/",
        views.campaign_action,
        name="campaign-action",
    ),
]
