"""JSON Schema checks and validators, compiled once per schema and shared by every dialogue.

Three things are checked against tool schemas, the same schemas again in every dialogue:
that a schema is valid JSON Schema (``schema_problems``, when a server is built), that a
call's arguments fit its input schema (``ArgumentValidator``, in the server on every
call) and that a result's structured content fits its output schema (``output_validator``,
handed to the MCP client so it does not compile and check each schema again per session).

Each is cached by the schema's content. Verdicts come from ``jsonschema`` (the library the
MCP SDK uses); where a schema only uses keywords whose meaning cannot differ between
implementations, ``jsonschema_rs`` answers "valid" first, ~50x faster, and ``jsonschema``
is asked only when it says "invalid" (it then finds and describes the problem, and its
verdict is the one that counts). Schemas with a regular expression (``pattern``,
``patternProperties``: Python's ``re`` and ECMA-262 differ) or a reference (``$ref`` and
friends: no retrieval, ever) always go to ``jsonschema`` alone. There an argument's
``pattern`` is matched by ``jsonschema_rs``'s regular-expression engine, in time linear in
the argument (``_pattern``): Python's ``re`` can backtrack for ever. So for arguments a
``pattern`` that engine compiles means the same to both, and does not keep the fast engine out.

The formats derived tools declare (``date``, ``date-time``, ``time``) are enforced on
arguments with a checker of exactly those formats, written for what SQLite's date
functions read: ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS[.fff]]`` (or ``T``, with an
optional ``Z`` or offset) and ``HH:MM[:SS[.fff]]``, each a real calendar date or time.
Other formats stay annotations. The fast engine is given the same three checks for an
input schema that declares a format, so its "valid" means what ``jsonschema``'s would; a
format it checks and ``jsonschema`` does not (an e-mail address, say) can only make it say
"invalid", which sends the arguments to ``jsonschema`` for the verdict.

Whatever the schema says, a string argument may not contain U+0000: SQLite cuts text at
a NUL in places (a LIKE pattern ends there, so a filter would match every row).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry

from schemas.errors import InvalidArgumentsError
from toolservers._json import dumps

__all__ = ["FORMAT_CHECKER", "ArgumentValidator", "OutputValidator", "output_validator", "schema_problems"]

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


#: Keywords that send a schema to ``jsonschema`` alone (see the module docstring).
_SLOW_ONLY = frozenset(
    {"pattern", "patternProperties", "$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor"}
)


def schema_problems(schema: dict[str, Any]) -> list[str]:
    """Return why ``schema`` is not a valid Draft 2020-12 JSON Schema (empty when it is).

    Every dialogue's server checks the same tools again, so results are cached by the
    schema's content.
    """
    return list(_problems(_canonical(schema)))


@functools.lru_cache(maxsize=4096)
def _problems(canonical: str) -> tuple[str, ...]:
    schema = json.loads(canonical)
    if _fast_ok(schema) and _meta_valid(schema, "https://json-schema.org/draft/2020-12/schema"):
        return ()
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return (f"{_path([str(p) for p in exc.path])}: {exc.message}",)
    return ()


def _meta_valid(schema: Any, dialect: str) -> bool:
    """The fast metaschema check: True only when ``jsonschema_rs`` is sure the schema is valid."""
    declared = schema.get("$schema", dialect) if isinstance(schema, dict) else dialect
    if declared != dialect:
        return False
    try:
        return bool(jsonschema_rs.meta.is_valid(schema))
    except Exception:  # an engine that cannot read the schema has no verdict: ask jsonschema
        return False


def _fast_ok(schema: Any, linear: bool = False) -> bool:
    """Whether both engines must agree on this schema (no regex, no reference, anywhere).

    ``linear``: ``jsonschema`` matches ``pattern`` with the fast engine's own regular
    expressions (arguments, ``_ArgumentDraft``), so a ``pattern`` that engine compiles
    cannot make them differ.
    """
    if isinstance(schema, dict):
        for key, value in schema.items():
            if linear and key == "pattern" and isinstance(value, str):
                if _linear_pattern(value) is None:
                    return False
            elif key in _SLOW_ONLY or not _fast_ok(value, linear):
                return False
        return True
    if isinstance(schema, list):
        return all(_fast_ok(v, linear) for v in schema)
    return True


def _declares_format(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "format" in schema or any(_declares_format(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_declares_format(v) for v in schema)
    return False


def _fast_check(check: Any) -> Any:
    """One of ``FORMAT_CHECKER``'s checks as the fast engine calls it: a bool, never an exception."""

    def fast(instance: str) -> bool:
        try:
            return bool(check(instance))
        except ValueError:
            return False

    return fast


