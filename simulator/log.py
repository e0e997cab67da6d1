"""Structured logs: structlog over the standard library's ``logging``.

Library code logs events with :func:`get_logger` (``log.info("dialogue_failed",
reason=...)``) and never prints. Everything under the ``dialogsim`` logger — structlog
events and plain ``logging`` records of the modules that use it — goes through one
processor chain: context bound with :func:`bind` (the run id, the dialogue id), a level,
a timestamp, and :func:`redact`, which removes secrets before anything is written.

Where it goes is set at the edge: :func:`configure` (``--log-level``, ``--log-format``)
for stderr, and :func:`run_log` for a run's ``DIR/run.log`` (JSON lines).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from schemas.errors import ConfigError

__all__ = [
    "LEVELS",
    "RUN_LOG",
    "add_secret",
    "bind",
    "configure",
    "get_logger",
    "redact",
    "run_log",
    "scrub_text",
]

RUN_LOG = "run.log"
LEVELS = ("debug", "info", "warning", "error")
_ROOT = "dialogsim"
#: Keys whose values are secrets whatever they hold.
_SECRET_KEYS = frozenset(
    {
        "api_key", "apikey", "api-key", "authorization", "token", "access_token", "password", "secret",
        "x-api-key", "cookie", "set-cookie",
    }
)  # fmt: skip
_REDACTED = "[redacted]"
_secrets: set[str] = set()


def add_secret(value: str | None) -> None:
    """Never write ``value`` (an API key, a bearer token) to any log: it is replaced wherever it appears."""
    if value and len(value) >= 6:
        _secrets.add(value)


def scrub_text(text: str) -> str:
    """``text`` with every registered secret replaced (for what is written outside logs: records' errors)."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _REDACTED if str(k).lower() in _SECRET_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop the values of secret-looking keys and every registered secret."""
    for key in list(event):
        event[key] = _REDACTED if key.lower() in _SECRET_KEYS else _scrub(event[key])
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redact,
]

structlog.configure(
    processors=[structlog.stdlib.filter_by_level, *_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def get_logger(name: str) -> Any:
    """The structured logger of module ``name``, under ``dialogsim`` (``simulator.run.x`` -> ``dialogsim.run.x``)."""
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name.removeprefix('simulator.')}"
    return structlog.stdlib.get_logger(name)


def _formatter(fmt: str) -> logging.Formatter:
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


_console: logging.Handler | None = None
#: The handlers this module added (others, e.g. pytest's caplog, do not decide the level).
_ours: list[logging.Handler] = []


def _root() -> logging.Logger:
    return logging.getLogger(_ROOT)


def _refresh_level() -> None:
    levels = [h.level for h in _ours] or [logging.WARNING]
    _root().setLevel(min(levels))


def configure(level: str = "warning", fmt: str = "console", *, stream: TextIO | None = None) -> None:
    """Send ``dialogsim`` logs at ``level`` and above to stderr, as ``console`` lines or ``json``."""
    global _console
    if level not in LEVELS:
        raise ConfigError(f"log level: expected one of {', '.join(LEVELS)}, got {level!r}")
    root = _root()
    if _console is not None:
        root.removeHandler(_console)
        _ours.remove(_console)
    _console = logging.StreamHandler(stream or sys.stderr)
    _console.setLevel(level.upper())
    _console.setFormatter(_formatter(fmt))
    root.addHandler(_console)
    _ours.append(_console)
    _refresh_level()


@contextlib.contextmanager
def run_log(path: Path, *, level: str = "info", **context: Any) -> Iterator[None]:
    """Append the block's logs to ``path`` as JSON lines, with ``context`` bound to every line."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level.upper())
    handler.setFormatter(_formatter("json"))
    root = _root()
    root.addHandler(handler)
    _ours.append(handler)
    _refresh_level()
    try:
        with structlog.contextvars.bound_contextvars(**context):
            yield
    finally:
        root.removeHandler(handler)
        _ours.remove(handler)
        handler.close()
        _refresh_level()


def bind(**context: Any) -> contextlib.AbstractContextManager[None]:
    """Bind ``context`` (e.g. ``dialogue_id``) to every log line written in the block (and its tasks)."""
    return structlog.contextvars.bound_contextvars(**context)
