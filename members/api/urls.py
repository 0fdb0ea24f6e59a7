from django.urls import path

from . import manage, pos, views

member_app = [
    path("member/auth/code/", views.CodeRequestView.as_view(), name="member-code-request"),
    path("member/auth/join/", views.JoinView.as_view(), name="member-join"),
    path("member/auth/token/", views.CodeExchangeView.as_view(), name="member-code-exchange"),
    path("member/auth/sign-out/", views.SignOutView.as_view(), name="member-sign-out"),
    path("member/devices/", views.DeviceListView.as_view(), name="member-device-list"),
    path("member/devices/<int:device_id>/", views.DeviceRevokeView.as_view(), name="member-device-revoke"),
    path("member/me/", views.MeView.as_view(), name="member-me"),
    path("member/me/erase/", views.EraseView.as_view(), name="member-erase"),
    path("member/card/", views.CardView.as_view(), name="member-card"),
    path("member/card/qr.svg", views.CardQRView.as_view(), name="member-card-qr"),
    path("member/visits/", views.VisitsView.as_view(), name="member-visit-list"),
    path("member/preferences/", views.PreferencesView.as_view(), name="member-preferences"),
    path("member/wallet/", views.WalletView.as_view(), name="member-wallet"),
    path("member/wallet/<int:reward_id>/", views.WalletRewardView.as_view(), name="member-wallet-reward"),
    path("member/inbox/", views.InboxView.as_view(), name="member-inbox"),
    path("member/inbox/<int:send_id>/open/", views.InboxOpenView.as_view(), name="member-inbox-open"),
]

point_of_sale = [
    path("pos/members/lookup/", pos.MemberLookupView.as_view(), name="pos-member-lookup"),
    path("pos/members/<int:member_id>/", pos.PosMemberView.as_view(), name="pos-member-detail"),
    path("pos/members/<int:member_id>/visits/", pos.VisitCreateView.as_view(), name="pos-visit-create"),
    path("pos/rewards/redeem/", pos.RedeemView.as_view(), name="pos-reward-redeem"),
]

management = [
    path("auth/token/", manage.LoginView.as_view(), name="user-token-create"),
    path("auth/logout/", manage.LogoutView.as_view(), name="user-token-revoke"),
    path("api-keys/", manage.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<int:key_id>/", manage.ApiKeyRevokeView.as_view(), name="api-key-revoke"),
    path("members/", manage.MemberListView.as_view(), name="member-list"),
    path("members/<int:member_id>/", manage.MemberDetailView.as_view(), name="member-detail"),
    path("members/<int:member_id>/erase/", manage.MemberEraseView.as_view(), name="member-erase-by-manager"),
    path("members/<int:member_id>/visits/", manage.MemberVisitsView.as_view(), name="member-visits"),
]

urlpatterns = member_app + point_of_sale + management
