"""How sure each finding is: intervals, nulls, corrections and three-valued verdicts. Pure numpy + scipy.

Every sentence on the pages that states a result is chosen from these numbers, so each function returns
the number *and* the word it supports: a verdict is "holds", "does not hold" or "not settled"; a place
against a null is "above", "within" or "below"; an effect is measurable or not.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # every interval of this module, and the level of the Holm-corrected family
TAIL = 1 - CONFIDENCE  # outside the null's central 95 %: "above" past 1 - TAIL / 2, "below" under TAIL / 2
HOLDS, FAILS, UNSETTLED = "holds", "does not hold", "not settled"
ABOVE, WITHIN, BELOW = "above", "within", "below"


def clopper_pearson(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a binomial proportion: beta quantiles, never outside [0, 1]."""
    if trials == 0:
        return 0.0, 1.0
    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
    high = stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)


def three_valued(low: float, high: float, threshold: float) -> str:
    """A claim "the rate is at least `threshold`", judged on the interval [low, high] of the rate.

    Settled only when the whole interval lies on one side: a pass rate of 4 of 5 seeds (interval 28 %-99 %)
    cannot tell a rate of 80 % from one of 50 %, so it is "not settled", whatever its point estimate says.
    """
    if low >= threshold:
        return HOLDS
    if high < threshold:
        return FAILS
    return UNSETTLED


def pass_rate(passing: list[bool], threshold: float) -> dict:
    """Seeds passing a per-seed test, their 95 % Clopper-Pearson interval, and the three-valued verdict."""
    successes, trials = int(sum(passing)), len(passing)
    low, high = clopper_pearson(successes, trials)
    return {
        "seeds_passing": successes,
        "seeds": trials,
        "fraction_passing": successes / trials if trials else 0.0,
        "interval_low": low,
        "interval_high": high,
        "verdict": three_valued(low, high, threshold),
        "seeds_to_settle": seeds_to_settle(threshold),
    }


def seeds_to_settle(threshold: float, limit: int = 200) -> int | None:
    """The fewest seeds that, all passing, would settle a claim at `threshold` (None past `limit`)."""
    for n in range(1, limit + 1):
        if clopper_pearson(n, n)[0] >= threshold:
            return n
    return None


def null_place(value: float, null: np.ndarray, tail: float = TAIL) -> dict:
    """Where `value` sits in a Monte Carlo null: its percentile, that percentile's own 95 % interval (the
    null is a finite sample), and "above", "within" or "below" the null's central 95 %.

    "above" needs the whole interval of the percentile past 1 - tail/2, so a value that beats 97 % of 200
    rotations (interval 94 %-99 %) is "within": 200 draws cannot place it in the top 2.5 %.
    """
    null = np.asarray(null, dtype=np.float64)
    count = len(null)
    below_count = float(np.sum(null < value) + 0.5 * np.sum(null == value))  # ties count half
    percentile = below_count / count
    low, high = clopper_pearson(int(np.floor(below_count)), count)
    high = max(high, clopper_pearson(int(np.ceil(below_count)), count)[1])
    if low > 1 - tail / 2:
        side = ABOVE
    elif high < tail / 2:
        side = BELOW
    else:
        side = WITHIN
    return {"percentile": percentile, "low": low, "high": high, "rotations": count, "side": side}


def paired_drop(intact_correct: np.ndarray, ablated_correct: np.ndarray) -> dict:
    """The accuracy lost when a unit is ablated, with a 95 % interval paired over the same images.

    Only discordant images carry information: b lost (right before, wrong after), c gained. The drop is
    (b - c) / N; given b + c, b is binomial, so the exact Clopper-Pearson interval of b / (b + c) maps to
    an interval of the drop, and its excluding 0 is the exact McNemar test at the same level. With no
    discordant image the drop is exactly 0: no measurable effect.
    """
    intact_correct = np.asarray(intact_correct, dtype=bool)
    ablated_correct = np.asarray(ablated_correct, dtype=bool)
    n = len(intact_correct)
    lost = int(np.sum(intact_correct & ~ablated_correct))
    gained = int(np.sum(~intact_correct & ablated_correct))
    discordant = lost + gained
    if discordant == 0:
        low = high = 0.0
    else:
        p_low, p_high = clopper_pearson(lost, discordant)
        low, high = discordant / n * (2 * p_low - 1), discordant / n * (2 * p_high - 1)
    return {
        "drop": (lost - gained) / n,
        "low": low,
        "high": high,
        "lost": lost,
        "gained": gained,
        "measurable": bool(low > 0 or high < 0),
    }


