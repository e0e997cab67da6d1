"""Scoring an evaluation: per task, per dialogue, and over K trials.

- A **task** passes in a trial when its TaskOutcome succeeded: every check passed (the
  full-state check for a task that writes, its SQL assertions, every value the agent had
  to tell the user grounded in a tool result; see ``simulator.dialogue.verify``).
- A **dialogue** (a scenario in one trial) passes by the one rule every summary uses
  (``simulator.dialogue.verify.dialogue_succeeded``): every task passed, the final state
  matched the gold replay, and the user ended it done. A crash, a hang, a protocol error,
  a timeout, a user who gave up, running out of turns all fail it.
- Over K trials, for a unit (a scenario, or a task) with ``n`` trials of which ``c``
  passed, as in tau-bench:

  ``pass^k = C(c, k) / C(n, k)``, the chance that k trials drawn without replacement
  *all* pass (with ``n == k`` simply "all k passed"), and
  ``pass@k = 1 - C(n - c, k) / C(n, k)``, the chance that *at least one* passes.

  The score is the mean over units. Its confidence interval is the exact binomial
  (Clopper–Pearson) interval of the sum of the per-unit estimates over the number of
  units (``simulator.eval.intervals``): units are the independent draws (their trials
  stay together), it keeps its coverage for few units and at 0 and 1 (one passing
  dialogue gives [0.025, 1]) and needs no resampling. Success rates over all trials also
  get a Wilson interval (trials counted as independent).

Plus: turns, tool calls, tool error and invalid-argument rates, and tokens and cost of
the agent when it reported them (ProviderCall events with role ``agent``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from math import comb
from statistics import NormalDist

import msgspec
from rich.table import Table

from schemas import DialogueRecord, ProviderCall
from simulator.dialogue.verify import dialogue_succeeded
from simulator.eval.intervals import mean_interval
from simulator.run.config import record_failed
from simulator.summary import Stat
from simulator.summary import done_but_failed as summary_done_but_failed

__all__ = [
    "TRIAL_SEPARATOR",
    "EvalResults",
    "EvalSummary",
    "Failure",
    "Interval",
    "ScenarioScore",
    "TaskScore",
    "dialogue_passed",
    "interval_of_mean",
    "pass_at_k",
    "pass_hat_k",
    "render_results",
    "score",
    "split_trial_id",
    "trial_id",
    "wilson",
]

#: Joins a scenario id and its trial number into the id of that trial's dialogue.
TRIAL_SEPARATOR = "~t"


def trial_id(scenario_id: str, trial: int) -> str:
    """The dialogue id of trial ``trial`` (1-based) of a scenario."""
    return f"{scenario_id}{TRIAL_SEPARATOR}{trial}"


def split_trial_id(dialogue_id: str) -> tuple[str, int]:
    """``(scenario id, trial)`` of a dialogue id; an id without a trial suffix is trial 1."""
    base, sep, number = dialogue_id.rpartition(TRIAL_SEPARATOR)
    if sep and base and number.isdigit():
        return base, int(number)
    return dialogue_id, 1


# --------------------------------------------------------------------------- estimators


def pass_hat_k(n: int, c: int, k: int) -> float:
    """tau-bench's pass^k of one unit: C(c, k) / C(n, k). Raises ValueError unless 1 <= k <= n and 0 <= c <= n."""
    _check(n, c, k)
    return comb(c, k) / comb(n, k)


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one unit: 1 - C(n - c, k) / C(n, k). Raises ValueError like ``pass_hat_k``."""
    _check(n, c, k)
    return 1.0 - comb(n - c, k) / comb(n, k)


def _check(n: int, c: int, k: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of trials ({n}), got {k}")
    if not 0 <= c <= n:
        raise ValueError(f"passed trials must be between 0 and {n}, got {c}")


class Interval(msgspec.Struct, frozen=True):
    """An estimate and its confidence interval (fractions, 0..1)."""

    value: float
    low: float
    high: float


def wilson(successes: int, total: int, *, confidence: float = 0.95) -> Interval:
    """The proportion ``successes / total`` with its Wilson score interval."""
    if total <= 0:
        return Interval(0.0, 0.0, 0.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return Interval(p, low, high)


def interval_of_mean(values: Sequence[float], *, confidence: float = 0.95) -> Interval:
    """The mean of per-unit estimates in [0, 1] with its interval (``simulator.eval.intervals``)."""
    value, low, high = mean_interval(values, confidence=confidence)
    return Interval(value, low, high)


# --------------------------------------------------------------------------- results


class TaskScore(msgspec.Struct, kw_only=True):
    """One task of one scenario over its trials."""

    task_id: str
    trials: int
    passed: int
    pass_hat: dict[str, float]
    #: How often each assertion failed / each value was not said, over the trials.
    failed_assertions: dict[str, int] = {}
    missing_values: dict[str, int] = {}


class Failure(msgspec.Struct, kw_only=True):
    """A dialogue that broke (crash, hang, protocol error, timeout) and why."""

    dialogue_id: str
    reason: str
    detail: str


class ScenarioScore(msgspec.Struct, kw_only=True):
    """One scenario over its trials: each trial's dialogue passed or not."""

    scenario_id: str
    environment_id: str
    domain: str
    trials: int
    passed: int
    pass_hat: dict[str, float]
    pass_at: dict[str, float]
    terminations: dict[str, int]
    tasks: list[TaskScore]


