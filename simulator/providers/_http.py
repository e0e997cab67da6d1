"""What both providers share: HTTP status to typed error, key redaction, schema tidying, SDK client shards."""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import httpx2
import msgspec

from simulator.providers._errors import (
    BadResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from simulator.providers._types import Response
from simulator.providers.limits import parse_retry_after

__all__ = ["SHARD_SIZE", "SdkShards", "post_json", "redact", "send_schema", "send_with_sdk", "status_error"]

#: Requests in flight one SDK client (one HTTP connection pool) is sized for.
SHARD_SIZE = 16

_C = TypeVar("_C")

_MASK = "**********"
_MAX_DETAIL = 300


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, _MASK)
    return text


def _error_fields(body: object) -> tuple[str | None, str | None]:
    """``(type, message)`` from an error body of either protocol, or a bare string."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            body = inner
        elif isinstance(inner, str):
            return None, inner
        kind = body.get("type") or body.get("code")
        message = body.get("message")
        return (str(kind) if kind is not None else None), (str(message) if message is not None else None)
    if isinstance(body, str) and body.strip():
        return None, body.strip()
    return None, None


def status_error(
    *,
    provider: str,
    model: str,
    status: int,
    headers: Mapping[str, str],
    body: object,
    secret: str | None,
) -> ProviderError:
    """The typed error for an HTTP error status, with the server's ``retry-after`` if any.

    429 / ``rate_limit_error``: RateLimited; 408: ProviderTimeout; 409, 5xx, 529 and
    ``overloaded_error``: ProviderUnavailable; 401/403: ProviderAuthError; any other
    status: ProviderRejected. ``x-should-retry: false`` from the server is obeyed.
    """
    kind, message = _error_fields(body)
    detail = f"HTTP {status}" + (f" {kind}" if kind else "") + (f": {message}" if message else "")
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "…"
    detail = redact(detail, secret)
    retry_after = parse_retry_after(headers)
    cls: type[ProviderError]
    if status == 429 or kind == "rate_limit_error":
        cls = RateLimited
    elif status == 408:
        cls = ProviderTimeout
    elif status == 409 or status >= 500 or kind == "overloaded_error":
        cls = ProviderUnavailable
    elif status in (401, 403):
        cls = ProviderAuthError
    else:
        cls = ProviderRejected
    error = cls(detail, provider=provider, model=model, status=status, retry_after=retry_after)
    if headers.get("x-should-retry") == "false":
        error.retryable = False
    return error


def send_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema ready to send as tool parameters or an output format (no ``$schema`` key)."""
    return {k: v for k, v in schema.items() if k != "$schema"}


_json = msgspec.json.Encoder()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every SDK client of this process shares (what httpx builds by default).

    Each official SDK client would otherwise build its own, loading the CA bundle again:
    about 55 ms of CPU a client, and a run opens one per ``SHARD_SIZE`` requests in flight
    for each model, even for a plain ``http://`` endpoint that never uses it.
    """
    return httpx2.create_ssl_context()


def sdk_shards(
    client: Callable[..., _C],
    http_client: Callable[..., Any],
    *,
    api_key: str,
    base_url: str,
    timeout: float,
    in_flight: int,
) -> SdkShards[_C]:
    """Official SDK clients for one endpoint (``client``: ``AsyncOpenAI`` or ``AsyncAnthropic``,
    ``http_client``: that SDK's ``DefaultAsyncHttpxClient``), SDK retries off (the LLM client
    retries, once, for everyone), all on the process's one TLS context."""
    return SdkShards(
        lambda: client(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client(verify=tls_context()),
        ),
        in_flight,
    )


async def post_json(client: Any, path: str, body: Mapping[str, Any], extra: Mapping[str, Any] | None) -> Any:
    """POST ``body`` (plus ``extra`` keys) through an official SDK client's public ``post``.

    The SDK still adds the key, its headers and base URL, sends, and raises its typed
    errors; the body goes out as JSON bytes encoded once here. The typed ``create``
    methods would first walk every parameter through the SDK's TypedDict transform,
    which for a request carrying 40-50 tool schemas costs several milliseconds of CPU
    (most of a request's client cost) to produce the same JSON.
    """
    payload = {**body, **extra} if extra else body
    return await client.post(path, cast_to=httpx2.Response, content=_json.encode(payload))


async def send_with_sdk(
    sdk: Any,
    base_error: type[Exception],
    create: Callable[[], Awaitable[Any]],
    parse: Callable[[bytes], Response],
    *,
    provider: str,
    model: str,
    secret: str | None,
) -> Response:
    """Send one request through an official SDK (``anthropic`` or ``openai``: the same error
    classes) and parse its raw body; every failure becomes a typed ProviderError without the key."""
    try:
        raw = await create()
    except sdk.APIStatusError as exc:
        raise status_error(
            provider=provider,
            model=model,
            status=exc.status_code,
            headers=exc.response.headers,
            body=exc.body,
            secret=secret,
        ) from None
    except sdk.APITimeoutError:
        raise ProviderTimeout("the request timed out", provider=provider, model=model) from None
    except sdk.APIConnectionError as exc:
        cause = exc.__cause__
        reason = redact(f"{type(cause).__name__}: {cause}" if cause else "connection error", secret)
        raise ProviderUnavailable(f"connection failed ({reason})", provider=provider, model=model) from None
    except base_error as exc:
        # Anything else the SDK raises (credentials, an unexpected response) is not worth a retry.
        reason = redact(f"{type(exc).__name__}: {exc}", secret)
        raise ProviderError(f"SDK error ({reason})", provider=provider, model=model) from None
    try:
        return parse(raw.content)
    except BadResponse as exc:
        raise BadResponse(exc.detail, provider=provider, model=model, status=raw.status_code) from None


class SdkShards(Generic[_C]):
    """Enough SDK clients for ``in_flight`` requests to one endpoint, ``SHARD_SIZE`` each.

    Every request leases the client with the fewest requests in flight. Why several:
    the connection pool under each SDK client (httpcore) walks all its connections on
    every request start and end, probing each idle one's socket; with one pool of 200
    connections that walk was a fifth of the client's CPU per request. Pools of 16 keep
    it small, and each pool's keep-alive limit (the SDK's 100) then covers all its
    connections, so none is closed and reopened between requests.
    """

    def __init__(self, make: Callable[[], _C], in_flight: int) -> None:
        count = max(1, -(-in_flight // SHARD_SIZE))
        self.clients: list[_C] = [make() for _ in range(count)]
        self._busy = [0] * count

    @contextlib.contextmanager
    def lease(self) -> Iterator[_C]:
        busy = self._busy
        i = busy.index(min(busy))
        busy[i] += 1
        try:
            yield self.clients[i]
        finally:
            busy[i] -= 1

    async def aclose(self, close: Callable[[_C], Awaitable[None]]) -> None:
        for client in self.clients:
            await close(client)
