"""The probe phase: each tool called one call at a time with generated valid and invalid arguments.

Every answer is classified (proper result, proper ``isError``, protocol error, crash,
hang) and judged: a valid call must not crash, hang or fail with a protocol error, and
its structured result must match the output schema; an invalid call must be refused
with an ``isError`` result. After a crash the connection is re-established (a server
started by command is restarted) and the tool's remaining calls are skipped; after two
hangs, too. Findings are gathered per tool and check, with a count and one example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from mcp_types import INVALID_PARAMS

from simulator.stress._link import CallResult, Link
from simulator.stress._tool import ToolInfo
from simulator.stress.generate import Case, CaseGenerator, validator_for
from simulator.stress.render import PhaseProgress
from simulator.stress.report import Finding, Outcome, Severity, ToolReport
from simulator.stress.target import Target

__all__ = ["FindingCollector", "ProbeResult", "probe_tools"]

_MAX_HANGS_PER_TOOL = 2
_TIMEOUT = "timeout"  # the ToolError code of a call its server interrupted at the deadline
_MIN_CALLS_FOR_NO_SUCCESS = 3


class FindingCollector:
    """Findings keyed by (tool, check): the first message and evidence, and how many calls showed it."""

    def __init__(self) -> None:
        self._items: dict[tuple[str | None, str], Finding] = {}

    def add(
        self,
        tool: str | None,
        check: str,
        severity: Severity,
        message: str,
        fix: str,
        evidence: str | None = None,
    ) -> None:
        key = (tool, check)
        known = self._items.get(key)
        if known is None:
            self._items[key] = Finding(
                check=check, severity=severity, tool=tool, message=message, fix=fix, evidence=evidence
            )
            return
        worst = severity if severity.rank > known.severity.rank else known.severity
        self._items[key] = Finding(
            check=check,
            severity=worst,
            tool=tool,
            message=known.message,
            fix=known.fix,
            evidence=known.evidence,
            count=known.count + 1,
        )

    def has(self, tool: str | None, check: str) -> bool:
        return (tool, check) in self._items

    def findings(self) -> list[Finding]:
        return list(self._items.values())


@dataclass
class ProbeResult:
    findings: list[Finding]
    #: Successful calls of write tools, in the order the server answered them.
    successful_writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Why the state check cannot conclude (a write that crashed or hung), when it cannot.
    uncertain: str | None = None
    #: The valid cases per tool, reused by the load phase.
    valid_cases: dict[str, list[Case]] = field(default_factory=dict)
    #: Tools to leave out of the load phase, and why.
    unstable: dict[str, str] = field(default_factory=dict)
    server_down: bool = False


async def probe_tools(
    link: Link,
    target: Target,
    tools: Sequence[ToolInfo],
    reports: dict[str, ToolReport],
    *,
    calls: int,
    call_timeout: float,
    seed: int,
    progress: PhaseProgress | None = None,
) -> ProbeResult:
    """Probe ``tools`` in order; outcome counts go into ``reports``, findings into the result."""
    collector = FindingCollector()
    result = ProbeResult(findings=[])
    plans: list[tuple[ToolInfo, CaseGenerator, list[Case]]] = []
    for tool in tools:
        generator = CaseGenerator(tool.input_schema, seed=seed, tool=tool.name)
        valid = generator.valid_cases(calls)
        result.valid_cases[tool.name] = valid
        plans.append((tool, generator, [*valid, *generator.invalid_cases(calls)]))
    if progress is not None:
        progress.start("probing tools", sum(len(cases) for _, _, cases in plans))
    for tool, generator, cases in plans:
        if result.server_down:
            break
        made = await _probe_tool(
            link, target, tool, generator, cases, reports[tool.name], collector, result, call_timeout, progress
        )
        if progress is not None and made < len(cases):
            progress.advance(len(cases) - made)  # the calls skipped after a crash or hangs
    if progress is not None:
        progress.stop()
    result.findings = collector.findings()
    return result


async def _probe_tool(
    link: Link,
    target: Target,
    tool: ToolInfo,
    generator: CaseGenerator,
    cases: list[Case],
    report: ToolReport,
    collector: FindingCollector,
    result: ProbeResult,
    call_timeout: float,
    progress: PhaseProgress | None,
) -> int:
    """Probe one tool; returns how many of ``cases`` were called."""
    output_validator = _validator(tool.output_schema)
    hangs = 0
    made = 0
    for case in cases:
        mark = target.log_mark()
        answer = await link.call(tool.name, case.arguments, call_timeout)
        made += 1
        if progress is not None:
            progress.advance()
        (report.valid if case.valid else report.invalid).add(answer.outcome)
        evidence = f"arguments {case.describe()} -> {answer.text or answer.outcome.value}"
        if case.valid:
            _judge_valid(tool, case, answer, output_validator, collector, evidence)
            if answer.outcome is Outcome.RESULT and tool.is_write:
                result.successful_writes.append((tool.name, case.arguments))
        else:
            _judge_invalid(tool, case, answer, collector, evidence)
        if tool.is_write and answer.outcome in {Outcome.CRASH, Outcome.HANG} and result.uncertain is None:
            result.uncertain = f"a call of the write tool {tool.name} got no answer ({answer.outcome.value})"
        if answer.outcome is Outcome.CRASH:
            tail = target.log_tail(mark)
            if tail is not None:
                evidence += f"; stderr meanwhile: {_last_lines(tail)}" if tail else "; nothing on stderr meanwhile"
            collector.add(
                tool.name,
                "call.crash",
                Severity.CRITICAL,
                f"the server died or dropped the connection on a call ({case.kind} arguments)",
                "find the failure in the server's log; catch errors per call and answer with an isError result",
                evidence,
            )
            result.unstable[tool.name] = "crashed the server in the probe phase"
            if not await link.reconnect():
                _server_down(collector, tool.name)
                result.server_down = True
            return made
        if answer.tool_error_code == _TIMEOUT:
            # The server interrupted the call at its deadline: it answers, but each such
            # call holds a connection for the whole deadline.
            hangs += 1
            result.unstable[tool.name] = "ran into the server's call timeout in the probe phase"
            if hangs >= _MAX_HANGS_PER_TOOL:
                return made
        if answer.outcome is Outcome.HANG:
            hangs += 1
            result.unstable[tool.name] = "hung in the probe phase"
            if not await link.responsive(call_timeout) and not await link.reconnect():
                _server_down(collector, tool.name)
                result.server_down = True
                return made
            if hangs >= _MAX_HANGS_PER_TOOL:
                return made
    valid = report.valid
    if valid.total >= _MIN_CALLS_FOR_NO_SUCCESS and valid.result == 0 and valid.tool_error == valid.total:
        collector.add(
            tool.name,
            "call.no_success",
            Severity.INFO,
            f"none of {valid.total} schema-valid calls succeeded; every one was refused with isError",
            "check that the input schema says everything a call needs (existing ids, formats, combinations)",
        )
    if not generator.schema_ok:
        collector.add(
            tool.name,
            "call.invalid_input_skipped",
            Severity.INFO,
            "invalid-argument checks were skipped: the input schema cannot judge arguments",
            "fix the input schema (see schema.invalid)",
        )
    return made


def _judge_valid(
    tool: ToolInfo,
    case: Case,
    answer: CallResult,
    output_validator: Draft202012Validator | None,
    collector: FindingCollector,
    evidence: str,
) -> None:
    if answer.outcome is Outcome.RESULT and output_validator is not None:
        if not answer.has_structured:
            collector.add(
                tool.name,
                "output.missing_structured",
                Severity.MEDIUM,
                "the tool declares an output schema but returned no structuredContent",
                "return structuredContent matching the output schema with every successful result",
                evidence,
            )
        else:
            error = jsonschema.exceptions.best_match(output_validator.iter_errors(answer.structured))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                collector.add(
                    tool.name,
                    "output.schema_violation",
                    Severity.HIGH,
                    f"the structured result contradicts the output schema at {where}: {error.message}",
                    "make the result match the output schema, or correct the schema",
                    evidence,
                )
    elif answer.outcome is Outcome.PROTOCOL_ERROR:
        code = f" (JSON-RPC {answer.error_code})" if answer.error_code is not None else ""
        collector.add(
            tool.name,
            "call.protocol_error",
            Severity.HIGH,
            f"schema-valid arguments ({case.kind}) got a protocol error{code} instead of a result or an isError result",
            "catch exceptions in the tool and answer with an isError result that says what went wrong",
            evidence,
        )
    elif answer.outcome is Outcome.HANG:
        _hang(collector, tool, case, evidence)
    elif answer.tool_error_code == _TIMEOUT:
        collector.add(
            tool.name,
            "call.timeout",
            Severity.HIGH,
            f"schema-valid arguments ({case.kind}) ran past the server's call timeout; its SQL was interrupted",
            "bound the tool's SQL: a LIMIT, a WHERE on an indexed column, a recursive CTE with an end",
            evidence,
        )


def _judge_invalid(tool: ToolInfo, case: Case, answer: CallResult, collector: FindingCollector, evidence: str) -> None:
    what = f"{case.kind.replace('_', ' ')}" + (f" ({case.field})" if case.field else "")
    if answer.outcome is Outcome.RESULT:
        extra = "; as a write tool it may have changed data" if tool.is_write else ""
        collector.add(
            tool.name,
            "input.accepted_invalid",
            Severity.HIGH,
            f"invalid arguments were accepted: {what} got a normal result instead of isError{extra}",
            "validate arguments against the input schema before running the tool; answer with an isError "
            "result naming the field",
            evidence,
        )
    elif answer.outcome is Outcome.PROTOCOL_ERROR:
        if answer.error_code == INVALID_PARAMS:
            collector.add(
                tool.name,
                "input.protocol_error",
                Severity.LOW,
                f"invalid arguments ({what}) were refused with a JSON-RPC error, which a model never sees",
                "answer invalid arguments with an isError result naming the field, so the model can correct itself",
                evidence,
            )
        else:
            code = f" (JSON-RPC {answer.error_code})" if answer.error_code is not None else ""
            collector.add(
                tool.name,
                "input.unhandled_error",
                Severity.MEDIUM,
                f"invalid arguments ({what}) made the tool fail{code} instead of answering with isError",
                "validate arguments before use and answer with an isError result naming the field",
                evidence,
            )
    elif answer.outcome is Outcome.HANG:
        _hang(collector, tool, case, evidence)


def _hang(collector: FindingCollector, tool: ToolInfo, case: Case, evidence: str) -> None:
    collector.add(
        tool.name,
        "call.hang",
        Severity.HIGH,
        f"no answer within the per-call timeout ({case.kind} arguments)",
        "bound every wait in the tool (I/O, locks, external calls) and answer with isError on timeout",
        evidence,
    )


def _server_down(collector: FindingCollector, tool: str) -> None:
    collector.add(
        None,
        "server.down",
        Severity.CRITICAL,
        f"the server could not be reached again after {tool} failed; the remaining calls were not made",
        "make the server survive failing calls; for a URL, check what supervises the process",
    )


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:])[-400:]


def _validator(schema: dict[str, Any] | None) -> Draft202012Validator | None:
    return None if schema is None else validator_for(schema)
