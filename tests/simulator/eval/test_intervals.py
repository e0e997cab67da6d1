"""The pass^k and pass@k intervals: exact binomial arithmetic, the extremes, and their coverage
shown by simulation (seeded) for benchmarks of 20 to 200 tasks and k from 1 to 4."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from simulator.eval.intervals import beta_cdf, beta_quantile, clopper_pearson, mean_interval
from simulator.eval.scoring import pass_at_k, pass_hat_k


def test_the_beta_functions_agree_with_known_values() -> None:
    assert beta_cdf(0.4, 2, 3) == pytest.approx(0.5248, abs=1e-12)
    assert beta_quantile(0.5248, 2, 3) == pytest.approx(0.4, abs=1e-9)
    assert beta_cdf(0.3, 1, 1) == pytest.approx(0.3)
    rng = random.Random(3)
    for _ in range(300):
        a, b, q = rng.uniform(0.05, 250), rng.uniform(0.5, 250), rng.random()
        assert beta_cdf(beta_quantile(q, a, b), a, b) == pytest.approx(q, abs=1e-9)


def test_clopper_pearson_known_values_and_the_extremes() -> None:
    low, high = clopper_pearson(5, 10)
    assert low == pytest.approx(0.18709, abs=1e-5) and high == pytest.approx(0.81291, abs=1e-5)
    assert clopper_pearson(1, 1) == (pytest.approx(0.025), 1.0)  # one passing dialogue
    assert clopper_pearson(0, 6) == (0.0, pytest.approx(1 - 0.025 ** (1 / 6)))  # six failures
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    value, low, high = mean_interval([1.0])
    assert value == 1.0 and low < 0.5 and high == 1.0
    value, low, high = mean_interval([0.0] * 6)
    assert value == 0.0 and low == 0.0 and 0.4 < high < 0.5
    # Narrower with more units, and it never collapses to zero width.
    assert mean_interval([1.0] * 200)[1] > mean_interval([1.0] * 20)[1] > mean_interval([1.0] * 2)[1]
    assert all(lo < hi for _, lo, hi in (mean_interval([x] * n) for x in (0.0, 0.5, 1.0) for n in (1, 5, 50)))


# --------------------------------------------------------------------------- coverage by simulation


@dataclass(frozen=True)
class Difficulty:
    """How hard a benchmark's tasks are: draws a task's chance to pass, and knows the true
    population pass^k = E[p^k] and pass@k = 1 - E[(1 - p)^k] exactly."""

    name: str
    draw: Callable[[random.Random], float]
    moment: Callable[[int], float]  # E[p^k]
    tail: Callable[[int], float]  # E[(1 - p)^k]


def _beta(a: float, b: float) -> Difficulty:
    def moment(k: int) -> float:
        return math.exp(math.lgamma(a + k) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(a + b + k))

    def tail(k: int) -> float:
        return math.exp(math.lgamma(b + k) + math.lgamma(a + b) - math.lgamma(b) - math.lgamma(a + b + k))

    return Difficulty(f"beta({a:g},{b:g})", lambda r: r.betavariate(a, b), moment, tail)


def _mixture(name: str, parts: list[tuple[float, float]]) -> Difficulty:
    """Tasks of a few fixed chances: ``parts`` is (share, chance)."""

    def draw(rng: random.Random) -> float:
        u = rng.random()
        for share, chance in parts:
            if u < share:
                return chance
            u -= share
        return parts[-1][1]

    return Difficulty(
        name,
        draw,
        lambda k: sum(share * chance**k for share, chance in parts),
        lambda k: sum(share * (1 - chance) ** k for share, chance in parts),
    )


DIFFICULTIES = [
    _beta(0.5, 0.5),  # many tasks nearly always or nearly never passed
    _mixture("strong agent", [(0.85, 1.0), (0.1, 0.7), (0.05, 0.2)]),
    _mixture("floor-like", [(0.95, 0.0), (0.05, 0.2)]),
    _mixture("perfect", [(1.0, 1.0)]),
    _mixture("coin", [(1.0, 0.5)]),
]
TRIALS = 4
REPLICATIONS = 200


def _coverage(difficulty: Difficulty, tasks: int, rng: random.Random) -> dict[str, float]:
    estimators = [("pass^", pass_hat_k, k) for k in range(1, TRIALS + 1)]
    estimators += [("pass@", pass_at_k, k) for k in range(2, TRIALS + 1)]
    truth = {
        f"{name}{k}": difficulty.moment(k) if name == "pass^" else 1 - difficulty.tail(k) for name, _, k in estimators
    }
    covered = dict.fromkeys(truth, 0)
    for _ in range(REPLICATIONS):
        units = []
        for _ in range(tasks):
            p = difficulty.draw(rng)
            units.append(sum(rng.random() < p for _ in range(TRIALS)))
        for name, estimator, k in estimators:
            _, low, high = mean_interval([estimator(TRIALS, c, k) for c in units])
            key = f"{name}{k}"
            covered[key] += low - 1e-12 <= truth[key] <= high + 1e-12
    return {key: n / REPLICATIONS for key, n in covered.items()}


@pytest.mark.slow
def test_95_percent_intervals_cover_the_true_value_at_least_93_percent_of_the_time() -> None:
    rng = random.Random(20260412)
    results = {}
    for difficulty in DIFFICULTIES:
        for tasks in (20, 60, 200):
            for key, coverage in _coverage(difficulty, tasks, rng).items():
                results[(difficulty.name, tasks, key)] = coverage
    low = {where: c for where, c in results.items() if c < 0.93}
    assert not low, low
    assert sum(results.values()) / len(results) >= 0.95
    assert len(results) == len(DIFFICULTIES) * 3 * 7  # k = 1..4 for pass^k, 2..4 for pass@k
