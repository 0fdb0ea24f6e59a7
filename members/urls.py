from django.urls import path

from . import views

app_name = "members"

urlpatterns = [
    path("stamp/", views.stamp_page, name="stamp"),
    path("stamp/redeem/", views.reward_redeem, name="reward-redeem"),
    path("stamp/<int:member_id>/", views.stamp_member, name="stamp-member"),
    path(
        "stamp/<int:member_id>/rewards/<int:reward_id>/redeem/",
        views.stamp_reward_redeem,
        name="stamp-reward-redeem",
    ),
    path("members/", views.member_list, name="member-list"),
    path("members/import/", views.member_import, name="member-import"),
    path("members/import/<int:job_id>/", views.import_job, name="import-job"),
    path("members/import/<int:job_id>/progress/", views.import_job_progress, name="import-job-progress"),
    path("members/<int:member_id>/", views.member_detail, name="member-detail"),
    path("members/<int:member_id>/erase/", views.member_erase, name="member-erase"),
    path("settings/", views.business_settings, name="settings"),
    path("settings/team/", views.team, name="team"),
    path("settings/team/<int:membership_id>/", views.team_member_update, name="team-member-update"),
    path("settings/team/<int:membership_id>/unlock/", views.team_member_unlock, name="team-member-unlock"),
]