class EvalSummary(msgspec.Struct, kw_only=True):
    """The evaluation as a whole. ``pass_hat``/``pass_at`` are keyed by k ("1".."K")."""

    agent: str
    user: str
    seed: int
    trials: int
    scenarios: int
    dialogues: int
    tasks: int
    confidence: float
    dialogue_pass_hat: dict[str, Interval]
    dialogue_pass_at: dict[str, Interval]
    task_pass_hat: dict[str, Interval]
    task_pass_at: dict[str, Interval]
    #: Over all trials (Wilson intervals).
    dialogue_success: Interval
    task_success: Interval
    turns: Stat
    tool_calls: int
    tool_calls_per_dialogue: float
    tool_error_rate: float
    invalid_argument_rate: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    terminations: dict[str, int]
    failed: int
    failures: list[Failure]
    #: Dialogues the user ended done (``user_done``) that still failed verification: what the
    #: user could not see (a collateral write, a value never grounded in a tool result).
    done_but_failed: int = 0
    #: The agent was given the user's words only (``--text-only``), not also the offline
    #: user's dialogue acts. False in results written before it was recorded.
    text_only: bool = False


class EvalResults(msgspec.Struct, kw_only=True):
    summary: EvalSummary
    scenarios: list[ScenarioScore]
    #: The sanity floors run beside the agent (``--floors``), by agent spec.
    floors: dict[str, EvalSummary] = {}


def dialogue_passed(record: DialogueRecord) -> bool:
    """Whether a dialogue passed, by the rule every summary uses (``dialogue_succeeded``): every
    task passed, the state matched and the user was done (a dialogue that broke never is)."""
    return dialogue_succeeded(record.termination, record.outcomes, record.state)


