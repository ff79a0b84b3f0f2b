"""The statistics behind the report's claims, for outcomes that are mostly bimodal (a run tracks every ball,
or a map misses one): success rates with Wilson intervals, medians with bootstrap intervals, exact tests on
paired and unpaired successes, a rank test for precision, Holm's correction, and power.

scipy supplies the distributions and the textbook tests (binomial, Fisher, Mann-Whitney): well-kept code
for exactly the tail sums that are easy to get subtly wrong by hand.
"""
import math

import numpy as np
from scipy import stats as sps


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a success rate k/n (sensible at 0/n and n/n, unlike the normal interval)."""
    if n == 0:
        return 0.0, 1.0
    z = sps.norm.ppf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = centre - half, centre + half
    return (0.0 if k == 0 else max(0.0, float(low))), (1.0 if k == n else min(1.0, float(high)))


def bootstrap_median(values, confidence: float = 0.95, resamples: int = 10000, seed: int = 0) -> tuple:
    """(median, low, high): the sample median and its percentile-bootstrap interval (seeded: the same values
    give the same interval). NaN for no values."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, len(values)), replace=True), axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(values)), float(low), float(high)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar test: paired successes on the same seeds, from the discordant seeds (a success
    for one arm only). Under no difference each discordant seed favours either arm with probability 1/2."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    return float(sps.binomtest(only_first, discordant, 0.5).pvalue)


def fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of two success rates on different seeds."""
    return float(sps.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue)


def mann_whitney(x, y) -> float:
    """Two-sided Mann-Whitney U test (exact for small samples without ties); NaN when a side is empty."""
    if not len(x) or not len(y):
        return math.nan
    return float(sps.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def wilcoxon_signed_rank(x, y) -> float:
    """Two-sided Wilcoxon signed-rank test of paired values (the same seeds under two arms): exact for small
    samples without ties; 1 when every pair is equal, NaN for no pairs."""
    diff = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    if not len(diff):
        return math.nan
    if not diff.any():
        return 1.0
    return float(sps.wilcoxon(diff, alternative="two-sided").pvalue)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error at alpha: reject where adjusted <= alpha). NaN
    entries (tests that could not run) are left out of the family and stay NaN."""
    p = np.asarray(pvalues, dtype=float)
    live = np.flatnonzero(~np.isnan(p))
    adjusted = np.full(len(p), math.nan)
    running = 0.0
    for rank, i in enumerate(live[np.argsort(p[live], kind="stable")]):
        running = max(running, min(1.0, (len(live) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def _fisher_rejects(n: int, alpha: float) -> np.ndarray:
    """(n + 1, n + 1) bool: the outcomes (successes of each arm of n seeds) Fisher's test rejects at alpha."""
    return np.array([[fisher(a, n, b, n) <= alpha for b in range(n + 1)] for a in range(n + 1)])


def fisher_power(rate1: float, rate2: float, n: int, alpha: float, rejects: np.ndarray | None = None) -> float:
    """The probability that Fisher's test at alpha separates two arms of n seeds each with these success
    rates, summed exactly over both arms' binomial outcomes."""
    rejects = _fisher_rejects(n, alpha) if rejects is None else rejects
    ks = np.arange(n + 1)
    return float(sps.binom.pmf(ks, n, rate1) @ rejects @ sps.binom.pmf(ks, n, rate2))


def smallest_detectable_drop(baseline: float, n: int, alpha: float, power: float = 0.8,
                             step: float = 0.01) -> float:
    """The smallest drop in success rate from `baseline` that n seeds per arm detect with this power
    (Fisher's test at alpha, a conservative stand-in for the paired test), to `step`."""
    rejects = _fisher_rejects(n, alpha)
    drop = step
    while drop < baseline:
        if fisher_power(baseline, baseline - drop, n, alpha, rejects) >= power:
            return round(drop, 10)
        drop += step
    return baseline


def threshold_range(holds, thresholds, registered: float) -> tuple[float, float] | None:
    """How far a verdict reaches: over an ascending grid of thresholds that contains the registered one, the
    span of consecutive thresholds around it at which `holds(threshold)` is true; None if it fails there."""
    thresholds = [float(x) for x in thresholds]
    at = thresholds.index(float(registered))
    flags = [bool(holds(x)) for x in thresholds]
    if not flags[at]:
        return None
    low = high = at
    while low > 0 and flags[low - 1]:
        low -= 1
    while high + 1 < len(flags) and flags[high + 1]:
        high += 1
    return thresholds[low], thresholds[high]
