"""Anthropic Messages API through the official ``anthropic`` SDK.

System messages go to ``system``; assistant tool calls become ``tool_use`` blocks and
tool results ``tool_result`` blocks in the next user turn; tools carry their
``input_schema``. A structured request adds one tool whose input schema is the output
schema and forces it (``tool_choice={"type": "tool", ...}``): its input is the answer.

The SDK authenticates and sends the request (its public ``post``, with the body we
built encoded once: see ``_http.post_json``); the reply body is decoded here
with msgspec into the few fields we use, because the SDK's own models are built
without validation and would turn a malformed body into silently wrong values.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

import anthropic
import msgspec

from schemas.errors import ConfigError
from simulator.providers._errors import BadResponse
from simulator.providers._http import post_json, sdk_shards, send_schema, send_with_sdk
from simulator.providers._registry import provider
from simulator.providers._types import ChatToolCall, Request, Response, StopReason, TokenUsage
from simulator.providers.settings import ProviderSettings
from simulator.providers.wire import anthropic_messages

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS", "AnthropicProvider"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: The Messages API requires ``max_tokens``; this is sent when a request leaves it unset.
DEFAULT_MAX_TOKENS = 4096

log = logging.getLogger("dialogsim.providers.anthropic")


def _sdk_deprecated_models() -> dict[str, str]:
    """The SDK's table of deprecated models and their end-of-life dates.

    It is not public API and has moved between releases (``resources.messages.messages``
    re-exported it up to 2.14; 2.15 keeps it in ``_data``), so look in each known place and
    fall back to no warnings rather than break on an SDK upgrade.
    """
    for where in ("anthropic._data", "anthropic.resources.messages.messages"):
        try:
            table = getattr(importlib.import_module(where), "DEPRECATED_MODELS", None)
        except ImportError:
            continue
        if isinstance(table, dict):
            return {str(k): str(v) for k, v in table.items()}
    return {}


DEPRECATED_MODELS = _sdk_deprecated_models()

_STOP = {
    "end_turn": StopReason.END,
    "tool_use": StopReason.TOOL_CALLS,
    "max_tokens": StopReason.MAX_TOKENS,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
    "stop_sequence": StopReason.STOP_SEQUENCE,
    "refusal": StopReason.REFUSAL,
}


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Usage(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct):
    content: list[_Block]
    usage: _Usage
    model: str = ""
    stop_reason: str | None = None


_decoder = msgspec.json.Decoder(_Message)
_encoder = msgspec.json.Encoder()


def build_body(request: Request) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for ``request`` (temperature/top_p/seed are not sent)."""
    system, turns = anthropic_messages(request.messages)
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        body["system"] = system
    tools = [
        {"name": t.name, "input_schema": send_schema(t.parameters)}
        | ({"description": t.description} if t.description else {})
        for t in request.tools
    ]
    if request.output is not None:
        tools.append(
            {
                "name": request.output.name,
                "description": request.output.description or "Give the answer as this structured object.",
                "input_schema": send_schema(request.output.schema),
            }
        )
        body["tool_choice"] = {"type": "tool", "name": request.output.name}
    if tools:
        body["tools"] = tools
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    return body


def parse_body(data: bytes, request: Request) -> Response:
    """Decode a Messages API reply. Raises BadResponse for anything that is not one."""
    try:
        message = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise BadResponse(f"reply body is not a Messages API message: {exc}", model=request.model) from None
    texts: list[str] = []
    calls: list[ChatToolCall] = []
    structured: str | None = None
    for i, block in enumerate(message.content):
        if block.type == "text":
            if block.text is None:
                raise BadResponse(f"content[{i}]: text block without text", model=request.model)
            texts.append(block.text)
        elif block.type == "tool_use":
            if not block.id or not block.name or not isinstance(block.input, dict):
                raise BadResponse(
                    f"content[{i}]: tool_use block needs an id, a name and an input object", model=request.model
                )
            if request.output is not None and block.name == request.output.name and structured is None:
                structured = _encoder.encode(block.input).decode()
            else:
                calls.append(ChatToolCall(id=block.id, name=block.name, arguments=block.input))
        # Other block kinds (thinking, server tools) carry nothing a dialogue needs.
    stop = _STOP.get(message.stop_reason or "", StopReason.OTHER)
    if structured is not None and stop is StopReason.TOOL_CALLS and not calls:
        stop = StopReason.END
    u = message.usage
    usage = TokenUsage(
        input_tokens=u.input_tokens + (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0),
        output_tokens=u.output_tokens,
    )
    return Response(
        text=structured if structured is not None else "".join(texts),
        tool_calls=calls,
        stop_reason=stop,
        usage=usage,
        model=message.model or request.model,
        provider="anthropic",
    )


@provider(
    "anthropic",
    key_env="ANTHROPIC_API_KEY",
    base_url_env="ANTHROPIC_BASE_URL",
    default_base_url=DEFAULT_BASE_URL,
)
class AnthropicProvider:
    """``AsyncAnthropic`` clients for one endpoint, one per ``SHARD_SIZE`` requests in flight
    (SDK retries off: the LLM client retries, once, for everyone)."""

    name = "anthropic"

    def __init__(self, settings: ProviderSettings) -> None:
        if settings.api_key is None:
            raise ConfigError("anthropic: no API key; set ANTHROPIC_API_KEY or pass --api-key")
        self._secret = settings.api_key.reveal()
        secret, base_url = self._secret, settings.base_url or DEFAULT_BASE_URL
        self._clients = sdk_shards(
            anthropic.AsyncAnthropic,
            anthropic.DefaultAsyncHttpxClient,
            api_key=secret,
            base_url=base_url,
            timeout=settings.timeout,
            in_flight=settings.max_concurrency,
        )
        self._warned: set[str] = set()

    def _check_model(self, model: str) -> None:
        if model in self._warned:
            return
        self._warned.add(model)
        end = DEPRECATED_MODELS.get(model)
        if end is not None:
            log.warning("anthropic:%s is deprecated and reaches end-of-life on %s", model, end)
            # Said once above; the SDK would repeat it as a DeprecationWarning on every call.
            warnings.filterwarnings("ignore", message=f"The model '{model}' is deprecated", category=DeprecationWarning)

    async def send(self, request: Request) -> Response:
        self._check_model(request.model)
        body = build_body(request)
        with self._clients.lease() as client:
            return await send_with_sdk(
                anthropic,
                anthropic.AnthropicError,
                lambda: post_json(client, "/v1/messages", body, request.extra),
                lambda content: parse_body(content, request),
                provider=self.name,
                model=request.model,
                secret=self._secret,
            )

    async def aclose(self) -> None:
        await self._clients.aclose(lambda client: client.close())
