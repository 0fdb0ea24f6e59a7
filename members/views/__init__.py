"""The counter stamp page, the members pages, CSV import, the settings and the team page."""

from .business import business_settings
from .members import import_job, import_job_progress, member_detail, member_erase, member_import, member_list
from .stamp import reward_redeem, stamp_member, stamp_page, stamp_reward_redeem
from .team import invitation_accept, team, team_member_unlock, team_member_update

__all__ = [
    "business_settings",
    "import_job",
    "import_job_progress",
    "invitation_accept",
    "member_detail",
    "member_erase",
    "member_import",
    "member_list",
    "reward_redeem",
    "stamp_member",
    "stamp_page",
    "stamp_reward_redeem",
    "team",
    "team_member_unlock",
    "team_member_update",
]
