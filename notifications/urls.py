from django.urls import path

from . import email_tracking, views, wallet, webhooks

app_name = "notifications"

urlpatterns = [
    path("webhooks/twilio/status/", webhooks.twilio_status, name="twilio-status"),
    path("webhooks/twilio/inbound/", webhooks.twilio_inbound, name="twilio-inbound"),
    path("webhooks/email/<slug:esp>/tracking/", email_tracking.email_tracking, name="email-tracking"),
    path("u/<str:token>/", webhooks.email_unsubscribe, name="email-unsubscribe"),
    path("m/<str:token>/", views.message_open, name="message-open"),
    path("m/<str:code>", views.message_open_short, name="message-open-short"),
    path("w/sw.js", wallet.service_worker, name="wallet-sw"),
    path("w/<slug:slug>/", wallet.wallet_page, name="wallet"),
    path("w/<slug:slug>/manifest.webmanifest", wallet.wallet_manifest, name="wallet-manifest"),
]
