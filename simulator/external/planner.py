"""Offline planning over an external server: walk its read tools, keep what really works.

No model is needed. On a probe instance (a fresh state copy) the planner calls the
server's read tools with arguments it can justify — an enum value, an example quoted in a
parameter's description, a default, the state's display path (``/workspace/<name>``) for a path-like parameter, and
values taken from earlier results (list → get → follow an id). Every call that returns
something becomes an observation; values in its result (structured fields, ``Key: value``
lines, ids) become candidates for later calls. Tasks are built from observations (one
call, or a call and the call that follows an id it returned) and checked by running them
again on a second fresh instance: what differs between the two runs (or looks like
"now") is volatile and never required of the agent. Reads that changed files of the
state (caches, indexes) are recorded as ``volatile_paths``.

Only tools that say they are read-only (``readOnlyHint``), or, without annotations, whose
names read as reads, are ever called here; write tasks come from a model (``--tasks-model``).

Arguments that do not fit the tool's input schema are never sent (``Probe.invalid`` counts
them): a task's gold call must be one an agent following the schema could make. A value
taken from a result, to report or to pass on, is at most ``MAX_SAID`` characters long. A
read that hangs or crashes the server is recorded (``Probe.skipped``, a warning) and not
called again; the server is replaced by a fresh instance when it stopped answering
(:class:`~simulator.external.instance.Replaceable`), and the walk goes on with the other
tools. Only a server that cannot be started again ends the run (ExternalServerError).
"""

from __future__ import annotations

import datetime
import itertools
import json
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import mcp_types as types

from schemas import (
    CallCheck,
    ChainStep,
    Environment,
    ExpectedOutcome,
    ExpectedValue,
    Fact,
    Mode,
    Persona,
    Scenario,
    SubRequest,
    Task,
    ValueRef,
)
from schemas.errors import ExternalServerError, InvalidArgumentsError, ToolServerFailure
from simulator.external.instance import Replaceable
from simulator.external.proxy import Answer, call_instance
from simulator.external.results import Harvest, Source, harvest_values, result_rows
from simulator.external.tree import diff, snapshot
from simulator.external.verify import resolve_arguments, result_value
from simulator.log import get_logger
from simulator.offline.language import label
from simulator.offline.scenarios import make_persona, scenario_id
from toolservers.validation import ArgumentValidator, schema_problems

__all__ = [
    "MAX_SAID", "Observation", "Probe", "Skipped", "TaskTemplate", "build_scenarios", "is_read_tool", "plan_templates",
    "scenario_of", "walk",
]  # fmt: skip

log = get_logger(__name__)

_READ_WORDS = {
    "get", "list", "search", "find", "read", "show", "describe", "fetch", "query", "count", "lookup", "status",
    "log", "view", "info", "diff", "branch", "current", "convert", "check",
}  # fmt: skip
_WRITE_WORDS = {
    "create", "delete", "update", "set", "add", "remove", "write", "commit", "reset", "checkout", "push", "send",
    "move", "rename", "insert", "drop", "kill", "exec", "run", "post", "put", "edit",
}  # fmt: skip
_PATHY = re.compile(r"(path|dir|directory|repo|repository|root|folder|file|database|db)$", re.IGNORECASE)
_QUOTED = re.compile(r"'([^'\s][^']{0,60})'|\"([^\"\s][^\"]{0,60})\"")
_FORMATS = {"HH:MM:SS": "14:30:00", "HH:MM": "14:30", "YYYY-MM-DD": "2024-01-15"}
_MAX_CALLS = 80
#: Which harvested values make the best things to report: named fields first, loose text last.
_PRIORITY = {"id": 1, "line": 2, "item": 3}
_WANTS = {"id": "the id", "line": "what it says", "item": "the entries"}
_PER_TOOL = 3
#: Candidate argument sets tried per tool and round (those that fit its input schema).
_COMBOS = 8
#: Candidate argument sets looked at per tool and round, fitting or not.
_EXAMINED = 64
#: The longest string value the planner takes from a result, to report or to pass on. A value
#: to report is one the agent tells the user in a chat message and the user checks against
#: what they see (an id, a name, a title, a status line), and a value passed on may be one
#: the user states: 120 characters is a long sentence, and the limit ``results`` already puts
#: on a harvested ``line``. A longer value (a file's body, a whole listing: megabytes, for
#: some tools) is not something a person says back, nor an agent repeats word for word.
MAX_SAID = 120


