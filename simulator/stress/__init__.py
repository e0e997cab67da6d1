"""``dialogsim stress``: point at any MCP server and report what breaks.

A run lints every tool's schema, probes each tool with generated valid and invalid
arguments (classifying every answer: result, ``isError``, protocol error, crash, hang),
checks that the database of an environment changed only as the valid writes say, puts
the server under bounded concurrent load, and writes a JSON report plus a terminal
summary whose verdict can gate CI::

    report = await run_stress(TargetSpec(environment=Path("shop.json")), StressOptions(calls=10))
    report.passed  # no finding at or above options.fail_on
"""

from simulator.stress.campaign import StressOptions, run_stress
from simulator.stress.generate import Case, CaseGenerator
from simulator.stress.lint import lint_tools
from simulator.stress.render import PhaseProgress, print_summary
from simulator.stress.report import Finding, Outcome, Severity, StressReport, write_report
from simulator.stress.target import TargetError, TargetSpec

__all__ = [
    "Case",
    "CaseGenerator",
    "Finding",
    "Outcome",
    "PhaseProgress",
    "Severity",
    "StressOptions",
    "StressReport",
    "TargetError",
    "TargetSpec",
    "lint_tools",
    "print_summary",
    "run_stress",
    "write_report",
]