#: The enforced formats, for the fast engine (the very functions ``FORMAT_CHECKER`` calls).
_FAST_FORMATS = {name: _fast_check(check) for name, (check, _) in FORMAT_CHECKER.checkers.items()}


def _fast_validator(schema: dict[str, Any], draft202012: bool, formats: bool = False, linear: bool = False) -> Any:
    """A ``jsonschema_rs`` validator for the fast "valid" answer, or None to use ``jsonschema`` alone.

    ``formats``: check the enforced formats with the same functions ``FORMAT_CHECKER`` uses.
    ``linear``: see ``_fast_ok``.
    """
    if not _fast_ok(schema, linear):
        return None
    try:
        if draft202012 and formats:
            return jsonschema_rs.Draft202012Validator(schema, formats=_FAST_FORMATS, validate_formats=True)
        if draft202012:
            return jsonschema_rs.Draft202012Validator(schema, validate_formats=False)
        return jsonschema_rs.validator_for(schema, validate_formats=False)
    except Exception:  # a schema it cannot compile: jsonschema alone decides
        return None


def _is_valid_fast(fast: Any, instance: Any) -> bool:
    try:
        return bool(fast.is_valid(instance))
    except Exception:  # a value it cannot represent (bytes, a custom object): no verdict
        return False


@functools.lru_cache(maxsize=1024)
def _linear_pattern(pattern: str) -> Any | None:
    """``pattern`` compiled by ``jsonschema_rs``'s engine (Rust's regex, bounded backtracking for
    the constructs that need it), or None when that engine cannot compile it."""
    try:
        return jsonschema_rs.validator_for({"pattern": pattern})
    except Exception:  # a construct only Python's ``re`` knows
        return None


_RE_PATTERN = Draft202012Validator.VALIDATORS["pattern"]


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """The ``pattern`` keyword, matched in time linear in the argument where the pattern allows.

    Python's ``re`` backtracks without bound: ``^(a+)+$`` against 30 ``a`` and a ``b`` held
    the event loop for seconds, and a longer argument for ever, past any call deadline (the
    deadline bounds SQL, and arguments are checked before it). A pattern the linear engine
    cannot compile is matched with ``re``, as before.
    """
    check = _linear_pattern(pattern) if isinstance(instance, str) else None
    if check is None:
        yield from _RE_PATTERN(validator, pattern, instance, schema)
    elif not check.is_valid(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: Draft 2020-12 with ``pattern`` matched by ``_pattern``: what arguments are checked with.
_ArgumentDraft = jsonschema.validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=4096)
def _compiled(canonical: str) -> tuple[Draft202012Validator, Any]:
    schema = json.loads(canonical)
    fast = _fast_validator(schema, draft202012=True, formats=_declares_format(schema), linear=True)
    return _ArgumentDraft(schema, format_checker=FORMAT_CHECKER), fast


def _canonical(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)