def is_read_tool(tool: types.Tool) -> bool:
    """Whether the tool says it only reads (``readOnlyHint``), or, unannotated, its name reads like it."""
    hint = tool.annotations.read_only_hint if tool.annotations is not None else None
    if hint is not None:
        return hint
    words = set(re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", tool.name.lower()))
    return bool(words & _READ_WORDS) and not words & _WRITE_WORDS


@dataclass(slots=True)
class Observation:
    """A read call that worked on the probe: its arguments, where they came from, what it returned."""

    index: int
    tool: str
    args: dict[str, Any]
    answer: Answer
    sources: dict[str, Source] = field(default_factory=dict)
    harvest: list[Harvest] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A read tool no longer called: the call on which the server failed, and what happened."""

    tool: str
    arguments: dict[str, Any]
    problem: str
    #: Whether the instance was replaced by a fresh one after it (stuck, or gone), or kept (it still answered).
    replaced: bool
    #: ``probe`` (the walk) or ``check`` (the re-run on a second instance).
    stage: str = "probe"


@dataclass(slots=True)
class Probe:
    """What the walk learned: the observations, the state files reads changed, what failed."""

    observations: list[Observation]
    volatile_paths: set[str]
    skipped: list[Skipped] = field(default_factory=list)
    #: Candidate argument sets not sent because they do not fit the tool's input schema.
    invalid: int = 0
    calls: int = 0

    def report(self) -> dict[str, Any]:
        """What the probe did, as JSON data (a run keeps it in ``DIR/plan/probe.json``)."""
        return {
            "calls": self.calls,
            "observed": [{"tool": o.tool, "arguments": o.args} for o in self.observations],
            "skipped": [asdict(s) for s in self.skipped],
            "invalid_arguments": self.invalid,
            "volatile_paths": sorted(self.volatile_paths),
        }

    async def record_failure(
        self, slot: Replaceable, tool: str, args: dict[str, Any], answer: Answer, stage: str
    ) -> None:
        """Record that ``tool`` failed the server on ``args`` (and warn); keep or replace the instance.

        Raises ExternalServerError when the server cannot be started again.
        """
        problem = slot.current.failed or answer.text
        replaced = await slot.recover(f"the server failed while {tool} was called ({problem})")
        self.skipped.append(Skipped(tool, dict(args), problem, replaced, stage))
        log.warning(
            "external_probe_tool_skipped",
            tool=tool,
            stage=stage,
            problem=problem,
            instance="replaced by a fresh one" if replaced else "kept: it still answers",
        )


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _param_candidates(
    name: str, schema: dict[str, Any], harvest: Sequence[Harvest], shown: str | None
) -> list[tuple[Any, Source | None]]:
    out: list[tuple[Any, Source | None]] = []
    kind = schema.get("type")
    if kind is None:
        kinds = [s.get("type") for s in schema.get("anyOf", []) if isinstance(s, dict)]
        kind = next((k for k in kinds if k != "null"), None)
    out += [(value, None) for value in schema.get("enum", [])]
    if shown is not None and kind in (None, "string") and _PATHY.search(name):
        out.append((shown, None))
    description = str(schema.get("description", ""))
    out += [(value, None) for value in schema.get("examples", [])]
    if kind in (None, "string"):
        out += [(match.group(1) or match.group(2), None) for match in _QUOTED.finditer(description)]
        for fmt, example in _FORMATS.items():
            if fmt in description:
                out.append((example, None))
                break
    wanted = _norm(name)
    matched = [h for h in harvest if h.key and (_norm(h.key) == wanted or (len(h.key) > 3 and _norm(h.key) in wanted))]
    generic = [h for h in harvest if h.key in {"id", "item"} and h not in matched]
    for h in sorted(matched, key=lambda h: h.source is None) + sorted(generic, key=lambda h: h.source is None):
        if kind == "integer" and not isinstance(h.value, int):
            continue
        if kind in (None, "string") and not isinstance(h.value, str):
            continue
        if isinstance(h.value, str) and len(h.value) > MAX_SAID:
            continue
        out.append((h.value, h.source))
    if "default" in schema and schema["default"] is not None:
        out.append((schema["default"], None))
    if not out:
        if kind == "integer":
            out.append((max(1, int(schema.get("minimum", 1))), None))
        elif kind == "boolean":
            out.append((False, None))
        elif kind == "array":
            return []  # no value can be justified for a list without a hint
    unique: list[tuple[Any, Source | None]] = []
    seen: set[str] = set()
    for value, source in out:
        key = json.dumps(value, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append((value, source))
    return unique[:4]


def _validator(tool: types.Tool) -> ArgumentValidator | None:
    """The tool's input schema compiled, or None when it is not a schema this side can apply."""
    schema = tool.input_schema
    if not isinstance(schema, dict) or schema_problems(schema):
        return None  # the server decides what its invalid schema means
    try:
        return ArgumentValidator(schema)
    except Exception:  # a schema the engines cannot compile: the server decides
        return None


def _fits(validator: ArgumentValidator | None, args: dict[str, Any]) -> bool:
    if validator is None:
        return True
    try:
        validator.validate(args)
    except InvalidArgumentsError:
        return False
    except Exception:  # a keyword the engine cannot apply (an unresolvable $ref): the server decides
        return True
    return True


async def walk(slot: Replaceable, tools: Sequence[types.Tool], *, limit_s: float, rounds: int = 2) -> Probe:
    """Call the read tools on ``slot``'s instance with justified arguments; return what worked.

    A tool whose call the server fails on (no answer in time, the connection lost) is
    skipped from then on; raises ExternalServerError only when the server cannot be
    started again.
    """
    reads = sorted((t for t in tools if is_read_tool(t)), key=lambda t: t.name)
    probe = Probe([], set())
    observations = probe.observations
    harvest: list[Harvest] = []
    tried: set[str] = set()
    failed: set[str] = set()
    before = snapshot(slot.current.state)
    for _ in range(rounds):
        for tool in reads:
            if tool.name in failed:
                continue
            schema = tool.input_schema or {}
            props: dict[str, Any] = schema.get("properties", {}) or {}
            required = [r for r in schema.get("required", []) if r in props]
            options = [_param_candidates(r, props[r], harvest, slot.current.shown) for r in required]
            if any(not o for o in options):
                continue
            validator = _validator(tool)
            kept = sum(1 for o in observations if o.tool == tool.name)
            fitting = 0
            for combo in itertools.islice(itertools.product(*options), _EXAMINED):
                if fitting >= _COMBOS or kept >= _PER_TOOL or probe.calls >= _MAX_CALLS:
                    break
                args = {name: value for name, (value, _) in zip(required, combo, strict=True)}
                key = tool.name + json.dumps(args, sort_keys=True, default=str)
                if not _fits(validator, args):
                    if key not in tried:
                        tried.add(key)
                        probe.invalid += 1
                    continue
                fitting += 1
                if key in tried:
                    continue
                tried.add(key)
                probe.calls += 1
                instance = slot.current
                answer = await call_instance(instance, tool.name, args, limit_s)
                after = snapshot(instance.state)
                probe.volatile_paths |= {c.path for c in diff(before, after)}
                before = after
                if answer.error_code == ToolServerFailure.code:
                    await probe.record_failure(slot, tool.name, args, answer, "probe")
                    failed.add(tool.name)
                    before = snapshot(slot.current.state)
                    break
                if answer.is_error or not (answer.text.strip() or answer.structured):
                    continue
                sources = {name: source for name, (_, source) in zip(required, combo, strict=True) if source}
                obs = Observation(len(observations), tool.name, args, answer, sources)
                obs.harvest = harvest_values(answer, obs.index)
                observations.append(obs)
                harvest += obs.harvest
                kept += 1
    return probe


# --------------------------------------------------------------------------- tasks


@dataclass(slots=True)
class TaskTemplate:
    """A task before its ids are given: one or two observations and what to report."""

    chain: list[Observation]
    reports: list[Harvest]
    answers: list[Answer] = field(default_factory=list)
    #: The state's display path (what a path-like argument holds), None without state.
    shown: str | None = None


def _near_now(value: Any) -> bool:
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        when = datetime.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return False
    now = datetime.datetime.now(when.tzinfo) if when.tzinfo else datetime.datetime.now()
    return abs((now - when).total_seconds()) < 3 * 86400


def _reportable(h: Harvest, args: dict[str, Any], shown: str | None) -> bool:
    value = h.value
    if isinstance(value, bool) or _near_now(value):
        return False
    if isinstance(value, str) and (
        not 3 <= len(value) <= MAX_SAID or (shown and shown in value) or value in map(str, args.values())
    ):
        return False
    return h.key not in {"item"} or isinstance(value, str)


def _value_in(answer: Answer, h: Harvest) -> bool:
    """Whether ``h``'s value is still in ``answer`` (the second run), where it was in the first."""
    rows, from_text = result_rows(answer)
    if not from_text:
        return bool(rows) and rows[0].get(h.key) == h.value
    return str(h.value) in answer.text


async def plan_templates(slot: Replaceable, probe: Probe, *, limit_s: float, rng: random.Random) -> list[TaskTemplate]:
    """Tasks from ``probe``'s observations, re-run on ``slot``'s instance (a second fresh copy);
    volatile values dropped. A chain on which the server fails is dropped (and recorded in
    ``probe.skipped``), with every later chain that calls the same tool."""
    candidates: list[list[Observation]] = []
    for obs in probe.observations:
        if not obs.sources:
            candidates.append([obs])
        parents = {s.obs for s in obs.sources.values()}
        if len(parents) == 1:
            parent = probe.observations[parents.pop()]
            if not parent.sources:
                candidates.append([parent, obs])
    templates: list[TaskTemplate] = []
    failed: set[str] = set()
    for chain in candidates:
        answers: dict[str, Answer] = {}
        checked: list[Answer] = []
        ok = not any(obs.tool in failed for obs in chain)
        for k, obs in enumerate(chain if ok else []):
            step = _step(obs, f"s{k}", chain)
            args = resolve_arguments(step, answers)
            if args != obs.args:
                ok = False  # a reference resolves to something else on a fresh copy: not stable
                break
            answer = await call_instance(slot.current, obs.tool, args, limit_s)
            if answer.error_code == ToolServerFailure.code:
                await probe.record_failure(slot, obs.tool, args, answer, "check")
                failed.add(obs.tool)
            if answer.is_error:
                ok = False
                break
            answers[step.id] = answer
            checked.append(answer)
        if not ok:
            continue
        last = chain[-1]
        shown = slot.current.shown
        reports = [h for h in last.harvest if _reportable(h, last.args, shown) and _value_in(checked[-1], h)]
        if not reports:
            continue
        rng.shuffle(reports)
        reports.sort(key=lambda h: _PRIORITY.get(h.key, 0))
        picked = sorted(reports[:2], key=lambda h: last.harvest.index(h))
        templates.append(TaskTemplate(chain, picked, checked, shown))
    return templates


def _step(obs: Observation, step_id: str, chain: Sequence[Observation]) -> ChainStep:
    refs: dict[str, ValueRef] = {}
    literal: dict[str, Any] = {}
    for name, value in obs.args.items():
        source = obs.sources.get(name)
        if source is not None and len(chain) > 1 and chain[0].index == source.obs and obs is not chain[0]:
            refs[name] = ValueRef(step=step_id.rsplit("s", 1)[0] + "s0", field=source.field, pattern=source.pattern)
        else:
            literal[name] = value
    return ChainStep(id=step_id, tool=obs.tool, arguments=literal, refs=refs, resolved=dict(obs.args))


def _phrase(tool: types.Tool | None, name: str) -> str:
    text = (tool.description or "").strip() if tool is not None else ""
    text = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0].rstrip(".!? ") if text else ""
    if not text:
        text = "run " + label(name)
    verb, _, rest = text.partition(" ")
    if verb.lower().endswith("s") and not verb.lower().endswith("ss") and len(verb) > 3:
        verb = verb[:-1]  # "Shows the status" -> "show the status"
    text = f"{verb} {rest}".strip()
    return text[:1].lower() + text[1:]


