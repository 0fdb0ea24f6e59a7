"""The small-sample statistics: the interval's coverage by simulation, its properties for all
counts, the edges 0/n and n/n, the posterior probability and the state rule."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from campaigns import stats

TRIALS = 2000


@st.composite
def counts(draw, max_n: int = 2000):
    n = draw(st.integers(min_value=1, max_value=max_n))
    return draw(st.integers(min_value=0, max_value=n)), n


@pytest.mark.parametrize("n", [20, 50, 100, 200, 500])
@pytest.mark.parametrize(("rate_a", "rate_b"), [(0.25, 0.25), (0.3, 0.45), (0.5, 0.6), (0.1, 0.15), (0.4, 0.3)])
def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time(n, rate_a, rate_b):
    rng = np.random.default_rng(hash((n, rate_a, rate_b)) % 2**32)
    won_a, won_b = rng.binomial(n, rate_a, TRIALS), rng.binomial(n, rate_b, TRIALS)

    low, high = stats.newcombe_interval(won_b, n, won_a, n)

    truth = rate_b - rate_a
    coverage = np.mean((low <= truth) & (truth <= high))
    if n * min(rate_a, rate_b) >= 5:
        assert 0.93 <= coverage <= 0.975, coverage
    else:
        # Under five expected returns in an arm the score interval is conservative (it errs wide,
        # never narrow): the state stays "collecting" there anyway.
        assert coverage >= 0.93, coverage


def test_the_interval_is_conservative_not_overconfident_at_rare_returns():
    rng = np.random.default_rng(7)
    for n in (20, 50):
        won_a, won_b = rng.binomial(n, 0.05, TRIALS), rng.binomial(n, 0.1, TRIALS)
        low, high = stats.newcombe_interval(won_b, n, won_a, n)
        assert np.mean((low <= 0.05) & (high >= 0.05)) >= 0.95


def test_the_control_arm_may_be_much_smaller_than_the_campaign():
    # A 10 % control group: 40 held back against 360 messaged.
    rng = np.random.default_rng(11)
    won_a, won_b = rng.binomial(40, 0.2, TRIALS), rng.binomial(360, 0.3, TRIALS)
    low, high = stats.newcombe_interval(won_b, 360, won_a, 40)
    assert 0.93 <= np.mean((low <= 0.1) & (high >= 0.1)) <= 0.975


@given(counts())
@settings(max_examples=300, deadline=None)
def test_the_wilson_interval_is_scipys(k_n):
    won, n = k_n
    low, high = stats.wilson_interval(won, n)
    expected = binomtest(won, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert float(low) == pytest.approx(expected.low, abs=1e-12)
    assert float(high) == pytest.approx(expected.high, abs=1e-12)


@given(counts(), counts())
@settings(max_examples=300, deadline=None)
def test_the_interval_holds_the_estimate_and_mirrors_when_the_arms_swap(b, a):
    (won_b, n_b), (won_a, n_a) = b, a
    low, high = (float(x) for x in stats.newcombe_interval(won_b, n_b, won_a, n_a))
    difference = won_b / n_b - won_a / n_a
    assert -1 <= low <= difference <= high <= 1
    assert high - low > 0
    swapped_low, swapped_high = (float(x) for x in stats.newcombe_interval(won_a, n_a, won_b, n_b))
    assert swapped_low == pytest.approx(-high, abs=1e-12) and swapped_high == pytest.approx(-low, abs=1e-12)


@given(counts(400), counts(400))
@settings(max_examples=200, deadline=None)
def test_the_probabilities_of_either_arm_being_better_add_up_to_one(b, a):
    (won_b, n_b), (won_a, n_a) = b, a
    forward = stats.probability_better(won_b=won_b, n_b=n_b, won_a=won_a, n_a=n_a)
    backward = stats.probability_better(won_b=won_a, n_b=n_a, won_a=won_b, n_a=n_b)
    assert 0 <= forward <= 1
    assert forward + backward == pytest.approx(1, abs=1e-9)


def test_the_posterior_probability_matches_a_monte_carlo_of_scipys_beta():
    rng = np.random.default_rng(3)
    draws_b = stats.stats.beta(1 + 14, 1 + 106).rvs(400_000, random_state=rng)
    draws_a = stats.stats.beta(1 + 2, 1 + 28).rvs(400_000, random_state=rng)
    exact = stats.probability_better(won_b=14, n_b=120, won_a=2, n_a=30)
    assert exact == pytest.approx(np.mean(draws_b > draws_a), abs=0.003)
    assert stats.probability_better(won_b=5, n_b=50, won_a=5, n_a=50) == pytest.approx(0.5)


@pytest.mark.parametrize("n", [1, 20, 500])
def test_at_none_and_all_the_interval_keeps_a_width(n):
    for won in (0, n):
        low, high = (float(x) for x in stats.wilson_interval(won, n))
        assert (low, high)[0 if won == 0 else 1] == (0.0 if won == 0 else 1.0)
        assert high - low > 0
    # Nobody came back in either arm: no difference seen, but not "certainly none".
    low, high = (float(x) for x in stats.newcombe_interval(0, n, 0, n))
    assert low < 0 < high
    # Everybody against nobody: the interval excludes 0 once there are a few members.
    low, high = (float(x) for x in stats.newcombe_interval(n, n, 0, n))
    assert high == 1.0 and (low > 0 if n >= 20 else low < 1)


def test_0_of_20_against_0_of_20_is_not_a_difference_of_exactly_zero():
    low, high = (float(x) for x in stats.newcombe_interval(0, 20, 0, 20))
    assert low == pytest.approx(-0.1611, abs=1e-4) and high == pytest.approx(0.1611, abs=1e-4)


def test_newcombes_worked_example():
    # Newcombe (1998), Table II example (b): 56/70 − 48/80 = 0.2, method 10: 0.0524 to 0.3339.
    low, high = (float(x) for x in stats.newcombe_interval(56, 70, 48, 80))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_the_state_collects_until_each_arm_has_enough_members_then_follows_the_interval():
    early = stats.compare(won_b=3, n_b=50, won_a=0, n_a=8)
    assert (early.state, early.needed_a, early.needed_b, early.needed_returns) == ("collecting", 12, 0, 2)
    assert stats.compare(won_b=0, n_b=0, won_a=0, n_a=0).probability is None

    few_returns = stats.compare(won_b=2, n_b=100, won_a=1, n_a=20)
    assert (few_returns.state, few_returns.needed_returns) == ("collecting", 2)

    assert stats.compare(won_b=14, n_b=120, won_a=2, n_a=30).state == "inconclusive"
    assert stats.compare(won_b=60, n_b=200, won_a=4, n_a=40).state == "ahead"
    assert stats.compare(won_b=10, n_b=200, won_a=12, n_a=40).state == "behind"


def test_incremental_members_and_revenue_scale_the_difference_to_the_campaigns_members():
    c = stats.compare(won_b=60, n_b=200, won_a=4, n_a=40, revenue_b=Decimal("540.00"))
    # 30 % against 10 %: 40 more of the 200 than the control's rate predicts.
    assert c.incremental == pytest.approx(40)
    assert c.incremental_low == pytest.approx(c.ci_low * 200) and c.incremental_high == pytest.approx(c.ci_high * 200)
    assert c.incremental_low < 40 < c.incremental_high
    assert c.revenue_per_return == Decimal("9.00")
    assert c.incremental_revenue == Decimal("360")
    assert c.incremental_revenue_low < Decimal("360") < c.incremental_revenue_high
