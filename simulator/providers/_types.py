"""The provider-neutral request and response: what every brain builds and reads.

A :class:`Request` is a list of :class:`ChatMessage` (system, user, assistant with tool
calls, tool results), the tools the model may call (JSON Schema parameters), an
optional structured-output schema and the sampling settings. A :class:`Response` is
the reply text, the tool calls, a normalised stop reason, token usage, cost, latency
and whether it came from the cache. Providers translate both to and from their wire
protocol; nothing here knows about a particular provider.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import msgspec

__all__ = [
    "ChatMessage",
    "ChatToolCall",
    "OutputSchema",
    "Request",
    "Response",
    "Role",
    "StopReason",
    "TokenUsage",
    "ToolDef",
]

Role = Literal["system", "user", "assistant", "tool"]


class StopReason(enum.StrEnum):
    """Why the model stopped, the same for every provider."""

    END = "end"  # a natural end of the reply (also: a structured answer was given)
    TOOL_CALLS = "tool_calls"  # the reply asks for tool calls
    MAX_TOKENS = "max_tokens"  # cut off at ``max_tokens``: the text may be incomplete
    STOP_SEQUENCE = "stop_sequence"  # one of ``Request.stop`` was produced
    REFUSAL = "refusal"  # the provider's safety system stopped the reply
    OTHER = "other"  # anything else the provider reported


class ChatToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call the model made: ``arguments`` is the decoded JSON object.

    ``invalid_arguments`` holds the raw text when the model's arguments were not a JSON
    object at all (``arguments`` is then empty), so an agent can answer the call with
    an error result instead of inventing arguments.
    """

    id: str
    name: str
    arguments: dict[str, Any] = {}
    invalid_arguments: str | None = None


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One message of a conversation.

    ``role="tool"`` is a tool result: ``tool_call_id`` names the call it answers,
    ``is_error`` marks a failed call. Only ``assistant`` messages carry ``tool_calls``.
    """

    role: Role
    text: str = ""
    tool_calls: list[ChatToolCall] = []
    tool_call_id: str | None = None
    is_error: bool = False

    def __post_init__(self) -> None:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool calls, not {self.role!r}")

    @classmethod
    def system(cls, text: str) -> ChatMessage:
        return cls(role="system", text=text)

    @classmethod
    def user(cls, text: str) -> ChatMessage:
        return cls(role="user", text=text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: list[ChatToolCall] | None = None) -> ChatMessage:
        return cls(role="assistant", text=text, tool_calls=list(tool_calls or []))

    @classmethod
    def tool(cls, tool_call_id: str, text: str, *, is_error: bool = False) -> ChatMessage:
        return cls(role="tool", text=text, tool_call_id=tool_call_id, is_error=is_error)


def _empty_object_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


class ToolDef(msgspec.Struct, frozen=True, kw_only=True):
    """A tool the model may call: ``parameters`` is the JSON Schema of its arguments (an object)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=_empty_object_schema)


class OutputSchema(msgspec.Struct, frozen=True, kw_only=True):
    """Ask for a structured reply: one JSON object matching ``schema``.

    ``name`` must match ``[A-Za-z0-9_-]{1,64}`` (both providers require it). Build one
    from a Struct with :func:`simulator.providers.output_schema`.
    """

    name: str
    schema: dict[str, Any]
    description: str = ""


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One model call, provider-neutral.

    ``model`` may be left empty: the client fills in its own. Sampling settings left at
    ``None`` are not sent, so the provider's defaults apply. ``extra`` is merged into the
    provider's request body as is, for settings this type does not name.

    Provider notes: Anthropic's current API version rejects ``temperature`` and
    ``top_p`` and has no ``seed``; the Anthropic provider does not send them (``seed``
    still takes part in the cache key). ``max_tokens`` defaults to 4096 there because
    the Messages API requires it.
    """

    messages: list[ChatMessage]
    model: str = ""
    tools: list[ToolDef] = []
    output: OutputSchema | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = []
    extra: dict[str, Any] = {}


class TokenUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens one call used, as the provider reported them."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


class Response(msgspec.Struct, frozen=True, kw_only=True):
    """The model's reply to one :class:`Request`.

    For a structured request ``text`` is the JSON object the model produced (also when
    the provider delivered it as a forced tool call). ``cost_usd`` is ``None`` when the
    model has no price; it is ``0.0`` for a cache hit (``cached=True``), which made no
    request. ``model`` is the model id the provider reported, ``attempts`` how many HTTP
    attempts the call took (0 for a cache hit).
    """

    text: str = ""
    tool_calls: list[ChatToolCall] = []
    stop_reason: StopReason = StopReason.END
    usage: TokenUsage = msgspec.field(default_factory=TokenUsage)
    cost_usd: float | None = None
    latency_s: float = 0.0
    cached: bool = False
    model: str = ""
    provider: str = ""
    attempts: int = 1

    def message(self) -> ChatMessage:
        """The reply as the assistant message to append to the conversation."""
        return ChatMessage(role="assistant", text=self.text, tool_calls=list(self.tool_calls))
