"""The plain sentence a café owner reads first, and the comparison rows under it: worded by the
result's state, in the business's currency, plurals right."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.utils.translation import ngettext

from ..models import Arm
from ..stats import AHEAD, BEHIND, COLLECTING

if TYPE_CHECKING:
    from .figures import Results


def money(amount: Decimal, currency: str) -> str:
    """``MYR 1,254``: whole units in sentences (the figures and the export keep the cents)."""
    whole = Decimal(amount).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return f"{currency} {whole:,}".strip()


def _percent(won: int, n: int) -> str:
    return f"{round(100 * won / n) if n else 0}\u00a0%"  # (no line break before the sign)


def _members_between(low: float, high: float) -> str:
    """ "between 22 and 56 more", "between 3 and 10 fewer", "between 3 fewer and 16 more"."""
    lo, hi = round(low), round(high)
    if lo >= 0:
        return f"between {lo} and {hi} more"
    if hi <= 0:
        return f"between {-hi} and {-lo} fewer"
    return f"between {-lo} fewer and {hi} more"


def chance(probability: float | None) -> str:
    """A posterior probability as people say it: never "100 %" nor "0 %" from a sample."""
    if probability is None:
        return "not known yet"
    if probability > 0.99:
        return "over 99\u00a0%"
    if probability < 0.01:
        return "under 1\u00a0%"
    return f"{round(100 * probability)}\u00a0%"


def _about_members(x: float) -> str:
    n = round(x)
    return f"about {n} more" if n > 0 else f"about {-n} fewer" if n < 0 else "about none"


def _money_signed(amount: Decimal, currency: str) -> str:
    return f"{money(abs(amount), currency)} {'less' if amount < 0 else 'more'}"


def _money_between(low: Decimal, high: Decimal, currency: str) -> str:
    if low >= 0:
        return f"between {money(low, currency)} and {money(high, currency)} more"
    if high <= 0:
        return f"between {money(-high, currency)} and {money(-low, currency)} less"
    return f"between {money(-low, currency)} less and {money(high, currency)} more"


def _points(x: float) -> str:
    return f"{100 * x:+.1f} points".replace("-", "−")


def comparison_rows(results: Results) -> list[dict]:
    """The disclosure's detail, one block per comparison, in words and the business's currency."""
    currency = results.campaign.business.currency
    rows = []
    named = [("lift", "The campaign against the control group", results.lift, "messaged", "held back", "the campaign")]
    named += [(f"lift-{arm}", f"Variant {arm.upper()} against the control group", c, f"sent {arm.upper()}",
               "held back", f"variant {arm.upper()}") for arm, c in results.lift_by_arm.items()]  # fmt: skip
    named += [("ab", "Variant B against variant A", results.ab, "sent B", "sent A", "variant B")]
    for key, title, c, b, a, who in named:
        if c is None:
            continue
        rows.append({
            "key": key, "title": title, "c": c, "b": b, "a": a, "who": who,
            "rate_a": _percent(c.won_a, c.n_a), "rate_b": _percent(c.won_b, c.n_b),
            "difference": _points(c.difference), "interval": f"{_points(c.ci_low)} to {_points(c.ci_high)}",
            "chance": chance(c.probability), "extra": _about_members(c.incremental),
            "extra_range": _members_between(c.incremental_low, c.incremental_high),
            "worth": _money_signed(c.incremental_revenue, currency),
            "worth_range": _money_between(c.incremental_revenue_low, c.incremental_revenue_high, currency),
        })  # fmt: skip
    return rows


def results_summary(results: Results) -> str:
    """The one sentence a café owner reads first: who came back, against whom, and what the
    campaign probably brought — worded by the state, never claiming more than the interval."""
    campaign, t = results.campaign, results.treatment
    currency = campaign.business.currency
    days = campaign.attribution_days
    if not results.started:
        if t.members:
            return ngettext(
                "%(n)d member has been picked; nothing has gone out yet, so there is nothing to measure.",
                "%(n)d members have been picked; nothing has gone out yet, so there is nothing to measure.",
                t.members,
            ) % {"n": t.members}
        return "Nothing has gone out yet: results appear after the first messages are sent."
    first = ngettext(
        "%(won)d of %(n)d member picked for a message came back within %(days)d days (%(rate)s)",
        "%(won)d of %(n)d members picked for a message came back within %(days)d days (%(rate)s)",
        t.members,
    ) % {"won": t.won, "n": t.members, "days": days, "rate": _percent(t.won, t.members)}
    waiting = t.waiting + results.arms[Arm.CONTROL].waiting
    still = (
        " "
        + ngettext(
            "For %(n)d member picked in the last %(days)d days the window is still open, so these figures can still grow.",
            "For %(n)d members picked in the last %(days)d days the window is still open, so these figures can still grow.",
            waiting,
        )
        % {"n": waiting, "days": days}
        if waiting
        else ""
    )
    lift = results.lift
    if lift is None:
        return f"{first}. Without a control group there is no telling how many would have come back anyway.{still}"
    c = results.arms[Arm.CONTROL]
    held = ngettext(
        "of the %(n)d held back, %(won)d came back (%(rate)s)",
        "of the %(n)d held back, %(won)d came back (%(rate)s)",
        c.members,
    ) % {"n": c.members, "won": c.won, "rate": _percent(c.won, c.members)}
    opening = f"{first}; {held}.{still}"
    extra = round(lift.incremental)
    worth = money(lift.incremental_revenue, currency)
    if lift.state == COLLECTING:
        if lift.needed_a or lift.needed_b:
            parts = []
            if lift.needed_a:
                parts.append(ngettext("%(n)d more member held back", "%(n)d more members held back",
                                      lift.needed_a) % {"n": lift.needed_a})  # fmt: skip
            if lift.needed_b:
                parts.append(ngettext("%(n)d more member messaged", "%(n)d more members messaged",
                                      lift.needed_b) % {"n": lift.needed_b})  # fmt: skip
            need = " and ".join(parts)
        else:
            need = ngettext("%(n)d more member to come back", "%(n)d more members to come back",
                            lift.needed_returns) % {"n": lift.needed_returns}  # fmt: skip
        return f"{opening} Too early to say what the campaign brought: that needs at least {need}."
    if lift.state == AHEAD:
        return f"{opening} " + ngettext(
            "The campaign probably brought back about %(n)d extra customer (%(range)s than without it), worth about %(worth)s.",
            "The campaign probably brought back about %(n)d extra customers (%(range)s than without it), worth about %(worth)s.",
            extra,
        ) % {"n": extra, "range": _members_between(lift.incremental_low, lift.incremental_high), "worth": worth}
    if lift.state == BEHIND:
        fewer = -extra
        return f"{opening} " + ngettext(
            "Fewer came back than without the campaign: about %(n)d member fewer (%(range)s). Try another message or reward.",
            "Fewer came back than without the campaign: about %(n)d members fewer (%(range)s). Try another message or reward.",
            fewer,
        ) % {"n": fewer, "range": _members_between(lift.incremental_low, lift.incremental_high)}
    return (
        f"{opening} The difference could still be chance: the campaign brought back "
        f"{_members_between(lift.incremental_low, lift.incremental_high)} members than would have come back without it."
    )
