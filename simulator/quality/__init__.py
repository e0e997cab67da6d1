"""How good a dataset is to train on: grounding, policy, depth, errors, language.

``dialogsim stats --quality DIR`` runs :func:`measure_quality` on any dataset directory,
offline or model-generated: the checks read the chat messages (and, when present, the
scenario and task boundaries) and never the offline brains' dialogue acts. The
environment files of the dataset give the rules (the environment's own, a built-in
pack's, or rules derived from its schema) and the database the policy checker replays
the writes on.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas import Environment
from schemas.errors import ConfigError, DialogsimError
from schemas.policy import Policy
from simulator.quality._checks import check_dialogue
from simulator.quality._language import GRAMMAR_RULES, grammar_hits, measure_language
from simulator.quality._policy_check import check_policy
from simulator.quality._view import DialogueView, readable, view_of

__all__ = [
    "GRAMMAR_RULES",
    "Distribution",
    "QualityReport",
    "SideLanguage",
    "grammar_hits",
    "measure_quality",
    "measure_views",
    "policy_for",
    "quality_rows",
    "read_views",
    "render_quality",
]


class Distribution(msgspec.Struct, frozen=True):
    """Mean and nearest-rank percentiles of a per-item count."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        s = sorted(values)

        def pct(p: float) -> float:
            return float(s[max(0, math.ceil(p * len(s)) - 1)])

        return cls(len(s), sum(s) / len(s), pct(0.5), pct(0.9), pct(0.99), float(s[0]), float(s[-1]))


class SideLanguage(msgspec.Struct, kw_only=True):
    sentences: int
    top20_share: float
    top_sentences: list[tuple[str, int]]
    sample_tokens: int
    distinct_1: float
    distinct_2: float
    grammar: dict[str, int]
    grammar_per_1000: float


class QualityReport(msgspec.Struct, kw_only=True):
    """The quality figures of a dataset. Rates and shares are fractions (0..1)."""

    dialogues: int
    tool_calls: int
    #: Calls with an argument value the user never said and no tool returned.
    ungrounded_call_rate: float
    ungrounded_argument_rate: float
    ungrounded_examples: list[str]
    #: Agent answers after a read that report a field the user's words never asked for.
    read_answers: int
    unasked_answer_rate: float
    unasked_examples: list[str]
    #: Dialogues the policy checker could check (an environment and rules were found).
    policy_checked: int
    writes: int
    unconfirmed_writes: int
    not_owned: int
    forbidden_changes: int
    refusals_expected: int
    refusals_missed: int
    policy_violations: int
    dialogues_with_violations: int
    policy_examples: list[str]
    #: Tool calls per tool-using user request.
    steps: Distribution
    steps_6_plus_share: float
    tasks: Distribution
    turns: Distribution
    #: Share of dialogues with at least one tool error.
    tool_error_dialogues: float
    #: Of all tool errors: reported accurately in the agent's next words; followed by a recovery.
    errors_reported: float
    errors_recovered: float
    #: Share of dialogues with a tool error where every error was reported and recovered from.
    error_recovery_dialogues: float
    user: SideLanguage
    agent: SideLanguage
    agent_closings_distinct: float
    agent_openings_distinct: float
    #: Mean words per user message by persona verbosity (when the scenarios say).
    persona_words: dict[str, float]


def _side(stats: Any) -> SideLanguage:
    return SideLanguage(
        sentences=stats.sentences,
        top20_share=stats.top20_share,
        top_sentences=stats.top_sentences,
        sample_tokens=stats.sample_tokens,
        distinct_1=stats.distinct_1,
        distinct_2=stats.distinct_2,
        grammar=stats.grammar,
        grammar_per_1000=stats.grammar_per_1000,
    )


def _rate(num: float, den: float) -> float:
    return num / den if den else 0.0


def read_views(directory: Path) -> tuple[list[DialogueView], dict[str, Environment]]:
    """The dialogues of a dataset directory (any record version) and its environments.

    A ``.jsonl`` file is read as chat-format lines (``{"messages": [...]}``) with no
    environments. Raises ConfigError when there is no dataset.
    """
    from simulator.run.dataset import DATASET_FILE, ENVIRONMENTS_DIR
    from toolservers.loader import load_environment

    path = directory if directory.is_file() else directory / DATASET_FILE
    if not path.is_file():
        raise ConfigError(f"{directory}: not a dataset directory (no {DATASET_FILE} in it)")
    views = []
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or not line.endswith(b"\n"):
                continue
            try:
                raw = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                raise ConfigError(f"{path}: line {number} is not JSON ({exc})") from None
            if not (isinstance(raw, dict) and readable(raw)):
                raise ConfigError(
                    f"{path}: line {number} holds no dialogue this reads (a dialogsim record, chat "
                    '"messages" in the OpenAI or Anthropic shape, or ShareGPT "conversations")'
                )
            views.append(view_of(raw))
    envs: dict[str, Environment] = {}
    env_dir = directory / ENVIRONMENTS_DIR
    if directory.is_dir() and env_dir.is_dir():
        for file in sorted(env_dir.glob("*.json")):
            try:
                env = load_environment(file)
            except DialogsimError:
                continue
            envs[env.id] = env
    return views, envs


