"""LLM providers: one provider-neutral request/response, Anthropic and OpenAI(-compatible) behind it.

A brain builds a :class:`Request` of :class:`ChatMessage` values (plus tools, an
optional structured-output schema and sampling settings) and awaits
``client.complete(request)`` for a :class:`Response`, or
``complete_structured(client, request, MyStruct)`` for a decoded Struct. The client
owns rate limits, retries, timeouts, the response cache, cost and usage accounting.

Typical wiring at the command line's edge::

    spec = parse_model("openai:gpt-4.1")
    settings = settings_from_env(spec, os.environ, base_url=flags.base_url)  # ConfigError before any work
    async with open_client(spec, settings) as client:
        user_llm = client.bind(role="user", meter=dialogue_meter, on_call=publish)
        reply = await user_llm.complete(Request(messages=[ChatMessage.user("hi")]))
"""

from __future__ import annotations

from simulator.providers._errors import (
    BadResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StructuredOutputError,
)
from simulator.providers._registry import (
    ENTRY_POINT_GROUP,
    Provider,
    ProviderFactory,
    ProviderInfo,
    known_providers,
    provider,
    provider_info,
)
from simulator.providers._types import (
    ChatMessage,
    ChatToolCall,
    OutputSchema,
    Request,
    Response,
    Role,
    StopReason,
    TokenUsage,
    ToolDef,
)
from simulator.providers.cache import ResponseCache
from simulator.providers.client import CallHook, ClientPool, LLMClient, UsageMeter, UsageTotals, open_client
from simulator.providers.cost import BUILTIN_PRICES, ModelPrice, PriceTable, load_prices
from simulator.providers.fleet import EndpointStats, Fleet, LatencyMs
from simulator.providers.limits import AnyioClock, Clock, Limiter, RetryPolicy, TokenBucket
from simulator.providers.models import ModelSpec, parse_model
from simulator.providers.settings import PLACEHOLDER_KEY, ProviderSettings, Secret, settings_from_env
from simulator.providers.structured import complete_structured, decode_structured, output_schema

__all__ = [
    "BUILTIN_PRICES",
    "ENTRY_POINT_GROUP",
    "PLACEHOLDER_KEY",
    "AnyioClock",
    "BadResponse",
    "CallHook",
    "ChatMessage",
    "ChatToolCall",
    "ClientPool",
    "Clock",
    "EndpointStats",
    "Fleet",
    "LLMClient",
    "LatencyMs",
    "Limiter",
    "ModelPrice",
    "ModelSpec",
    "OutputSchema",
    "PriceTable",
    "Provider",
    "ProviderAuthError",
    "ProviderError",
    "ProviderFactory",
    "ProviderInfo",
    "ProviderRejected",
    "ProviderSettings",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "Request",
    "Response",
    "ResponseCache",
    "RetryPolicy",
    "Role",
    "Secret",
    "StopReason",
    "StructuredOutputError",
    "TokenBucket",
    "TokenUsage",
    "ToolDef",
    "UsageMeter",
    "UsageTotals",
    "complete_structured",
    "decode_structured",
    "known_providers",
    "load_prices",
    "open_client",
    "output_schema",
    "parse_model",
    "provider",
    "provider_info",
    "settings_from_env",
]
