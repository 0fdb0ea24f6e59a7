from django.urls import path

from . import views

urlpatterns = [
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/audience/", views.AudienceView.as_view(), name="campaign-audience-preview"),
    path("campaigns/<int:campaign_id>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<int:campaign_id>/activate/", views.CampaignActivateView.as_view(), name="campaign-activate"),
    path("campaigns/<int:campaign_id>/pause/", views.CampaignPauseView.as_view(), name="campaign-pause"),
    path("campaigns/<int:campaign_id>/resume/", views.CampaignResumeView.as_view(), name="campaign-resume"),
    path("campaigns/<int:campaign_id>/archive/", views.CampaignArchiveView.as_view(), name="campaign-archive"),
    path("campaigns/<int:campaign_id>/duplicate/", views.CampaignDuplicateView.as_view(), name="campaign-duplicate"),
    path("campaigns/<int:campaign_id>/audience/", views.CampaignAudienceView.as_view(), name="campaign-audience"),
    path("campaigns/<int:campaign_id>/results/", views.CampaignResultsView.as_view(), name="campaign-results"),
    path("campaigns/<int:campaign_id>/runs/", views.CampaignRunsView.as_view(), name="campaign-runs"),
]