def policy_for(env: Environment) -> Policy | None:
    """The rules ``env`` is held to: its own, its built-in pack's, or those its schema implies."""
    rules = getattr(env, "rules", None)
    if isinstance(rules, Policy):
        return rules
    from simulator.policy import derive_policy, load_policy_file
    from toolservers.database import open_database

    try:
        db = open_database(env.database)
    except DialogsimError:
        return None
    try:
        from simulator.domains import domain_names, pack_policy_path

        if env.id == env.domain and env.domain in domain_names():
            return load_policy_file(pack_policy_path(env.domain), db.query)
        return derive_policy(db.query)
    finally:
        db.close()


def measure_views(views: Iterable[DialogueView], environments: dict[str, Environment]) -> QualityReport:
    """Measure dialogues against their environments (by ``environment_id``; missing ones skip the policy checks)."""
    policies: dict[str, Policy | None] = {}
    n = calls = ungrounded_calls = arguments = ungrounded_args = 0
    read_answers = unasked = 0
    ungrounded_examples: list[str] = []
    unasked_examples: list[str] = []
    steps: list[int] = []
    tasks: list[int] = []
    turns: list[int] = []
    errors = reported = recovered = 0
    error_dialogues = recovered_dialogues = 0
    policy_checked = 0
    totals: Counter[str] = Counter()
    with_violations = 0
    policy_examples: list[str] = []
    user_texts: list[str] = []
    agent_texts: list[str] = []
    closings: list[str] = []
    openings: list[str] = []
    words_by_persona: dict[str, list[int]] = {}
    for view in views:
        n += 1
        env = environments.get(view.environment_id)
        told = "\n".join(p for p in (env.description, env.policy) if p) if env is not None else ""
        c = check_dialogue(view, told=told)
        calls += c.calls
        ungrounded_calls += c.ungrounded_calls
        arguments += c.arguments
        ungrounded_args += c.ungrounded_arguments
        if len(ungrounded_examples) < 8:
            ungrounded_examples += [f"{view.id}: {e}" for e in c.ungrounded_examples[:2]]
        read_answers += c.read_answers
        unasked += c.answers_with_unasked
        if len(unasked_examples) < 8:
            unasked_examples += [f"{view.id}: {e}" for e in c.unasked_examples[:2]]
        steps += c.steps
        tasks.append(view.tasks)
        turns.append(c.turns)
        errors += c.tool_errors
        reported += c.errors_reported
        recovered += c.errors_recovered
        if c.tool_errors:
            error_dialogues += 1
            if c.errors_reported == c.tool_errors and c.errors_recovered == c.tool_errors:
                recovered_dialogues += 1
        if env is not None:
            if env.id not in policies:
                policies[env.id] = policy_for(env)
            policy = policies[env.id]
            if policy is not None:
                policy_checked += 1
                found = check_policy(view, env, policy)
                totals.update(
                    writes=found.writes,
                    unconfirmed=found.unconfirmed,
                    not_owned=found.not_owned,
                    forbidden=found.forbidden,
                    refusals_expected=found.refusals_expected,
                    refusals_missed=found.refusals_missed,
                )
                if found.violations:
                    with_violations += 1
                if len(policy_examples) < 8:
                    policy_examples += [f"{view.id}: {e}" for e in found.examples[:2]]
        users = [m.text for m in view.messages if m.role == "user" and m.text]
        agents = [m.text for m in view.messages if m.role == "assistant" and m.text]
        user_texts += users
        agent_texts += agents
        if agents:
            closings.append(" ".join(agents[-1].split()))
            openings.append(" ".join(agents[0].split()))
        if view.verbosity:
            words_by_persona.setdefault(view.verbosity, []).extend(len(t.split()) for t in users)
    language = measure_language({"user": user_texts, "agent": agent_texts})
    violations = sum(totals[k] for k in ("unconfirmed", "not_owned", "forbidden", "refusals_missed"))
    return QualityReport(
        dialogues=n,
        tool_calls=calls,
        ungrounded_call_rate=_rate(ungrounded_calls, calls),
        ungrounded_argument_rate=_rate(ungrounded_args, arguments),
        ungrounded_examples=ungrounded_examples[:8],
        read_answers=read_answers,
        unasked_answer_rate=_rate(unasked, read_answers),
        unasked_examples=unasked_examples[:8],
        policy_checked=policy_checked,
        writes=totals["writes"],
        unconfirmed_writes=totals["unconfirmed"],
        not_owned=totals["not_owned"],
        forbidden_changes=totals["forbidden"],
        refusals_expected=totals["refusals_expected"],
        refusals_missed=totals["refusals_missed"],
        policy_violations=violations,
        dialogues_with_violations=with_violations,
        policy_examples=policy_examples[:8],
        steps=Distribution.of(steps),
        steps_6_plus_share=_rate(sum(1 for s in steps if s >= 6), len(steps)),
        tasks=Distribution.of(tasks),
        turns=Distribution.of(turns),
        tool_error_dialogues=_rate(error_dialogues, n),
        errors_reported=_rate(reported, errors),
        errors_recovered=_rate(recovered, errors),
        error_recovery_dialogues=_rate(recovered_dialogues, n),
        user=_side(language["user"]),
        agent=_side(language["agent"]),
        agent_closings_distinct=_rate(len(set(closings)), len(closings)),
        agent_openings_distinct=_rate(len(set(openings)), len(openings)),
        persona_words={k: sum(v) / len(v) for k, v in sorted(words_by_persona.items()) if v},
    )


