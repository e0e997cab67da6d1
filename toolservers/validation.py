"""Argument validation against a tool's input schema, with messages that name the field.

The formats derived tools declare (``date``, ``date-time``, ``time``) are enforced with
a checker of exactly those formats, written for what SQLite's date functions read:
``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS[.fff]]`` (or ``T``, with an optional ``Z`` or
offset) and ``HH:MM[:SS[.fff]]``, each a real calendar date or time. Other formats stay
annotations. Validators are compiled once per schema and shared.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from schemas.errors import InvalidArgumentsError
from toolservers._json import dumps

__all__ = ["FORMAT_CHECKER", "ArgumentValidator", "schema_problems"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
_DATE_TIME = re.compile(rf"(\d{{4}}-\d{{2}}-\d{{2}})[ T]({_TIME})(Z|[+-]\d{{2}}:\d{{2}})?", re.IGNORECASE)
_TIME_ONLY = re.compile(_TIME)
#: How each enforced format is spelled out in an error.
_SPELLED = {"date": "YYYY-MM-DD", "date-time": "YYYY-MM-DD HH:MM:SS", "time": "HH:MM:SS"}

#: The formats dialogsim enforces, shared by every validator.
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE.fullmatch(instance):
        return False
    dt.date.fromisoformat(instance)
    return True


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    match = _DATE_TIME.fullmatch(instance)
    if match is None:
        return False
    dt.date.fromisoformat(match.group(1))
    dt.time.fromisoformat(match.group(2))
    zone = match.group(3)
    if zone and zone.upper() != "Z" and not (int(zone[1:3]) <= 23 and int(zone[4:6]) <= 59):
        return False
    return True


@FORMAT_CHECKER.checks("time", raises=ValueError)
def _is_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _TIME_ONLY.fullmatch(instance):
        return False
    dt.time.fromisoformat(instance)
    return True


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """Return why ``schema`` is not a valid JSON Schema (empty when it is).

    Checking a schema against the metaschema costs milliseconds and every dialogue's
    server checks the same tools again, so results are cached by the schema's content.
    """
    return list(_problems(_canonical(schema)))


@functools.lru_cache(maxsize=4096)
def _problems(canonical: str) -> tuple[str, ...]:
    try:
        Draft202012Validator.check_schema(json.loads(canonical))
    except jsonschema.SchemaError as exc:
        return (f"{_path([str(p) for p in exc.path])}: {exc.message}",)
    return ()


@functools.lru_cache(maxsize=4096)
def _compiled(canonical: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(canonical), format_checker=FORMAT_CHECKER)


def _canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)


class ArgumentValidator:
    """A compiled validator for one input schema (shared by every server with the same schema)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._validator = _compiled(_canonical(schema))

    def validate(self, arguments: dict[str, Any]) -> None:
        """Raise InvalidArgumentsError for the first problem, naming the field and what was expected."""
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: (len(e.path), list(e.path)))
        if errors:
            raise _describe(errors[0])


def _describe(error: jsonschema.ValidationError) -> InvalidArgumentsError:
    path = [str(p) for p in error.absolute_path]
    kind = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "required":
        present = instance if isinstance(instance, dict) else {}
        missing = [name for name in value if name not in present]
        return InvalidArgumentsError(_path([*path, missing[0]]) if missing else _path(path), "is required")
    if kind == "additionalProperties":
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = sorted(k for k in instance if k not in allowed) if isinstance(instance, dict) else []
        field = _path([*path, extra[0]]) if extra else _path(path)
        return InvalidArgumentsError(field, f"unknown field; expected one of: {', '.join(allowed) or '(none)'}")
    if kind == "type":
        expected = value if isinstance(value, str) else " or ".join(value)
        return InvalidArgumentsError(_path(path), f"expected {expected}, got {_show(instance)}")
    if kind == "enum":
        return InvalidArgumentsError(
            _path(path), f"expected one of {', '.join(_show(v) for v in value)}; got {_show(instance)}"
        )
    if kind in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        word = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[str(kind)]
        return InvalidArgumentsError(_path(path), f"expected a number {word} {value}, got {_show(instance)}")
    if kind in {"minLength", "maxLength"}:
        word = "at least" if kind == "minLength" else "at most"
        return InvalidArgumentsError(_path(path), f"expected {word} {value} characters, got {len(str(instance))}")
    if kind == "format" and value in _SPELLED:
        return InvalidArgumentsError(_path(path), f"expected a {value} ({_SPELLED[value]}), got {_show(instance)}")
    if kind == "pattern" or kind == "format":
        return InvalidArgumentsError(_path(path), f"expected {kind} {value!r}, got {_show(instance)}")
    return InvalidArgumentsError(_path(path), error.message)


def _path(parts: list[str]) -> str:
    return ".".join(parts) if parts else "(arguments)"


def _show(value: Any) -> str:
    text = dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
