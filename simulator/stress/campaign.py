"""One stress run: connect, list, lint, probe, check the state, load, and report."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from schemas.errors import ConfigError
from simulator.log import get_logger
from simulator.stress._link import Link, LinkDown
from simulator.stress._redact import Redactor
from simulator.stress._tool import ToolInfo
from simulator.stress.lint import lint_tools
from simulator.stress.load import run_load
from simulator.stress.probe import probe_tools
from simulator.stress.render import PhaseProgress
from simulator.stress.report import (
    CheckStatus,
    Finding,
    LoadSummary,
    Severity,
    StressOptionsRecord,
    StressReport,
    TargetInfo,
    ToolReport,
)
from simulator.stress.state import check_state
from simulator.stress.target import Target, TargetError, TargetSpec, open_target

__all__ = ["StressOptions", "run_stress", "server_call_timeout"]

log = get_logger(__name__)


@dataclass(frozen=True)
class StressOptions:
    """How hard to push. Raises ConfigError for values out of range."""

    #: Valid calls per tool in the probe phase; invalid calls per tool are capped at the same number.
    calls: int = 20
    #: Calls in the load phase (0 skips it).
    load_calls: int = 100
    concurrency: int = 8
    call_timeout: float = 5.0
    connect_timeout: float = 30.0
    seed: int = 0
    no_writes: bool = False
    fail_on: Severity = Severity.HIGH

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ConfigError(f"--calls: expected at least 1, got {self.calls}")
        if self.load_calls < 0:
            raise ConfigError(f"--load-calls: expected 0 or more, got {self.load_calls}")
        if not 1 <= self.concurrency <= 256:
            raise ConfigError(f"--concurrency: expected 1..256, got {self.concurrency}")
        if not self.call_timeout > 0:
            raise ConfigError(f"--call-timeout: expected seconds > 0, got {self.call_timeout}")
        if not self.connect_timeout > 0:
            raise ConfigError(f"--connect-timeout: expected seconds > 0, got {self.connect_timeout}")


async def run_stress(
    spec: TargetSpec,
    options: StressOptions,
    *,
    progress: PhaseProgress | None = None,
    workdir: Path | None = None,
) -> StressReport:
    """Stress the target ``spec`` names and return the report.

    Everything started for the run (a subprocess, an HTTP server) is stopped before this
    returns. A server built from an environment gets a deadline for each call's SQL
    just under ``call_timeout`` (see ``server_call_timeout``), so a tool whose SQL never
    ends is answered with a timeout error before this side gives up on it. Raises
    ConfigError (TargetError) when the target cannot be started or reached, or lists no
    tools it can be asked about. The values of ``spec.env`` and ``spec.headers`` appear
    in neither the report nor the error, nor in the logs: each is replaced by a label
    such as ``[--env MY_API_KEY]`` (see ``stress._redact``).
    """
    redactor = Redactor.of(spec.env, spec.headers)
    redactor.register()
    if spec.call_timeout_s is None and (spec.environment is not None or spec.environment_object is not None):
        spec = dataclasses.replace(spec, call_timeout_s=server_call_timeout(options.call_timeout))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    log.info("stress_started", target=redactor.text(_describe(spec)), **dataclasses.asdict(options))
    problem: str | None = None
    report: StressReport | None = None
    async with open_target(spec, workdir=workdir) as target:
        async with anyio.create_task_group() as tg:
            link = Link(target.client, tg, connect_timeout=options.connect_timeout)
            try:
                report = await _run(link, target, options, progress, started_at, t0)
            except LinkDown as exc:
                problem = str(exc)
            finally:
                await link.aclose()
        if problem is not None:
            tail = " ".join((target.log_tail() or "").split())
            problem = f"cannot use {target.description}: {problem}" + (f"; its stderr: {tail[-500:]}" if tail else "")
    if problem is not None or report is None:
        problem = redactor.text(problem or f"cannot use {_describe(spec)}")
        log.info("stress_target_unusable", error=problem)  # the CLI shows the error itself
        raise TargetError(problem)
    report = redactor.report(report)
    log.info(
        "stress_finished",
        passed=report.passed,
        findings={sev.value: report.count(sev) for sev in Severity},
        not_exercised=report.not_exercised(),
        duration_s=report.duration_s,
    )
    return report


def _describe(spec: TargetSpec) -> str:
    if spec.server is not None:
        return f"--server {spec.server}"
    if spec.url is not None:
        return f"--url {spec.url}"
    if spec.environment_object is not None:
        return f"--domain {spec.environment_object.id}"
    return f"--environment {spec.environment} over {spec.transport}"


def server_call_timeout(call_timeout: float) -> float:
    """The SQL deadline of a stressed environment's server: the client's timeout less a margin.

    Half a second less (or half of it, when shorter), so the server's timeout answer
    arrives while the client still waits for it.
    """
    return call_timeout - min(0.5, call_timeout / 2)


async def _run(
    link: Link,
    target: Target,
    options: StressOptions,
    progress: PhaseProgress | None,
    started_at: str,
    t0: float,
) -> StressReport:
    await link.connect()
    listed = await link.list_tools(options.connect_timeout)
    tools = [ToolInfo.from_listing(t, target.declared_write(t.name)) for t in listed]
    findings: list[Finding] = lint_tools(tools)
    if not tools:
        findings.append(
            Finding(
                check="server.no_tools",
                severity=Severity.MEDIUM,
                tool=None,
                message="the server lists no tools",
                fix="check the server's configuration",
            )
        )
    reports = {t.name: ToolReport(name=t.name, writes=t.is_write) for t in tools}
    selected: list[ToolInfo] = []
    for tool in tools:
        if options.no_writes and tool.is_write:
            reports[tool.name].skipped = f"--no-writes: {tool.write_reason}"
        else:
            selected.append(tool)

    probe = await probe_tools(
        link,
        target,
        selected,
        reports,
        calls=options.calls,
        call_timeout=options.call_timeout,
        seed=options.seed,
        progress=progress,
    )
    findings.extend(probe.findings)
    state, state_findings = check_state(target, probe.successful_writes, uncertain=probe.uncertain)
    findings.extend(state_findings)

    load_tools = [t for t in selected if t.name not in probe.unstable]
    for name, why in probe.unstable.items():
        reports[name].load_skipped = why
    if probe.server_down:
        load = LoadSummary(status=CheckStatus.SKIPPED, detail="the server went down in the probe phase")
    elif options.load_calls == 0:
        load = LoadSummary(status=CheckStatus.SKIPPED, detail="--load-calls 0")
    else:
        load, load_findings = await run_load(
            link,
            load_tools,
            probe.valid_cases,
            reports,
            calls=options.load_calls,
            concurrency=options.concurrency,
            call_timeout=options.call_timeout,
            progress=progress,
        )
        findings.extend(load_findings)

    return StressReport(
        target=TargetInfo(
            kind=target.kind,
            description=target.description,
            transport=target.transport,
            server_name=link.server_name,
            server_version=link.server_version,
        ),
        options=StressOptionsRecord(
            calls=options.calls,
            load_calls=options.load_calls,
            concurrency=options.concurrency,
            call_timeout_s=options.call_timeout,
            seed=options.seed,
            no_writes=options.no_writes,
            fail_on=options.fail_on,
        ),
        started_at=started_at,
        duration_s=round(time.perf_counter() - t0, 3),
        tools=[reports[t.name] for t in tools],
        findings=sorted(findings, key=lambda f: (-f.severity.rank, f.tool or "", f.check)),
        state=state,
        load=load,
        reconnects=link.reconnects,
    )
