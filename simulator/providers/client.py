"""The one entry point brains call: ``await client.complete(request) -> Response``.

:class:`LLMClient` composes, once for every provider: the response cache, the limits
of its provider and model (concurrency, requests and tokens per minute), the
whole-request timeout, retries with backoff that honour ``retry-after``, cost from the
price table, and usage accounting. A model with several base URLs is a
:class:`~simulator.providers.fleet.Fleet`: one SDK client per endpoint, requests to the
one with the fewest in flight, failing endpoints taken out and probed back in. The
runner gives each role a view of the shared client with :meth:`LLMClient.bind` (its
role name, the dialogue's :class:`UsageMeter`, and a callback that publishes a
``ProviderCall`` event per call).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

import anyio
import msgspec

from schemas import ProviderCall
from schemas import Usage as RecordUsage
from schemas.errors import UsageError
from simulator.providers._errors import ProviderError, ProviderTimeout, RateLimited
from simulator.providers._registry import Provider, provider_info
from simulator.providers._types import Request, Response
from simulator.providers.cache import ResponseCache
from simulator.providers.cost import PriceTable
from simulator.providers.fleet import Endpoint, EndpointStats, EndpointTally, Fleet
from simulator.providers.limits import Clock, Limiter, RetryPolicy
from simulator.providers.models import ModelSpec, parse_model
from simulator.providers.settings import ProviderSettings

__all__ = ["CallHook", "ClientPool", "LLMClient", "UsageMeter", "UsageTotals", "open_client"]

log = logging.getLogger("dialogsim.providers")

#: Called after every answered call (cache hits too) with the event to publish.
CallHook = Callable[[ProviderCall], Awaitable[object]]

_size_encoder = msgspec.json.Encoder()


class UsageTotals(msgspec.Struct, kw_only=True):
    """What a set of calls used.

    ``requests`` were answered by the provider; ``cache_hits`` came from the cache and
    add no tokens or cost. ``unpriced_requests`` had no price, so ``cost_usd`` leaves
    them out. ``retries`` and ``failures`` count attempts that failed and calls that
    failed for good.
    """

    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0
    retries: int = 0
    failures: int = 0

    def as_record(self) -> RecordUsage:
        """The totals as a dataset record's ``usage``."""
        return RecordUsage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            requests=self.requests,
            cost_usd=self.cost_usd,
        )


class UsageMeter:
    """Accumulates usage, overall and per model; a :meth:`child` also adds to its parent.

    The runner keeps one meter per run and a child per dialogue.
    """

    def __init__(self, parent: UsageMeter | None = None) -> None:
        self._parent = parent
        self._totals = UsageTotals()
        self._by_model: dict[str, UsageTotals] = {}

    def child(self) -> UsageMeter:
        return UsageMeter(parent=self)

    @property
    def totals(self) -> UsageTotals:
        """A copy of the totals so far."""
        return msgspec.structs.replace(self._totals)

    def by_model(self) -> dict[str, UsageTotals]:
        """A copy of the totals per ``provider:model``."""
        return {name: msgspec.structs.replace(t) for name, t in self._by_model.items()}

    def _apply(self, model: str, update: Callable[[UsageTotals], None]) -> None:
        meter: UsageMeter | None = self
        while meter is not None:
            update(meter._totals)
            update(meter._by_model.setdefault(model, UsageTotals()))
            meter = meter._parent

    def record(self, model: str, response: Response) -> None:
        def update(t: UsageTotals) -> None:
            if response.cached:
                t.cache_hits += 1
                return
            t.requests += 1
            t.input_tokens += response.usage.input_tokens
            t.output_tokens += response.usage.output_tokens
            if response.cost_usd is None:
                t.unpriced_requests += 1
            else:
                t.cost_usd += response.cost_usd

        self._apply(model, update)

    def record_retry(self, model: str) -> None:
        def update(t: UsageTotals) -> None:
            t.retries += 1

        self._apply(model, update)

    def record_failure(self, model: str) -> None:
        def update(t: UsageTotals) -> None:
            t.failures += 1

        self._apply(model, update)


def estimate_tokens(request: Request) -> int:
    """A rough input size (four bytes of JSON per token) for the tokens-per-minute bucket."""
    size = len(_size_encoder.encode(request.messages)) + len(_size_encoder.encode(request.tools))
    if request.output is not None:
        size += len(_size_encoder.encode(request.output.schema))
    return size // 4 + 1


