from django.urls import path

from . import views

urlpatterns = [
    path("businesses/<slug:slug>/push-key/", views.PushKeyView.as_view(), name="business-push-key"),
    path("member/push-subscriptions/", views.PushSubscriptionListView.as_view(), name="push-subscription-list"),
    path(
        "member/push-subscriptions/<int:subscription_id>/",
        views.PushSubscriptionDetailView.as_view(),
        name="push-subscription-remove",
    ),
]