def _said(args: dict[str, Any], withheld: set[str], state: str | None) -> str:
    said = [f"{label(k)} {v}" for k, v in args.items() if k not in withheld and (state is None or v != state)]
    return (" for " + ", ".join(said)) if said else ""


def make_task(template: TaskTemplate, task_id: str, tools: dict[str, types.Tool], rng: random.Random) -> Task:
    """The task of ``template`` with ids under ``task_id``; a literal argument may be withheld as a fact."""
    chain = template.chain
    steps = [_step(obs, f"{task_id}.s{k}", chain) for k, obs in enumerate(chain)]
    first = steps[0]
    state = template.shown
    literal = {
        k: v for k, v in first.arguments.items() if (state is None or v != state) and isinstance(v, str | int | float)
    }
    facts: list[Fact] = []
    withheld: set[str] = set()
    if literal and rng.random() < 0.5:
        name = rng.choice(sorted(literal))
        facts.append(Fact(name=name, value=literal[name], description=f"the {label(name)}"))
        withheld.add(name)
    stated = [k for k in first.arguments if k not in withheld]
    last = chain[-1]
    rows_from_text = result_rows(template.answers[-1])[1]
    steps[-1] = ChainStep(
        id=steps[-1].id,
        tool=steps[-1].tool,
        arguments=steps[-1].arguments,
        refs=steps[-1].refs,
        resolved=steps[-1].resolved,
        report=["result"] if rows_from_text else [h.key for h in template.reports],
    )
    phrase = _phrase(tools.get(chain[0].tool), chain[0].tool) + _said(first.arguments, withheld, state)
    if len(chain) > 1:
        phrase += ", and then " + _phrase(tools.get(last.tool), last.tool) + " for the first one it shows"
    wants = " and ".join(_WANTS.get(h.key, f"the {label(h.key)}") for h in template.reports)
    text = f"Please {phrase}; I'd like to know {wants}." if wants else f"Please {phrase}."
    values = [ExpectedValue(step=steps[-1].id, name=h.key, value=h.value) for h in template.reports]
    checks = [
        CallCheck(
            description=f"{obs.tool} re-run",
            tool=obs.tool,
            arguments=dict(obs.args),
            expected=result_value(answer),
        )
        for obs, answer in zip(chain, template.answers, strict=True)
    ]
    return Task(
        id=task_id,
        goal=f"You want to {phrase}, and to hear {wants or 'the answer'}.",
        chain=steps,
        sub_requests=[
            SubRequest(
                id=f"{task_id}.r0",
                steps=[s.id for s in steps],
                intent="lookup" if len(steps) == 1 else "list_related",
                text=text,
                stated=stated,
            )
        ],
        facts=facts,
        expected=ExpectedOutcome(values=values, calls=checks),
    )