class _Shared:
    """What every view of one client shares: endpoints, limits, cache, prices, randomness."""

    def __init__(
        self,
        fleet: Fleet,
        spec: ModelSpec,
        settings: ProviderSettings,
        *,
        limiter: Limiter,
        cache: ResponseCache | None,
        prices: PriceTable,
        rng: random.Random,
    ) -> None:
        self.fleet = fleet
        self.spec = spec
        self.settings = settings
        self.limiter = limiter
        self.cache = cache
        self.prices = prices
        self.rng = rng
        self.policy = RetryPolicy(
            max_retries=settings.max_retries, base_delay=settings.backoff_base, max_delay=settings.backoff_max
        )
        self.closed = False


class LLMClient:
    """Calls one model through its provider with limits, retries, timeout, cache and accounting.

    Build one per model with :func:`open_client` (or :class:`ClientPool`), give each
    role a :meth:`bind` view, and close the client when the run ends. ``clock`` and
    ``rng`` exist for tests (backoff waits, endpoint time outs, and the jitter); jitter
    only moves retries in time, never changes content.

    ``provider`` is one provider, or one per endpoint of ``settings.endpoints`` (a fleet).
    ``max_concurrency`` applies to each endpoint; ``rpm``, ``tpm`` and the pause after a
    429 to the model as a whole.
    """

    def __init__(
        self,
        provider: Provider | Sequence[Provider],
        spec: ModelSpec,
        settings: ProviderSettings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
        meter: UsageMeter | None = None,
        on_call: CallHook | None = None,
        role: str = "",
    ) -> None:
        providers = [provider] if not isinstance(provider, Sequence) else list(provider)
        urls = settings.endpoints
        if len(providers) != len(urls):
            raise ValueError(f"{len(providers)} providers for {len(urls)} endpoints")
        limiter = Limiter(
            max_concurrency=settings.max_concurrency * len(urls), rpm=settings.rpm, tpm=settings.tpm, clock=clock
        )
        fleet = Fleet(
            spec,
            list(zip(urls, providers, strict=True)),
            clock=limiter.clock,
            max_in_flight=settings.max_concurrency,
            failures=settings.endpoint_failures,
            cooldown=settings.endpoint_cooldown,
            cooldown_max=settings.endpoint_cooldown_max,
        )
        if cache is None and settings.cache_dir is not None:
            cache = ResponseCache(settings.cache_dir)
        self._shared = _Shared(
            fleet,
            spec,
            settings,
            limiter=limiter,
            cache=cache,
            prices=prices or PriceTable(settings.prices),
            rng=rng or random.Random(),
        )
        self._owner = True
        self.meter = meter
        self.on_call = on_call
        self.role = role

    @property
    def spec(self) -> ModelSpec:
        return self._shared.spec

    @property
    def limiter(self) -> Limiter:
        return self._shared.limiter

    @property
    def fleet(self) -> Fleet:
        """The model's endpoints (one unless several base URLs were given)."""
        return self._shared.fleet

    @property
    def cache(self) -> ResponseCache | None:
        return self._shared.cache

    def bind(
        self,
        *,
        role: str | None = None,
        meter: UsageMeter | None = None,
        on_call: CallHook | None = None,
    ) -> LLMClient:
        """A view sharing this client's provider, limits and cache, with its own role, meter and hook.

        Arguments left at ``None`` keep this view's values. Closing a view does nothing.
        """
        view = object.__new__(LLMClient)
        view._shared = self._shared
        view._owner = False
        view.role = self.role if role is None else role
        view.meter = self.meter if meter is None else meter
        view.on_call = self.on_call if on_call is None else on_call
        return view

    async def complete(self, request: Request) -> Response:
        """Answer ``request`` from the cache or the provider.

        Retryable failures (429, 5xx, overloaded, timeouts, connection errors, malformed
        bodies) are retried with backoff up to ``max_retries`` times; the last error is
        then raised. Raises a :class:`ProviderError` subclass; never anything else from
        the provider.
        """
        shared = self._shared
        if shared.closed:
            raise UsageError("LLMClient used after aclose()")
        if not request.model:
            request = msgspec.structs.replace(request, model=shared.spec.model)
        key: str | None = None
        if shared.cache is not None:
            key = shared.cache.key(shared.spec.provider, request)
            hit = shared.cache.get(key)
            if hit is not None:
                response = msgspec.structs.replace(hit, cached=True, cost_usd=0.0, latency_s=0.0, attempts=0)
                await self._account(response)
                return response
        estimate = estimate_tokens(request) if shared.settings.tpm else 0
        attempt = 0
        tried: list[Endpoint] = []  # a retry goes to an endpoint not tried yet, when one can take it
        while True:
            try:
                response = await self._attempt(request, estimate, tried)
                break
            except ProviderError as error:
                if not error.retryable or attempt >= shared.policy.max_retries:
                    if self.meter is not None:
                        self.meter.record_failure(str(shared.spec))
                    log.warning(
                        "%s: call failed after %d attempt(s): %s (%s)",
                        shared.spec,
                        attempt + 1,
                        type(error).__name__,
                        error.detail,
                    )
                    raise
                delay = shared.policy.delay(attempt, error.retry_after, shared.rng)
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    shared.limiter.pause(delay)
                if self.meter is not None:
                    self.meter.record_retry(str(shared.spec))
                log.info(
                    "%s: %s (%s); retry %d of %d in %.2f s",
                    shared.spec,
                    type(error).__name__,
                    error.detail,
                    attempt + 1,
                    shared.policy.max_retries,
                    delay,
                )
                await shared.limiter.clock.sleep(delay)
                attempt += 1
        cost = shared.prices.cost(shared.spec.provider, request.model, response.usage)
        response = msgspec.structs.replace(response, cost_usd=cost, attempts=attempt + 1)
        if shared.cache is not None and key is not None:
            shared.cache.put(key, response)
        await self._account(response)
        return response

    async def _attempt(self, request: Request, estimate: int, tried: list[Endpoint]) -> Response:
        shared = self._shared
        timeout = shared.settings.timeout
        async with shared.limiter.slot(estimate), shared.fleet.lease(avoid=tried) as endpoint:
            tried.append(endpoint)
            started = time.perf_counter()
            try:
                with anyio.fail_after(timeout):
                    response = await endpoint.provider.send(request)
            except TimeoutError:
                raise ProviderTimeout(
                    f"no complete answer within {timeout:g} s",
                    provider=shared.spec.provider,
                    model=request.model,
                ) from None
            latency = time.perf_counter() - started
        if estimate:
            shared.limiter.settle_tokens(estimate, response.usage.total)
        return msgspec.structs.replace(response, latency_s=latency, provider=shared.spec.provider)

    async def _account(self, response: Response) -> None:
        spec = str(self._shared.spec)
        if self.meter is not None:
            self.meter.record(spec, response)
        if self.on_call is not None:
            await self.on_call(
                ProviderCall(
                    role=self.role,
                    model=spec,
                    input_tokens=response.usage.input_tokens,
                    output_tokens=response.usage.output_tokens,
                    latency_ms=response.latency_s * 1000.0,
                    cost_usd=response.cost_usd,
                    cached=response.cached,
                )
            )

    async def aclose(self) -> None:
        """Close the endpoints' HTTP clients (a no-op on a :meth:`bind` view and when closed)."""
        if self._owner and not self._shared.closed:
            self._shared.closed = True
            await self._shared.fleet.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def open_client(
    model: ModelSpec | str,
    settings: ProviderSettings,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    meter: UsageMeter | None = None,
    on_call: CallHook | None = None,
    role: str = "",
) -> LLMClient:
    """A client for ``model`` (``provider:model`` or a ModelSpec) with ``settings``.

    Several base URLs (``settings.base_urls``) give one provider, so one SDK client, per
    endpoint. Raises ConfigError for an unknown provider or a missing key.
    """
    spec = parse_model(model) if isinstance(model, str) else model
    factory = provider_info(spec.provider).factory
    if settings.base_urls:
        providers: list[Provider] = [
            factory(dataclasses.replace(settings, base_url=url, base_urls=())) for url in settings.base_urls
        ]
    else:
        providers = [factory(settings)]
    return LLMClient(providers, spec, settings, clock=clock, rng=rng, meter=meter, on_call=on_call, role=role)


class ClientPool:
    """One shared client per model and base URLs, so roles on the same model share its limits.

    ``pool.get(spec, settings)`` returns the same client for the same model and base URLs;
    close the pool when the run ends.
    """

    def __init__(self, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng
        self._clients: dict[tuple[str, tuple[str | None, ...]], LLMClient] = {}

    def get(self, model: ModelSpec | str, settings: ProviderSettings) -> LLMClient:
        spec = parse_model(model) if isinstance(model, str) else model
        key = (str(spec), settings.endpoints)
        client = self._clients.get(key)
        if client is None:
            client = open_client(spec, settings, clock=self._clock, rng=self._rng)
            self._clients[key] = client
        return client

    def endpoint_stats(self) -> list[EndpointStats]:
        """Requests, errors and latency of every endpoint of every open client, by model."""
        return [s for client in self._clients.values() for s in client.fleet.stats()]

    def endpoint_tallies(self) -> list[EndpointTally]:
        """The running figures behind :meth:`endpoint_stats`, to merge with other processes' (Ray workers)."""
        return [t for client in self._clients.values() for t in client.fleet.tallies()]

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