def holm(p_values: dict[str, float | None], level: float = 1 - CONFIDENCE) -> dict[str, dict]:
    """Holm's step-down correction over a family of tests: each p-value adjusted and judged at `level`.

    Holm controls the chance of any false rejection in the family (like Bonferroni) without assuming
    the tests independent, and rejects at least as much as Bonferroni. Tests without a p-value (None:
    not computed on this run) are listed and left out of the family.
    """
    present = {name: p for name, p in p_values.items() if p is not None}
    order = sorted(present, key=lambda name: present[name])
    m = len(order)
    adjusted, running = {}, 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (m - rank) * present[name]))
        adjusted[name] = running
    return {
        name: {"p": p, "adjusted": adjusted.get(name), "significant": p is not None and adjusted[name] < level}
        for name, p in p_values.items()
    }


def bootstrap_mean(values: np.ndarray, seed: int = 0, resamples: int = 10000) -> dict:
    """Mean of per-seed values with a 95 % percentile bootstrap interval over seeds (the unit of replication)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        mean = float(values.mean()) if len(values) else 0.0
        return {"mean": mean, "low": mean, "high": mean, "n": int(len(values))}
    picks = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(values.mean()), "low": float(low), "high": float(high), "n": int(len(values))}


def side_of_zero(low: float, high: float) -> str:
    """ "above", "below" or "within" for an interval of a difference: does it exclude 0, and on which side."""
    if low > 0:
        return ABOVE
    if high < 0:
        return BELOW
    return WITHIN


def within_group_rank_correlation(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0, permutations: int = 10000
) -> dict | None:
    """Spearman rho over pooled points, with a permutation p-value that shuffles y only *within* each group
    and a 95 % bootstrap interval that resamples whole groups.

    Units of one network share its training run, so they are not independent draws: shuffling across
    networks would treat 50 units of 5 networks as 50 independent ones and overstate the evidence.
    None when either side is constant.
    """
    x, y, groups = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    rng = np.random.default_rng(seed)
    shuffled = np.tile(ry, (permutations, 1))
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        shuffled[:, members] = rng.permuted(shuffled[:, members], axis=1)
    xc = rx - rx.mean()
    yc = shuffled - shuffled.mean(axis=1, keepdims=True)
    null = (yc @ xc) / np.sqrt((xc**2).sum() * (yc**2).sum(axis=1))
    p = float((1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (1 + permutations))
    low, high = _group_bootstrap_rho(x, y, groups, rng)
    return {"rho": rho, "p": p, "low": low, "high": high, "n": int(len(x)), "groups": int(len(np.unique(groups)))}


def _group_bootstrap_rho(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, rng: np.random.Generator, resamples: int = 2000
) -> tuple[float | None, float | None]:
    """95 % percentile interval of Spearman rho when whole groups (networks) are resampled."""
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    values = []
    for _ in range(resamples):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(members), size=len(members))])
        if np.ptp(x[picked]) > 0 and np.ptp(y[picked]) > 0:
            values.append(stats.spearmanr(x[picked], y[picked]).statistic)
    if not values:  # every resample had a constant side: no interval (None, never NaN in the JSON)
        return None, None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def direction(correlation: dict | None, p_key: str = "p", level: float = 1 - CONFIDENCE) -> str:
    """ "positively", "negatively" or "no clear relation": the word a page may print for a correlation."""
    if correlation is None or correlation.get(p_key) is None or correlation[p_key] >= level:
        return "no clear relation"
    return "positively" if correlation["rho"] > 0 else "negatively"


def fisher_exact(passing_a: int, total_a: int, passing_b: int, total_b: int) -> float:
    """Two-sided p of Fisher's exact test that two pass rates (trained, untrained seeds) are equal."""
    table = [[passing_a, total_a - passing_a], [passing_b, total_b - passing_b]]
    return float(stats.fisher_exact(table).pvalue)
