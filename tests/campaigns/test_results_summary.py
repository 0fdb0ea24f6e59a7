"""The plain sentence the campaign page leads with, for every state, in the business's currency
and with its plurals right."""

from decimal import Decimal

import pytest

from campaigns.results import ArmFigures, Results, chance, comparison_rows, results_summary
from campaigns.stats import compare
from tests.conftest import business_make, campaign_make


def _results(campaign, *, n_t, won_t, n_c=None, won_c=0, revenue=Decimal("0"), reached=None) -> Results:
    treatment = ArmFigures("treatment", n_t, n_t, n_t if reached is None else reached, 0, won_t, revenue)
    arms = {"a": treatment, "b": ArmFigures("b"), "control": ArmFigures("control", n_c or 0, n_c or 0, 0, 0, won_c)}
    lift = compare(won_b=won_t, n_b=n_t, won_a=won_c, n_a=n_c, revenue_b=revenue) if n_c is not None else None
    return Results(campaign, arms, treatment, treatment, [], {}, {}, None, lift)


@pytest.fixture
def campaign(db):
    return campaign_make(business_make(currency="MYR"), control_share=20, attribution_days=14)


def test_the_issues_example_is_told_as_possibly_chance_not_as_a_win(campaign):
    r = _results(campaign, n_t=120, won_t=14, n_c=30, won_c=2, revenue=Decimal("126.00"))
    assert r.state == "inconclusive"
    assert results_summary(r) == (
        "14 of 120 members picked for a message came back within 14 days (12\u00a0%); of the 30 held back, 2 came "
        "back (7\u00a0%). The difference could still be chance: the campaign brought back between 12 fewer and 16 "
        "more members than would have come back without it."
    )


def test_a_campaign_ahead_says_how_many_extra_customers_and_what_they_were_worth(campaign):
    r = _results(campaign, n_t=200, won_t=60, n_c=40, won_c=4, revenue=Decimal("540.00"))
    assert r.state == "ahead"
    assert results_summary(r).endswith(
        "The campaign probably brought back about 40 extra customers (between 11 and 58 more than without it), "
        "worth about MYR 360."
    )


def test_a_campaign_behind_says_fewer_came_back(campaign):
    r = _results(campaign, n_t=200, won_t=10, n_c=40, won_c=12)
    assert r.state == "behind"
    assert "Fewer came back than without the campaign: about 50 members fewer (between 25 and 81 fewer)." in (
        results_summary(r)
    )


def test_collecting_names_how_many_more_members_are_needed(campaign):
    r = _results(campaign, n_t=45, won_t=6, n_c=1, won_c=0)
    assert r.state == "collecting"
    assert results_summary(r).endswith(
        "Too early to say what the campaign brought: that needs at least 19 more members held back."
    )
    one_short = _results(campaign, n_t=45, won_t=4, n_c=19, won_c=0)
    assert results_summary(one_short).endswith("that needs at least 1 more member held back.")
    returns = _results(campaign, n_t=45, won_t=3, n_c=20, won_c=1)
    assert results_summary(returns).endswith("that needs at least 1 more member to come back.")


def test_one_member_is_singular(campaign):
    r = _results(campaign, n_t=1, won_t=1, n_c=None)
    assert results_summary(r).startswith("1 of 1 member picked for a message came back within 14 days (100\u00a0%).")
    assert results_summary(r).endswith(
        "Without a control group there is no telling how many would have come back anyway."
    )


def test_before_anything_went_out_nothing_is_said_about_lift(campaign):
    r = _results(campaign, n_t=30, won_t=2, n_c=8, won_c=1, reached=0)
    assert r.state is None
    assert (
        results_summary(r) == "30 members have been picked; nothing has gone out yet, so there is nothing to measure."
    )
    assert results_summary(_results(campaign, n_t=0, won_t=0, reached=0)).startswith("Nothing has gone out yet")


def test_the_disclosure_words_a_negative_difference_as_fewer_and_less(campaign):
    r = _results(campaign, n_t=200, won_t=10, n_c=40, won_c=12, revenue=Decimal("100.00"))
    (row,) = comparison_rows(r)
    assert row["extra"] == "about 50 fewer" and row["extra_range"] == "between 25 and 81 fewer"
    assert row["worth"] == "MYR 500 less" and row["worth_range"].endswith("less")
    assert row["chance"] == "under 1\u00a0%"
    assert (chance(0.999), chance(0.5), chance(None)) == ("over 99\u00a0%", "50\u00a0%", "not known yet")


def test_open_windows_are_said_so_the_figures_are_not_read_as_final(campaign):
    r = _results(campaign, n_t=120, won_t=14, n_c=30, won_c=2)
    r.treatment.waiting, r.arms["control"].waiting = 20, 1
    assert (
        "(7\u00a0%). For 21 members picked in the last 14 days the window is still open, so these figures can "
        "still grow. The difference could still be chance"
    ) in results_summary(r)
    r.treatment.waiting, r.arms["control"].waiting = 1, 0
    assert "For 1 member picked in the last 14 days the window" in results_summary(r)


def test_campaign_outcomes_count_the_members_still_inside_their_window(db):
    from datetime import UTC, datetime, timedelta

    import time_machine
    from django_scopes import scope

    from campaigns.models import CampaignSend
    from campaigns.results import campaign_outcomes
    from tests.conftest import member_make, visit_make

    business = business_make(timezone="UTC", frequency_cap_days=0)
    campaign = campaign_make(business, channels=["sms"], attribution_days=14)
    now = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False), scope(business=business.pk):
        for i, (days_ago, back) in enumerate(((20, False), (5, False), (5, True), (13, False))):
            m = member_make(business, phone=f"+6012345678{i}", consents={"sms": True})
            created = now - timedelta(days=days_ago)
            CampaignSend.objects.create(business=business, campaign=campaign, member=m, send_number=1,
                                        local_date=created.date(), outcome="sent", created_at=created)  # fmt: skip
            if back:
                visit_make(m, at=created + timedelta(days=1))
        a = campaign_outcomes(campaigns=[campaign])[campaign.pk]["a"]
    # Picked 5 and 13 days ago and not back: still inside the 14 days; 20 days ago: over.
    assert (a.members, a.won, a.waiting) == (4, 1, 2)