def score(
    records: Iterable[DialogueRecord],
    *,
    trials: int,
    seed: int,
    confidence: float = 0.95,
    agent: str = "",
    user: str = "",
    text_only: bool = False,
) -> EvalResults:
    """Score the records of an evaluation (every trial of every scenario).

    pass^k and pass@k are given for k = 1..``trials``; a unit with fewer than k trials
    recorded is left out of that k's mean. ``text_only`` says whether the agent was
    given the user's words only (it is recorded in the summary, not inferred).
    """
    by_scenario: dict[str, list[DialogueRecord]] = {}
    for record in records:
        base, _ = split_trial_id(record.id)
        by_scenario.setdefault(base, []).append(record)

    scenario_scores: list[ScenarioScore] = []
    unit_dialogues: list[tuple[int, int]] = []
    unit_tasks: list[tuple[int, int]] = []
    failures: list[Failure] = []
    terminations: Counter[str] = Counter()
    turns: list[int] = []
    tool_calls = tool_errors = invalid = 0
    tokens_in = tokens_out = 0
    cost = 0.0
    usage_known = cost_known = False
    task_trials = task_passes = 0
    done_but_failed = 0

    for base, group in sorted(by_scenario.items()):
        group.sort(key=lambda r: split_trial_id(r.id)[1])
        first = group[0].scenario
        passed = sum(dialogue_passed(r) for r in group)
        unit_dialogues.append((len(group), passed))
        task_runs: dict[str, list[tuple[bool, list[str], list[str]]]] = {t.id: [] for t in first.tasks}
        ends: Counter[str] = Counter()
        for record in group:
            done_but_failed += summary_done_but_failed(record, dialogue_passed(record))
            ends[record.termination.value] += 1
            terminations[record.termination.value] += 1
            if record_failed(record):
                failures.append(
                    Failure(dialogue_id=record.id, reason=record.termination.value, detail=record.error or "")
                )
            for outcome in record.outcomes:
                task_runs.setdefault(outcome.task_id, []).append(
                    (outcome.success, outcome.failed_assertions, outcome.missing_values)
                )
            m = record.metrics
            turns.append(m.turns)
            tool_calls += m.tool_calls
            tool_errors += m.tool_errors
            invalid += m.invalid_arguments
            for event in record.events:
                if isinstance(event, ProviderCall) and event.role == "agent":
                    usage_known = True
                    tokens_in += event.input_tokens
                    tokens_out += event.output_tokens
                    if event.cost_usd is not None:
                        cost_known = True
                        cost += event.cost_usd
        task_scores = []
        for task_id, runs in task_runs.items():
            n, c = len(runs), sum(ok for ok, _, _ in runs)
            task_trials += n
            task_passes += c
            if n:
                unit_tasks.append((n, c))
            task_scores.append(
                TaskScore(
                    task_id=task_id,
                    trials=n,
                    passed=c,
                    pass_hat={str(k): pass_hat_k(n, c, k) for k in range(1, min(n, trials) + 1)},
                    failed_assertions=dict(sorted(Counter(a for _, fa, _ in runs for a in fa).items())),
                    missing_values=dict(sorted(Counter(v for _, _, mv in runs for v in mv).items())),
                )
            )
        n = len(group)
        scenario_scores.append(
            ScenarioScore(
                scenario_id=base,
                environment_id=first.environment_id,
                domain=first.domain,
                trials=n,
                passed=passed,
                pass_hat={str(k): pass_hat_k(n, passed, k) for k in range(1, min(n, trials) + 1)},
                pass_at={str(k): pass_at_k(n, passed, k) for k in range(1, min(n, trials) + 1)},
                terminations=dict(sorted(ends.items())),
                tasks=task_scores,
            )
        )

    scenario_scores.sort(key=lambda sc: sc.scenario_id)
    failures.sort(key=lambda f: split_trial_id(f.dialogue_id))
    dialogues = sum(n for n, _ in unit_dialogues)
    summary = EvalSummary(
        agent=agent,
        user=user,
        seed=seed,
        trials=trials,
        scenarios=len(scenario_scores),
        dialogues=dialogues,
        tasks=len(unit_tasks),
        confidence=confidence,
        dialogue_pass_hat=_over_units(unit_dialogues, trials, pass_hat_k, seed, confidence),
        dialogue_pass_at=_over_units(unit_dialogues, trials, pass_at_k, seed, confidence),
        task_pass_hat=_over_units(unit_tasks, trials, pass_hat_k, seed, confidence),
        task_pass_at=_over_units(unit_tasks, trials, pass_at_k, seed, confidence),
        dialogue_success=wilson(sum(c for _, c in unit_dialogues), dialogues, confidence=confidence),
        task_success=wilson(task_passes, task_trials, confidence=confidence),
        turns=Stat(mean=sum(turns) / len(turns) if turns else 0.0, max=max(turns, default=0)),
        tool_calls=tool_calls,
        tool_calls_per_dialogue=tool_calls / dialogues if dialogues else 0.0,
        tool_error_rate=tool_errors / tool_calls if tool_calls else 0.0,
        invalid_argument_rate=invalid / tool_calls if tool_calls else 0.0,
        input_tokens=tokens_in if usage_known else None,
        output_tokens=tokens_out if usage_known else None,
        cost_usd=round(cost, 6) if cost_known else None,
        terminations=dict(sorted(terminations.items())),
        failed=len(failures),
        failures=failures,
        done_but_failed=done_but_failed,
        text_only=text_only,
    )
    return EvalResults(summary=summary, scenarios=scenario_scores)


