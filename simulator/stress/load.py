"""The load phase: many valid calls at once, never more than ``concurrency`` in flight.

Calls go round-robin over the tools (each with its valid cases in turn) through a fixed
pool of ``concurrency`` workers reading one bounded stream. Per tool: outcome counts and
latency percentiles. A crash reconnects once for all workers that saw it; when the
server cannot be reached again the phase stops. At the end the server must still answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import ObjectReceiveStream

from simulator.stress._link import Link
from simulator.stress._tool import ToolInfo
from simulator.stress.generate import Case
from simulator.stress.render import PhaseProgress
from simulator.stress.report import (
    CheckStatus,
    Finding,
    Latency,
    LoadSummary,
    Outcome,
    OutcomeCounts,
    Severity,
    ToolReport,
)

__all__ = ["run_load"]


@dataclass(frozen=True, slots=True)
class _Job:
    tool: str
    case: Case


def _jobs(tools: Sequence[ToolInfo], cases: dict[str, list[Case]], calls: int) -> list[_Job]:
    usable = [t.name for t in tools if cases.get(t.name)]
    if not usable:
        return []
    jobs: list[_Job] = []
    for i in range(calls):
        name = usable[i % len(usable)]
        own = cases[name]
        jobs.append(_Job(name, own[(i // len(usable)) % len(own)]))
    return jobs


async def run_load(
    link: Link,
    tools: Sequence[ToolInfo],
    cases: dict[str, list[Case]],
    reports: dict[str, ToolReport],
    *,
    calls: int,
    concurrency: int,
    call_timeout: float,
    progress: PhaseProgress | None = None,
) -> tuple[LoadSummary, list[Finding]]:
    """Run the load phase over ``tools``; per-tool counts and latencies go into ``reports``."""
    jobs = _jobs(tools, cases, calls)
    if not jobs:
        return LoadSummary(status=CheckStatus.SKIPPED, detail="no tool to load (none has valid arguments)"), []
    counts: dict[str, OutcomeCounts] = {t: OutcomeCounts() for t in {j.tool for j in jobs}}
    latencies: dict[str, list[float]] = {t: [] for t in counts}
    total = OutcomeCounts()
    down = anyio.Event()
    sent = 0
    if progress is not None:
        progress.start(f"load: {len(jobs)} calls, concurrency {concurrency}", len(jobs))

    async def worker(receive: ObjectReceiveStream[_Job]) -> None:
        nonlocal sent
        async with receive:
            async for job in receive:
                if down.is_set():
                    continue
                generation = link.generation
                sent += 1
                answer = await link.call(job.tool, job.case.arguments, call_timeout)
                counts[job.tool].add(answer.outcome)
                total.add(answer.outcome)
                latencies[job.tool].append(answer.latency_ms)
                if progress is not None:
                    progress.advance()
                if answer.outcome is Outcome.CRASH and not await link.reconnect(generation):
                    down.set()

    started = time.perf_counter()
    send, receive = anyio.create_memory_object_stream[_Job](concurrency)
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker, receive.clone())
        receive.close()
        async with send:
            for job in jobs:
                if down.is_set():
                    break
                await send.send(job)
    duration = time.perf_counter() - started
    if progress is not None:
        progress.stop()
    server_up = not down.is_set() and await link.responsive(call_timeout)

    findings: list[Finding] = []
    for name, c in counts.items():
        report = reports[name]
        report.load = c
        report.load_latency = Latency.of(latencies[name])
        evidence = f"{c.total} calls: {c.crash} crashes, {c.hang} hangs, {c.protocol_error} protocol errors"
        problems = (
            ("load.crash", Severity.CRITICAL, c.crash, "calls lost the connection",
             "make the tool safe to run concurrently (shared state, connections, locks)"),
            ("load.hang", Severity.HIGH, c.hang, "calls got no answer in time",
             "look for locks or pools that run out under concurrent calls; bound every wait"),
            ("load.protocol_error", Severity.HIGH, c.protocol_error, "valid calls failed with a protocol error",
             "catch errors per call and answer with isError; check shared state under concurrency"),
        )  # fmt: skip
        findings.extend(
            Finding(
                check=check,
                severity=severity,
                tool=name,
                message=f"{count} of {c.total} {what} under concurrency {concurrency}",
                fix=fix,
                evidence=evidence,
                count=count,
            )
            for check, severity, count, what, fix in problems
            if count
        )
    if not server_up:
        findings.append(
            Finding(
                check="server.down",
                severity=Severity.CRITICAL,
                tool=None,
                message="the server did not answer after the load phase",
                fix="find what the concurrent calls broke in the server's log",
            )
        )
    everything = [ms for values in latencies.values() for ms in values]
    summary = LoadSummary(
        status=CheckStatus.PASSED if server_up and not total.failures else CheckStatus.FAILED,
        calls=sent,
        concurrency=concurrency,
        duration_s=round(duration, 3),
        server_up=server_up,
        outcomes=total,
        latency=Latency.of(everything),
        detail="" if sent == len(jobs) else f"stopped after {sent} of {len(jobs)} calls: the server went down",
    )
    return summary, findings
