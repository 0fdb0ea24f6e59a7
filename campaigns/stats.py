"""Small-sample statistics for a campaign against its control group (or B against A).

A café's campaign has tens to hundreds of members per arm, where the textbook Wald interval
(rate ± 1.96 standard errors) undercovers badly and collapses to a zero-width interval at 0/n or
n/n. Here instead:

- the difference of two win-back rates gets **Newcombe's hybrid-score interval** (Newcombe 1998,
  method 10): each arm's Wilson score interval, combined by the square-and-add rule. Its coverage
  stays close to 95 % from 20 members per arm up (``tests/campaigns/test_stats.py`` simulates it);
- "how likely is it that the campaign beats the control" is the **posterior probability** that
  the treatment rate exceeds the control rate, each rate Beta(1 + won, 1 + not won) — uniform
  Beta(1, 1) priors updated by the binomial counts — in closed form (Evan Miller's sum, with
  scipy's log-beta);
- a **state**: ``collecting`` until each arm has ``MIN_MEMBERS`` members and ``MIN_RETURNS``
  members have come back in the two arms together (below that an interval is mostly noise, and
  the page says how many more are needed), then ``ahead`` / ``behind`` when the interval excludes
  0, else ``inconclusive``.

Every function takes plain counts (numpy arrays too, for the interval), so the simulation test
runs the very code the page uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from scipy import special, stats

CONFIDENCE = 0.95
Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))

# The rule for "too early to say": fewer members than this in either arm ...
MIN_MEMBERS = 20
# ... or fewer members than this come back in the two arms together.
MIN_RETURNS = 5

COLLECTING, INCONCLUSIVE, AHEAD, BEHIND = "collecting", "inconclusive", "ahead", "behind"
STATES = (COLLECTING, INCONCLUSIVE, AHEAD, BEHIND)
METHOD = (
    "95 % interval of the difference in win-back rates: Newcombe's hybrid score interval (method 10, "
    "from each group's Wilson interval). Probability: Bayesian, each group's rate Beta(1 + came back, "
    "1 + did not) from a uniform prior."
)


def wilson_interval(won, n, z: float = Z):
    """The Wilson score interval of ``won / n`` (arrays welcome). ``n == 0`` gives (0, 1): no data,
    no knowledge. Checked against scipy's ``binomtest(...).proportion_ci(method="wilson")``."""
    won, n = np.asarray(won, dtype=float), np.asarray(n, dtype=float)
    safe_n = np.where(n > 0, n, 1.0)
    p = won / safe_n
    denominator = 1 + z * z / safe_n
    centre = (p + z * z / (2 * safe_n)) / denominator
    half = z * np.sqrt(p * (1 - p) / safe_n + z * z / (4 * safe_n * safe_n)) / denominator
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    # At 0/n and n/n the bound is exactly 0 or 1 (the formula leaves a rounding error there).
    low = np.where(won <= 0, 0.0, low)
    high = np.where(won >= n, 1.0, high)
    return np.where(n > 0, low, 0.0), np.where(n > 0, high, 1.0)


def newcombe_interval(won_b, n_b, won_a, n_a, z: float = Z):
    """Newcombe's hybrid score interval (method 10) of ``won_b / n_b − won_a / n_a``."""
    won_a, n_a = np.asarray(won_a, dtype=float), np.asarray(n_a, dtype=float)
    won_b, n_b = np.asarray(won_b, dtype=float), np.asarray(n_b, dtype=float)
    p_a = np.divide(won_a, n_a, out=np.zeros_like(won_a * n_a), where=n_a > 0)
    p_b = np.divide(won_b, n_b, out=np.zeros_like(won_b * n_b), where=n_b > 0)
    low_a, high_a = wilson_interval(won_a, n_a, z)
    low_b, high_b = wilson_interval(won_b, n_b, z)
    difference = p_b - p_a
    low = difference - np.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = difference + np.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)