def _over_units(
    units: list[tuple[int, int]],
    trials: int,
    estimator: Callable[[int, int, int], float],
    seed: int,
    confidence: float,
) -> dict[str, Interval]:
    out: dict[str, Interval] = {}
    for k in range(1, trials + 1):
        values = [estimator(n, c, k) for n, c in units if n >= k]
        if values:
            out[str(k)] = interval_of_mean(values, confidence=confidence)
    return out


# --------------------------------------------------------------------------- display


def _interval(i: Interval) -> str:
    return f"{i.value:.3f} [{i.low:.3f}, {i.high:.3f}]"


def render_results(results: EvalResults, *, title: str = "Evaluation") -> list[Table]:
    """Rich tables: the summary (pass^k with intervals and the other metrics, each sanity floor
    in a column of its own next to the agent's), then per scenario."""
    s = results.summary
    floors = list(results.floors.items())
    pct = f"{s.confidence * 100:g}%"
    table = Table(title=f"{title}: {s.agent}", title_justify="left")
    table.add_column("metric")
    table.add_column(f"value [{pct} CI]", justify="right")
    for spec, _ in floors:
        table.add_column(f"floor {spec.partition(':')[2] or spec}", justify="right")

    def row(label: str, cell: Callable[[EvalSummary], str], *, floored: bool = True) -> None:
        table.add_row(label, cell(s), *[(cell(f) if floored else "") for _, f in floors])

    def pick(attr: str, k: str) -> Callable[[EvalSummary], str]:
        def cell(summary: EvalSummary) -> str:
            interval = getattr(summary, attr).get(k)
            return "-" if interval is None else _interval(interval)

        return cell

    row("scenarios x trials", lambda x: f"{x.scenarios} x {x.trials} = {x.dialogues} dialogues, {x.tasks} tasks")
    row("agent given", lambda x: "user's words only" if x.text_only else "user's words and dialogue acts")
    for k in s.dialogue_pass_hat:
        row(f"dialogue pass^{k}", pick("dialogue_pass_hat", k))
    if s.trials > 1:
        row(f"dialogue pass@{s.trials}", pick("dialogue_pass_at", str(s.trials)))
    for k in s.task_pass_hat:
        row(f"task pass^{k}", pick("task_pass_hat", k))
    row("dialogue success, all trials", lambda x: _interval(x.dialogue_success))
    row("task success, all trials", lambda x: _interval(x.task_success))
    row("turns, mean (max)", lambda x: f"{x.turns.mean:.2f} ({x.turns.max:g})")
    row("tool calls (per dialogue)", lambda x: f"{x.tool_calls} ({x.tool_calls_per_dialogue:.2f})")
    row("tool error rate", lambda x: f"{x.tool_error_rate * 100:.1f}%")
    row("invalid-argument rate", lambda x: f"{x.invalid_argument_rate * 100:.1f}%")
    tokens = "-" if s.input_tokens is None else f"{s.input_tokens} / {s.output_tokens}"
    row("agent tokens in / out", lambda _: tokens, floored=False)
    row("agent cost (USD)", lambda _: "-" if s.cost_usd is None else f"{s.cost_usd:.4f}", floored=False)
    row("terminations", lambda x: "\n".join(f"{k} {v}" for k, v in x.terminations.items()) or "-")
    row("user_done, failed verification", lambda x: str(x.done_but_failed))
    row("failed dialogues", lambda x: str(x.failed))

    per = Table(title="Per scenario", title_justify="left")
    per.add_column("scenario")
    per.add_column("domain")
    per.add_column("passed", justify="right")
    per.add_column(f"pass^{s.trials}", justify="right")
    per.add_column("tasks passed (per task)", justify="right")
    per.add_column("endings")
    for sc in results.scenarios:
        top = sc.pass_hat.get(str(s.trials))
        per.add_row(
            sc.scenario_id,
            sc.domain,
            f"{sc.passed}/{sc.trials}",
            "-" if top is None else f"{top:.3f}",
            " ".join(f"{t.passed}/{t.trials}" for t in sc.tasks),
            ", ".join(f"{k} {v}" for k, v in sc.terminations.items()),
        )
    return [table, per]
