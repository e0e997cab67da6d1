"""The stress report: msgspec Structs written as ``report.json`` (rendering is in ``stress.render``)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import msgspec

from schemas.errors import ConfigError

__all__ = [
    "REPORT_VERSION",
    "CheckStatus",
    "Finding",
    "Latency",
    "LoadSummary",
    "Outcome",
    "OutcomeCounts",
    "Severity",
    "StateCheck",
    "StressOptionsRecord",
    "StressReport",
    "TargetInfo",
    "ToolReport",
    "write_report",
]

#: Bumped whenever a field of the report changes meaning.
REPORT_VERSION = 1


class Severity(enum.StrEnum):
    """How bad a finding is, from ``info`` (worth knowing) to ``critical`` (the server dies)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity called ``text``; raises ConfigError naming the accepted values."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ConfigError(f"--fail-on: expected one of {', '.join(s.value for s in cls)}, got {text!r}") from None


_RANKS = {s: i for i, s in enumerate(Severity)}


class Outcome(enum.StrEnum):
    """How the server answered one call."""

    RESULT = "result"  # a proper result
    TOOL_ERROR = "tool_error"  # a proper isError result
    PROTOCOL_ERROR = "protocol_error"  # a JSON-RPC error, or a result that is not a CallToolResult
    CRASH = "crash"  # the server process died or the connection was lost
    HANG = "hang"  # no answer within the per-call timeout


class Finding(msgspec.Struct, kw_only=True, frozen=True):
    """One problem: where (``tool``, None for the server as a whole), which check, and how to fix it."""

    check: str
    severity: Severity
    tool: str | None
    message: str
    fix: str
    #: One example that shows the problem (arguments, answer), shortened.
    evidence: str | None = None
    #: How many calls showed it (1 for schema findings).
    count: int = 1


class OutcomeCounts(msgspec.Struct, kw_only=True):
    result: int = 0
    tool_error: int = 0
    protocol_error: int = 0
    crash: int = 0
    hang: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def total(self) -> int:
        return self.result + self.tool_error + self.protocol_error + self.crash + self.hang

    @property
    def failures(self) -> int:
        """Calls that got no proper answer: protocol errors, crashes and hangs."""
        return self.protocol_error + self.crash + self.hang


class Latency(msgspec.Struct, kw_only=True):
    """Latency percentiles in milliseconds (nearest rank)."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples: Iterable[float]) -> Latency | None:
        ordered = sorted(samples)
        if not ordered:
            return None

        def rank(p: float) -> float:
            index = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
            return round(ordered[index], 3)

        return cls(p50_ms=rank(50), p90_ms=rank(90), p99_ms=rank(99), max_ms=round(ordered[-1], 3))


class ToolReport(msgspec.Struct, kw_only=True):
    """What happened to one tool: probe calls with valid and invalid arguments, and the load phase."""

    name: str
    writes: bool
    #: Why the tool was not called (``--no-writes``), None when it was.
    skipped: str | None = None
    valid: OutcomeCounts = msgspec.field(default_factory=OutcomeCounts)
    invalid: OutcomeCounts = msgspec.field(default_factory=OutcomeCounts)
    load: OutcomeCounts | None = None
    load_latency: Latency | None = None
    #: Why the tool was left out of the load phase, when it was.
    load_skipped: str | None = None


class CheckStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    INCONCLUSIVE = "inconclusive"


class StateCheck(msgspec.Struct, kw_only=True):
    """The database after the probe phase against a replay of only its successful write calls."""

    status: CheckStatus
    detail: str
    replayed_writes: int = 0
    differences: list[str] = msgspec.field(default_factory=list)


class LoadSummary(msgspec.Struct, kw_only=True):
    status: CheckStatus
    calls: int = 0
    concurrency: int = 0
    duration_s: float = 0.0
    server_up: bool | None = None
    outcomes: OutcomeCounts = msgspec.field(default_factory=OutcomeCounts)
    latency: Latency | None = None
    detail: str = ""


class TargetInfo(msgspec.Struct, kw_only=True):
    kind: Literal["environment", "server", "url"]
    description: str
    transport: str
    server_name: str | None = None
    server_version: str | None = None


class StressOptionsRecord(msgspec.Struct, kw_only=True):
    calls: int
    load_calls: int
    concurrency: int
    call_timeout_s: float
    seed: int
    no_writes: bool
    fail_on: Severity


class StressReport(msgspec.Struct, kw_only=True, tag="stress_report", tag_field="kind"):
    """Everything ``dialogsim stress`` found; ``passed`` is false when a finding reaches ``fail_on``."""

    target: TargetInfo
    options: StressOptionsRecord
    started_at: str
    duration_s: float
    tools: list[ToolReport]
    findings: list[Finding]
    state: StateCheck
    load: LoadSummary
    #: How often the connection had to be re-established (a restart for a server started by command).
    reconnects: int = 0
    version: int = REPORT_VERSION

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def failing(self, fail_on: Severity | None = None) -> list[Finding]:
        """The findings at or above ``fail_on`` (default: the run's own ``--fail-on``)."""
        threshold = (fail_on or self.options.fail_on).rank
        return [f for f in self.findings if f.severity.rank >= threshold]

    @property
    def passed(self) -> bool:
        return not self.failing()

    def not_exercised(self) -> list[str]:
        """The tools called (not skipped) that never answered a valid call with a result, probe or load.

        Whatever passed for them was their refusals (``isError``); how they behave when
        they do their job was not tested.
        """
        return [
            t.name
            for t in self.tools
            if t.skipped is None and t.valid.result == 0 and (t.load is None or t.load.result == 0)
        ]


def write_report(report: StressReport, out_dir: Path) -> Path:
    """Write ``report.json`` into ``out_dir`` (created when missing); return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
    tmp.replace(path)
    return path