def probability_better(*, won_b: int, n_b: int, won_a: int, n_a: int) -> float:
    """P(rate_b > rate_a) for independent Beta(1 + won, 1 + n − won) posteriors, exactly:
    sum over i < alpha_b of B(alpha_a + i, beta_a + beta_b) / ((beta_b + i) B(1 + i, beta_b) B(alpha_a, beta_a))."""
    alpha_a, beta_a = 1 + won_a, 1 + n_a - won_a
    alpha_b, beta_b = 1 + won_b, 1 + n_b - won_b
    i = np.arange(alpha_b, dtype=float)
    terms = (
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return float(np.clip(np.exp(special.logsumexp(terms)), 0.0, 1.0))


@dataclass(frozen=True)
class Comparison:
    """Group b (the campaign, or variant B) against group a (the control group, or variant A):
    members counted from the night they were picked, won = came back within the window."""

    won_a: int
    n_a: int
    won_b: int
    n_b: int
    revenue_b: Decimal
    difference: float
    ci_low: float
    ci_high: float
    probability: float | None  # P(rate_b > rate_a); None while an arm is empty
    state: str
    needed_a: int  # members still needed in each arm before the state can leave "collecting"
    needed_b: int
    needed_returns: int
    method: str = METHOD

    @property
    def rate_a(self) -> float:
        return self.won_a / self.n_a if self.n_a else 0.0

    @property
    def rate_b(self) -> float:
        return self.won_b / self.n_b if self.n_b else 0.0

    # What the difference means in people and money for group b's members: the members who came
    # back beyond what group a's rate predicts, with the interval scaled the same way.
    @property
    def incremental(self) -> float:
        return self.difference * self.n_b

    @property
    def incremental_low(self) -> float:
        return self.ci_low * self.n_b

    @property
    def incremental_high(self) -> float:
        return self.ci_high * self.n_b

    @property
    def revenue_per_return(self) -> Decimal:
        """What a member of group b who came back spent on average within the window: the value
        put on each extra member."""
        return (self.revenue_b / self.won_b).quantize(Decimal("0.01")) if self.won_b else Decimal("0")

    def _money(self, members: float) -> Decimal:
        return (Decimal(str(members)) * self.revenue_per_return).quantize(Decimal("1"), rounding=ROUND_HALF_UP)

    @property
    def incremental_revenue(self) -> Decimal:
        return self._money(self.incremental)

    @property
    def incremental_revenue_low(self) -> Decimal:
        return self._money(self.incremental_low)

    @property
    def incremental_revenue_high(self) -> Decimal:
        return self._money(self.incremental_high)


def compare(*, won_b: int, n_b: int, won_a: int, n_a: int, revenue_b: Decimal = Decimal("0")) -> Comparison:
    """Everything the page, the API and the export say about b against a, from the counts."""
    if n_a and n_b:
        low, high = (float(x) for x in newcombe_interval(won_b, n_b, won_a, n_a))
        probability = probability_better(won_b=won_b, n_b=n_b, won_a=won_a, n_a=n_a)
        difference = won_b / n_b - won_a / n_a
    else:
        low, high, probability, difference = -1.0, 1.0, None, 0.0
    needed_a, needed_b = max(0, MIN_MEMBERS - n_a), max(0, MIN_MEMBERS - n_b)
    needed_returns = max(0, MIN_RETURNS - won_a - won_b)
    if needed_a or needed_b or needed_returns:
        state = COLLECTING
    elif low > 0:
        state = AHEAD
    elif high < 0:
        state = BEHIND
    else:
        state = INCONCLUSIVE
    return Comparison(
        won_a=won_a, n_a=n_a, won_b=won_b, n_b=n_b, revenue_b=revenue_b, difference=difference, ci_low=low,
        ci_high=high, probability=probability, state=state, needed_a=needed_a, needed_b=needed_b,
        needed_returns=needed_returns,
    )  # fmt: skip