def measure_quality(directories: Sequence[Path]) -> QualityReport:
    """Measure every dialogue of the dataset directories (or chat-format ``.jsonl`` files)."""
    environments: dict[str, Environment] = {}

    def walk() -> Iterator[DialogueView]:
        for directory in directories:
            views, envs = read_views(directory)
            environments.update(envs)
            yield from views

    # In id order: a dataset's figures do not depend on the order its dialogues finished in
    # (the matched language sample is drawn in this order).
    views = sorted(walk(), key=lambda v: v.id)
    return measure_views(views, environments)


# --------------------------------------------------------------------------- display


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def _dist(d: Distribution) -> str:
    return f"{d.mean:.2f} (p50 {d.p50:g}, p90 {d.p90:g}, p99 {d.p99:g}, max {d.max:g})"


def quality_rows(report: QualityReport) -> list[tuple[str, str]]:
    """The report as (metric, value) rows, for the terminal and the HTML report."""
    r = report
    terse, verbose = r.persona_words.get("terse"), r.persona_words.get("verbose")
    rows = [
        ("dialogues", str(r.dialogues)),
        ("tool calls", str(r.tool_calls)),
        ("ungrounded calls (argument from nowhere)", _pct(r.ungrounded_call_rate)),
        ("ungrounded arguments", _pct(r.ungrounded_argument_rate)),
        ("read answers reporting unasked fields", f"{_pct(r.unasked_answer_rate)} of {r.read_answers}"),
        ("policy: dialogues checked", str(r.policy_checked)),
        ("policy: writes", str(r.writes)),
        ("policy: writes without confirmation", str(r.unconfirmed_writes)),
        ("policy: actions on rows not the user's", str(r.not_owned)),
        ("policy: forbidden changes", str(r.forbidden_changes)),
        ("policy: refusals missed", f"{r.refusals_missed} of {r.refusals_expected}"),
        ("policy: violations (dialogues)", f"{r.policy_violations} ({r.dialogues_with_violations})"),
        ("steps per tool-using request", _dist(r.steps)),
        ("requests with ≥ 6 steps", _pct(r.steps_6_plus_share)),
        ("tasks per dialogue", _dist(r.tasks) + f", min {r.tasks.min:g}"),
        ("turns per dialogue", _dist(r.turns)),
        ("dialogues with a tool error", _pct(r.tool_error_dialogues)),
        ("tool errors reported accurately / recovered", f"{_pct(r.errors_reported)} / {_pct(r.errors_recovered)}"),
        ("dialogues with error and recovery", _pct(r.error_recovery_dialogues)),
        ("top-20 sentence share, user / agent", f"{_pct(r.user.top20_share)} / {_pct(r.agent.top20_share)}"),
        (
            "distinct-1 / distinct-2, user",
            f"{r.user.distinct_1:.3f} / {r.user.distinct_2:.3f} ({r.user.sample_tokens} tokens)",
        ),
        (
            "distinct-1 / distinct-2, agent",
            f"{r.agent.distinct_1:.3f} / {r.agent.distinct_2:.3f} ({r.agent.sample_tokens} tokens)",
        ),
        (
            "agent closings / openings distinct",
            f"{_pct(r.agent_closings_distinct)} / {_pct(r.agent_openings_distinct)}",
        ),
        (
            "grammar-rule hits per 1,000 sentences, user / agent",
            f"{r.user.grammar_per_1000:.1f} / {r.agent.grammar_per_1000:.1f}",
        ),
        ("grammar hits, user", ", ".join(f"{k} {v}" for k, v in r.user.grammar.items()) or "none"),
        ("grammar hits, agent", ", ".join(f"{k} {v}" for k, v in r.agent.grammar.items()) or "none"),
    ]
    if r.persona_words:
        words = ", ".join(f"{k} {v:.1f}" for k, v in r.persona_words.items())
        if terse and verbose:
            words += f" (verbose/terse {verbose / terse:.2f}×)"
        rows.append(("words per user message by persona", words))
    return rows


def render_quality(report: QualityReport, *, title: str = "Dataset quality") -> Any:
    """A rich table of the report."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in quality_rows(report):
        table.add_row(name, value)
    return table