class ArgumentValidator:
    """A compiled validator for one input schema (shared by every server with the same schema)."""

    __slots__ = ("_fast", "_validator")

    def __init__(self, schema: dict[str, Any]) -> None:
        self._validator, self._fast = _compiled(_canonical(schema))

    def validate(self, arguments: dict[str, Any]) -> None:
        """Raise InvalidArgumentsError for the first problem, naming the field and what was expected."""
        if self._fast is None or not _is_valid_fast(self._fast, arguments):
            errors = sorted(self._validator.iter_errors(arguments), key=lambda e: (len(e.path), list(e.path)))
            if errors:
                raise _describe(errors[0])
        nul = _nul_at(arguments, [])
        if nul is not None:
            path, text = nul
            raise InvalidArgumentsError(
                _path(path), f"expected text without NUL characters (U+0000), got {_show(text)}"
            )


class OutputValidator:
    """What the MCP client validates a tool's structured content with, checked and compiled once.

    Built the way the SDK's ``ClientSession`` builds its own (``validator_for`` the
    schema, ``check_schema``, an empty ``referencing.Registry``), and used the same way
    (``iter_errors``); other attributes are the wrapped ``jsonschema`` validator's.
    """

    __slots__ = ("_fast", "schema", "validator")

    def __init__(self, schema: dict[str, Any], validator: Validator, fast: Any) -> None:
        self.schema = schema
        self.validator = validator
        self._fast = fast

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]:
        if self._fast is not None and _is_valid_fast(self._fast, instance):
            return iter(())
        return self.validator.iter_errors(instance)

    def is_valid(self, instance: Any) -> bool:
        return next(self.iter_errors(instance), None) is None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.validator, name)


def output_validator(schema: dict[str, Any]) -> OutputValidator | None:
    """The shared, already checked validator for an output schema; None when the schema is invalid.

    A None leaves the tool to the SDK client, which reports the invalid schema itself.
    """
    return _output(_canonical(schema))


@functools.lru_cache(maxsize=4096)
def _output(canonical: str) -> OutputValidator | None:
    schema = json.loads(canonical)
    cls = validator_for(schema)
    dialect = getattr(cls, "META_SCHEMA", {}).get("$schema", "")
    if not (_fast_ok(schema) and _meta_valid(schema, dialect)):
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError:
            return None
    validator: Validator = cls(schema, registry=Registry())
    return OutputValidator(schema, validator, _fast_validator(schema, draft202012=False))


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
    if kind == "minProperties" and isinstance(schema, dict):
        return InvalidArgumentsError(_path(path), _too_few(schema, value))
    if kind == "format" and value in _SPELLED:
        return InvalidArgumentsError(_path(path), f"expected a {value} ({_SPELLED[value]}), got {_show(instance)}")
    if kind == "pattern" or kind == "format":
        return InvalidArgumentsError(_path(path), f"expected {kind} {value!r}, got {_show(instance)}")
    return InvalidArgumentsError(_path(path), error.message)


def _too_few(schema: dict[str, Any], least: Any) -> str:
    """``pass at least one field besides id (name, email, …)``: what else there is to pass."""
    names = sorted(str(n) for n in schema.get("properties") or {})
    given = [n for n in schema.get("required") or [] if n in names]
    others = [n for n in names if n not in given]
    more = least - len(given) if isinstance(least, int) else 0
    if more < 1 or not others:
        return f"expected at least {least} fields"
    count = "one field" if more == 1 else f"{more} fields"
    besides = f" besides {' and '.join(given)}" if given else ""
    listed = ", ".join(others[:4]) + (", …" if len(others) > 4 else "")
    return f"pass at least {count}{besides} ({listed})"


def _nul_at(value: Any, path: list[str]) -> tuple[list[str], str] | None:
    """The path and value of the first string in ``value`` that holds U+0000, if any."""
    if isinstance(value, str):
        return (path, value) if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _nul_at(item, [*path, str(key)])
        if found is not None:
            return found
    return None


def _path(parts: list[str]) -> str:
    return ".".join(parts) if parts else "(arguments)"


def _show(value: Any) -> str:
    text = dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