def build_scenarios(
    environment: Environment,
    templates: Sequence[TaskTemplate],
    tools: Sequence[types.Tool],
    *,
    count: int,
    seed: int,
    mode: Mode,
    start: int = 0,
) -> list[Scenario]:
    """``count`` scenarios of one to three tasks each, drawn from ``templates``; deterministic by seed."""
    if not templates:
        raise ExternalServerError(
            "--server",
            "no task could be planned offline: no read tool returned anything with the arguments that could be "
            "justified (give --tasks-model to let a model write tasks)",
        )
    by_name = {t.name: t for t in tools}
    out = []
    for i in range(start, start + count):
        rng = random.Random(f"{seed}:{environment.id}:{i}")
        persona = make_persona(rng)
        n = min(len(templates), rng.choice([1, 2, 2, 3]))
        picked = rng.sample(range(len(templates)), n)
        tasks = [make_task(templates[j], f"t{k}", by_name, rng) for k, j in enumerate(picked)]
        out.append(scenario_of(environment, seed, i, tasks, persona, mode))
    return out


def scenario_of(
    environment: Environment, seed: int, index: int, tasks: list[Task], persona: Persona, mode: Mode
) -> Scenario:
    """Scenario ``index`` of a run over an external server (its id says the environment, seed and index)."""
    return Scenario(
        id=scenario_id(environment.id, seed, index),
        environment_id=environment.id,
        domain=environment.domain,
        tasks=tasks,
        persona=persona,
        mode=mode,
        seed=seed,
    )
