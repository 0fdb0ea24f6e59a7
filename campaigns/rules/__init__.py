"""Campaign validation, conditions and reachability compiled to SQL, rewards described and rendered.

Used by the model's ``clean()``, the wizard, the API and ``campaign_activate`` alike, so every
interface gives the same errors.
"""

from .clean import (
    CONDITIONS,
    PACED_CHANNELS,
    PLACEHOLDERS,
    QUIET_END,
    QUIET_START,
    REWARD_FIELDS,
    campaign_validate,
    conditions_clean,
    message_check,
    pacing_clean,
    reward_clean,
)
from .sql import (
    CONDITION_SQL,
    FLAG_CONDITION_SQL,
    condition_values,
    conditions_sql,
    contact_missing_sql,
    reachable_q,
    reachable_sql,
)

__all__ = [
    "CONDITIONS",
    "CONDITION_SQL",
    "FLAG_CONDITION_SQL",
    "PACED_CHANNELS",
    "PLACEHOLDERS",
    "QUIET_END",
    "QUIET_START",
    "REWARD_FIELDS",
    "campaign_validate",
    "condition_values",
    "conditions_clean",
    "conditions_sql",
    "contact_missing_sql",
    "message_check",
    "pacing_clean",
    "reachable_q",
    "reachable_sql",
    "reward_clean",
]
