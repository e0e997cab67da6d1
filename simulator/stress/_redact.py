"""What the user gave the server (``--env`` and ``--header`` values) kept out of everything stress writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from simulator.log import add_secret
from simulator.stress.report import StressReport

__all__ = ["Redactor"]

#: Shorter values (``DEBUG=1``, ``MODE=dev``) are left alone: replacing them would garble
#: every number and word that happens to contain them.
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True)
class Redactor:
    """Replaces each value by a label that names where it came from, e.g. ``[--env MY_API_KEY]``.

    Every ``--env`` value counts, whatever its name: the user gave it to the server, not
    to the report. A header value counts whole and, for ``Bearer <token>``, by its last word.
    """

    #: (value, label), longest value first so that a value containing another is replaced whole.
    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, env: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Redactor:
        labelled = [(value, f"[--env {name}]") for name, value in env.items()]
        for name, value in (headers or {}).items():
            label = f"[--header {name}]"
            labelled += [(value, label), (value.split()[-1] if value.split() else value, label)]
        pairs: dict[str, str] = {}
        for value, label in labelled:
            # As written, and as it reads inside a JSON string (a tool that answers with JSON).
            for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]):
                if len(form) >= MIN_SECRET_LENGTH:
                    pairs.setdefault(form, label)
        return cls(tuple(sorted(pairs.items(), key=lambda p: -len(p[0]))))

    def register(self) -> None:
        """Have the log's redactor (``simulator.log``) remove the values from every log line too."""
        for value, _ in self.pairs:
            add_secret(value)

    def text(self, text: str) -> str:
        for value, label in self.pairs:
            if value in text:
                text = text.replace(value, label)
        return text

    def report(self, report: StressReport) -> StressReport:
        """``report`` with every string in it redacted."""
        if not self.pairs:
            return report
        return msgspec.convert(self._scrub(msgspec.to_builtins(report)), StressReport)

    def file(self, path: Path) -> None:
        """Redact a file (a server's stderr log) in place; nothing happens when it is missing."""
        if not self.pairs or not path.is_file():
            return
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        redacted = self.text(text)
        if redacted != text:
            path.write_bytes(redacted.encode("utf-8", "surrogateescape"))

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value
