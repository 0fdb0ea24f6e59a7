"""The nightly evaluation, as plain functions over set-based queries (no Celery here).

For each business, once per local date D, at local midnight (the first instant of D), every
campaign activated before that instant selects the members due on D:

* active, of the business, with a purchase;
* ``max(last purchase date, date of the last send of this campaign) <= D - inactivity_days``,
  dates in the business's time zone;
* fewer than ``max_sends`` sends of this campaign (cancelled and capped rows don't count);
* the campaign's conditions hold;
* reachable on at least one of its channels with consent;
* no campaign message within the business's frequency cap (``frequency_cap_days``).

Where several campaigns select one member the same night, the longest threshold wins and the
others record the member as capped. Sends, their rewards and their deliveries are written by a
handful of ``INSERT … SELECT`` statements per business, inside one transaction whose first write
is the unique ``EvaluationRun`` row: a second evaluation of the same date writes nothing.

The parts, each in its own module (lower ones never import higher ones):

* ``dates``: local dates and the instants they start; ``sql``: SQL pieces shared by the others;
* ``selection``: the campaigns due and the members due for each (one statement for all of them);
* ``funnel``: one campaign's audience as a funnel (the wizard, the API, the results pages);
* ``schedule``: when the deliveries go out (send-at, pacing, daily caps);
* ``writes``: the night's ``INSERT … SELECT`` statements; ``night``: one business's night;
* ``tick``: which nights are due, a batch of them, failures and backoff.

The names callers use are re-exported here: ``from campaigns.engine import business_evaluate``.
"""

from .dates import local_date_of, local_day_start, local_moment
from .funnel import (
    AWAY_BUCKETS,
    FUNNEL_STAGES,
    Audience,
    Funnel,
    campaign_audience,
    campaign_funnel,
    campaign_funnel_rows,
    night_campaigns,
)
from .night import NIGHT_LOCK, RunResult, business_evaluate
from .selection import BUCKET_SQL, arm_bucket, campaign_audience_queryset, campaigns_due
from .tick import (
    CATCH_UP_DAYS,
    RETRY_FIRST,
    RETRY_MAX,
    NightOutcome,
    evaluation_failure_record,
    evaluations_due,
    nights_evaluate,
    retry_delay,
)
from .writes import NightConflict

__all__ = [
    "AWAY_BUCKETS",
    "BUCKET_SQL",
    "CATCH_UP_DAYS",
    "FUNNEL_STAGES",
    "NIGHT_LOCK",
    "RETRY_FIRST",
    "RETRY_MAX",
    "Audience",
    "Funnel",
    "NightConflict",
    "NightOutcome",
    "RunResult",
    "arm_bucket",
    "business_evaluate",
    "campaign_audience",
    "campaign_audience_queryset",
    "campaign_funnel",
    "campaign_funnel_rows",
    "campaigns_due",
    "evaluation_failure_record",
    "evaluations_due",
    "local_date_of",
    "local_day_start",
    "local_moment",
    "night_campaigns",
    "nights_evaluate",
    "retry_delay",
]
