"""A self-contained HTML report of datasets: summary, charts, and a browser of the dialogues.

The page is one file with everything inline (styles, script, charts drawn as SVG here, the
dialogues as JSON in a ``<script type="application/json">`` element) and a Content
Security Policy that forbids loading anything, so it opens from disk with no network.
``python -m simulator.report.screenshot`` renders it in headless Chromium to a PNG.
"""

from __future__ import annotations

from simulator.report._build import PAPER_TABLE_1, ReportInfo, build_report, embed_json, write_report

__all__ = ["PAPER_TABLE_1", "ReportInfo", "build_report", "embed_json", "write_report"]
