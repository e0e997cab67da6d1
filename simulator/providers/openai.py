"""OpenAI Chat Completions through the official ``openai`` SDK, for OpenAI and any compatible server.

``base_url`` points the same code at vLLM, SGLang, Ollama, llama.cpp, LM Studio or
OpenRouter. Tools are ``function`` tools; assistant tool calls and ``tool`` messages
carry the call ids. A structured request asks for ``response_format`` ``json_schema``
(``strict`` when the schema allows it: every object closed and every property
required). A server that rejects that (400/422) is asked again with ``json_object``
plus the schema in the system prompt, then with the prompt alone; the first mode that
works is remembered for the model. The reply is checked by the structured decoder
either way.

The SDK authenticates and sends the request (its public ``post``, with the body we
built encoded once: see ``_http.post_json``); the reply body is decoded here with msgspec
into the fields we use (the SDK's models are built without validation).
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
import openai

from schemas.errors import ConfigError
from simulator.providers._errors import (
    BadResponse,
    ProviderRejected,
)
from simulator.providers._http import post_json, sdk_shards, send_schema, send_with_sdk
from simulator.providers._registry import provider
from simulator.providers._types import (
    ChatToolCall,
    OutputSchema,
    Request,
    Response,
    StopReason,
    TokenUsage,
    ToolDef,
)
from simulator.providers.settings import PLACEHOLDER_KEY, ProviderSettings
from simulator.providers.wire import openai_messages

__all__ = ["DEFAULT_BASE_URL", "OpenAIProvider", "StructuredMode"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

log = logging.getLogger("dialogsim.providers.openai")

_STOP = {
    "stop": StopReason.END,
    "tool_calls": StopReason.TOOL_CALLS,
    "function_call": StopReason.TOOL_CALLS,
    "length": StopReason.MAX_TOKENS,
    "content_filter": StopReason.REFUSAL,
}
# Reasoning models served without a reasoning parser (Qwen3 on a bare server) put their
# thoughts in the content; they are not part of the answer.
_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


class StructuredMode(enum.StrEnum):
    """How a structured reply is asked for, most to least constrained."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"


class _Function(msgspec.Struct):
    name: str
    arguments: str | dict[str, Any] = ""


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str = ""


class _Message(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Completion(msgspec.Struct):
    choices: list[_Choice]
    usage: _Usage | None = None
    model: str = ""


_decoder = msgspec.json.Decoder(_Completion)
_encoder = msgspec.json.Encoder()


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode accepts ``schema``: every object closed, every property required."""
    if isinstance(schema, dict):
        if "properties" in schema or schema.get("type") == "object":
            props = schema.get("properties", {})
            if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
                return False
        return all(strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(strict_compatible(v) for v in schema)
    return True


def schema_instruction(output: OutputSchema) -> str:
    return (
        "Reply with one JSON object and nothing else (no prose, no code fence). "
        f"It must match this JSON Schema ({output.name}):\n" + json.dumps(send_schema(output.schema), sort_keys=True)
    )


def tools_payload(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """``tools`` as Chat Completions ``function`` tools."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "parameters": send_schema(t.parameters)}
            | ({"description": t.description} if t.description else {}),
        }
        for t in tools
    ]


