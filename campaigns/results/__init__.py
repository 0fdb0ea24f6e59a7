"""Results that prove the money: attribution, per-arm figures, lift with significance.

A send counts as **won back** when its member makes a purchase within the campaign's attribution
window after the send's night (``created_at``, the evaluation instant); control hold-outs are
measured the same way from the night they were held out, so both arms share one clock. Revenue is
the amount of those purchases. Everything is computed by aggregate queries over the ledger as it
stands, so backdated or imported purchases count as soon as they are recorded.

The parts: ``attribution`` (who came back, the one count every surface reads), ``figures`` (a
campaign's page: per arm, by night, deliveries, rewards, lift), ``words`` (the plain sentence and
the comparison rows) and ``dashboard`` (the business's figures).
"""

from .attribution import ArmOutcome, attributed_sends, campaign_outcomes, campaign_treatment, won_back_total
from .dashboard import business_dashboard
from .figures import ArmFigures, Results, campaign_results, campaign_sends_export
from .words import chance, comparison_rows, money, results_summary

__all__ = [
    "ArmFigures",
    "ArmOutcome",
    "Results",
    "attributed_sends",
    "business_dashboard",
    "campaign_outcomes",
    "campaign_results",
    "campaign_sends_export",
    "campaign_treatment",
    "chance",
    "comparison_rows",
    "money",
    "results_summary",
    "won_back_total",
]
