"""Structured output you can trust: every reply is decoded with msgspec into its Struct.

:func:`complete_structured` asks for a JSON object matching the Struct's JSON Schema
(each provider uses its strongest means: a forced tool call on Anthropic,
``response_format`` on OpenAI-compatible servers), decodes the reply, and when that
fails sends the reply back once, with the decoding error, for repair. A second failure
raises :class:`StructuredOutputError`, which ends the dialogue with a clear reason.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

import msgspec

from schemas import json_schema
from simulator.providers._errors import StructuredOutputError
from simulator.providers._types import ChatMessage, OutputSchema, Request, StopReason
from simulator.providers.client import LLMClient

__all__ = ["complete_structured", "decode_structured", "output_schema"]

T = TypeVar("T")

_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_EXCERPT = 2000


def output_schema(output_type: Any, *, name: str | None = None, description: str = "") -> OutputSchema:
    """The :class:`OutputSchema` for a msgspec type: its JSON Schema with the root inlined.

    ``name`` defaults to the type's name, cut to what providers accept (``[A-Za-z0-9_-]{1,64}``).
    """
    try:
        return _output_schema(output_type, name, description)
    except TypeError:  # an unhashable type: built each time
        return _output_schema.__wrapped__(output_type, name, description)


@functools.lru_cache(maxsize=256)
def _output_schema(output_type: Any, name: str | None, description: str) -> OutputSchema:
    # Once per type: msgspec's schema walk was ~1% of a model-played run's CPU, on every user turn.
    # The schema is shared; everything that sends it copies (``send_schema``) and never changes it.
    raw_name = name or str(getattr(output_type, "__name__", "output"))
    clean = _NAME.sub("_", raw_name).strip("_")[:64] or "output"
    return OutputSchema(name=clean, schema=json_schema(output_type), description=description)


def decode_structured(text: str, output_type: type[T]) -> T:
    """Decode a reply into ``output_type``.

    Accepts the object alone, inside a Markdown code fence, or surrounded by prose (the
    outermost ``{...}`` is tried). Raises ``msgspec.ValidationError`` or
    ``msgspec.DecodeError`` with msgspec's message (``Expected `bool`, got `str` - at
    `$.is_task_complete```) when none of those decodes.
    """
    try:
        return msgspec.json.decode(text, type=output_type)
    except (msgspec.ValidationError, msgspec.DecodeError) as first:
        candidates: list[str] = []
        fenced = _FENCE.match(text)
        if fenced:
            candidates.append(fenced.group(1))
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
        for candidate in candidates:
            if candidate.strip() == text.strip():
                continue
            try:
                return msgspec.json.decode(candidate, type=output_type)
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
        raise first


def _problem(exc: Exception, stop: StopReason) -> str:
    problem = str(exc) or type(exc).__name__
    if stop is StopReason.MAX_TOKENS:
        problem += " (the reply was cut off at max_tokens)"
    return problem


def repair_message(output: OutputSchema, problem: str) -> ChatMessage:
    """The user turn that sends a failed reply back for repair."""
    return ChatMessage.user(
        f"Your reply could not be used: {problem}. Reply again with only one JSON object that matches "
        f"the {output.name} schema exactly; keep the content, fix the structure."
    )


async def complete_structured(
    client: LLMClient,
    request: Request,
    output_type: type[T],
    *,
    name: str | None = None,
    description: str = "",
) -> T:
    """Ask ``client`` for a reply decoded into ``output_type`` (a msgspec Struct or any msgspec type).

    ``request.output`` is set from ``output_type`` unless the request already has one.
    A reply that does not decode is sent back once with the error (a second call, which
    is metered and published like any other). Raises StructuredOutputError when the
    repaired reply does not decode either, and ProviderError subclasses from the calls.
    """
    output = request.output or output_schema(output_type, name=name, description=description)
    request = msgspec.structs.replace(request, output=output)
    response = await client.complete(request)
    try:
        return decode_structured(response.text, output_type)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        problem = _problem(exc, response.stop_reason)
    repair = msgspec.structs.replace(
        request,
        messages=[*request.messages, ChatMessage.assistant(response.text), repair_message(output, problem)],
    )
    response = await client.complete(repair)
    try:
        return decode_structured(response.text, output_type)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise StructuredOutputError(
            output.name, _problem(exc, response.stop_reason), response.text[:_EXCERPT]
        ) from None