class _EncodedTools:
    """Tool lists encoded to JSON once and reused, most recent ``size`` tool sets.

    A dialogue sends the same tools with every request, and every dialogue of an
    environment the same listing (its schemas are the same objects: listed once per
    environment), while they make up most of a request's bytes (46 tools, ~39 KB of the
    ~46 KB bodies of the retail pack). The key is each tool's name, description and the
    identity of its schema; an entry keeps its schemas alive, so an identity is never
    reused while it is cached. Tool schemas are not changed in place anywhere.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[tuple[str, str, int], ...], tuple[list[object], msgspec.Raw]] = OrderedDict()

    def get(self, tools: Sequence[ToolDef]) -> msgspec.Raw:
        key = tuple((t.name, t.description, id(t.parameters)) for t in tools)
        entry = self._entries.get(key)
        if entry is None:
            entry = ([t.parameters for t in tools], msgspec.Raw(_encoder.encode(tools_payload(tools))))
            self._entries[key] = entry
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry[1]


_tools_json = _EncodedTools()


def build_body(request: Request, *, mode: StructuredMode, official: bool) -> dict[str, Any]:
    """The request body for ``request``: ``chat.completions.create``'s keyword arguments, with
    ``tools`` already JSON (a ``msgspec.Raw``; :func:`tools_payload` gives them as values)."""
    messages = openai_messages(request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.tools:
        body["tools"] = _tools_json.get(request.tools)
    out = request.output
    if out is not None:
        if mode is StructuredMode.JSON_SCHEMA:
            schema = send_schema(out.schema)
            spec: dict[str, Any] = {"name": out.name, "schema": schema, "strict": strict_compatible(schema)}
            if out.description:
                spec["description"] = out.description
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            if mode is StructuredMode.JSON_OBJECT:
                body["response_format"] = {"type": "json_object"}
            instruction = schema_instruction(out)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}
            else:
                messages.insert(0, {"role": "system", "content": instruction})
    if request.max_tokens is not None:
        # OpenAI's newer models accept only max_completion_tokens; compatible servers know max_tokens.
        body["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def _arguments(raw: str | dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    if isinstance(raw, dict):
        return raw, None
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}, raw
    return (value, None) if isinstance(value, dict) else ({}, raw)


def parse_body(data: bytes, request: Request) -> Response:
    """Decode a Chat Completions reply. Raises BadResponse for anything that is not one."""
    try:
        completion = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise BadResponse(f"reply body is not a chat completion: {exc}", model=request.model) from None
    if not completion.choices:
        raise BadResponse("reply has no choices", model=request.model)
    choice = completion.choices[0]
    calls: list[ChatToolCall] = []
    for i, call in enumerate(choice.message.tool_calls or []):
        arguments, invalid = _arguments(call.function.arguments)
        calls.append(
            ChatToolCall(
                id=call.id or f"call_{i}", name=call.function.name, arguments=arguments, invalid_arguments=invalid
            )
        )
    text = _THINK.sub("", choice.message.content or "")
    stop = _STOP.get(choice.finish_reason or "", StopReason.OTHER)
    if calls and stop is StopReason.END:
        stop = StopReason.TOOL_CALLS  # some servers say "stop" when the reply is tool calls
    if choice.message.refusal:
        text, stop = text or choice.message.refusal, StopReason.REFUSAL
    usage = completion.usage or _Usage()
    return Response(
        text=text,
        tool_calls=calls,
        stop_reason=stop,
        usage=TokenUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
        model=completion.model or request.model,
        provider="openai",
    )


@provider(
    "openai",
    key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    default_base_url=DEFAULT_BASE_URL,
    keyless_base_url=True,
)
class OpenAIProvider:
    """``AsyncOpenAI`` clients for one endpoint, one per ``SHARD_SIZE`` requests in flight
    (SDK retries off: the LLM client retries, once, for everyone)."""

    name = "openai"

    def __init__(self, settings: ProviderSettings) -> None:
        base_url = settings.base_url or DEFAULT_BASE_URL
        self.official = urlsplit(base_url).hostname == "api.openai.com"
        if settings.api_key is not None:
            key = settings.api_key.reveal()
        elif not self.official:
            key = PLACEHOLDER_KEY
        else:
            raise ConfigError("openai: no API key; set OPENAI_API_KEY or pass --api-key")
        self._secret = key
        self._clients = sdk_shards(
            openai.AsyncOpenAI,
            openai.DefaultAsyncHttpxClient,
            api_key=key,
            base_url=base_url,
            timeout=settings.timeout,
            in_flight=settings.max_concurrency,
        )
        #: The structured mode that worked, per model.
        self.modes: dict[str, StructuredMode] = {}

    async def send(self, request: Request) -> Response:
        if request.output is None:
            return await self._send(request, StructuredMode.JSON_SCHEMA)
        known = self.modes.get(request.model)
        if known is not None:
            return await self._send(request, known)
        first_error: ProviderRejected | None = None
        for mode in StructuredMode:
            try:
                response = await self._send(request, mode)
            except ProviderRejected as exc:
                if exc.status not in (400, 422):
                    raise
                first_error = first_error or exc
                log.info("openai:%s rejected structured mode %s (%s); trying the next", request.model, mode, exc.detail)
                continue
            self.modes[request.model] = mode
            return response
        assert first_error is not None
        raise first_error

    async def _send(self, request: Request, mode: StructuredMode) -> Response:
        body = build_body(request, mode=mode, official=self.official)
        with self._clients.lease() as client:
            return await send_with_sdk(
                openai,
                openai.OpenAIError,
                lambda: post_json(client, "/chat/completions", body, request.extra),
                lambda content: parse_body(content, request),
                provider=self.name,
                model=request.model,
                secret=self._secret,
            )

    async def aclose(self) -> None:
        await self._clients.aclose(lambda client: client.close())
