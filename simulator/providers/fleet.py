"""Fleets: one model served by several endpoints (base URLs), each with its own SDK client.

:class:`Fleet` sits between the model's :class:`~simulator.providers.limits.Limiter`
(which keeps the rate limits per model, across endpoints) and the providers:

- a request goes to the endpoint with the fewest requests in flight (ties: the one
  picked longest ago), never beyond ``max_in_flight`` on one endpoint; a retry prefers
  an endpoint the call has not tried yet;
- an endpoint whose requests fail ``failures`` times in a row with an endpoint fault
  (connection errors, 5xx, timeouts: :class:`ProviderUnavailable` and
  :class:`ProviderTimeout`) is taken out for ``cooldown`` seconds. Then one request at a
  time probes it: an answer puts it back, a fault takes it out again for twice as long
  (up to ``cooldown_max``). Any answer from the server (also a 4xx or a 429) shows it is
  alive. A model with one endpoint never takes it out: there is nowhere else to go, and
  the client's retry policy alone decides;
- when every endpoint is out, an attempt fails at once with a retryable
  :class:`ProviderUnavailable` whose ``retry_after`` is the time until the first probe,
  so the client's retry policy (the one mechanism for waiting) waits exactly that long.

Time out and cooldowns run on the limiter's clock, so tests drive them with a fake
clock. Each endpoint keeps an :class:`EndpointTally` (requests, errors, times taken out,
a DDSketch of latencies: bounded memory, and mergeable, so tallies from several
processes add up); :meth:`Fleet.stats` gives the plain figures for the run's summary
(and its ``endpoint_stats`` log lines). Endpoint events (``endpoint_out``,
``endpoint_probe``, ``endpoint_back``, ``endpoint_probe_failed``) are logged under
``dialogsim.simulator.providers.fleet``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import msgspec
from ddsketch import DDSketch

from simulator.log import get_logger
from simulator.providers._errors import ProviderError, ProviderTimeout, ProviderUnavailable
from simulator.providers._registry import Provider
from simulator.providers.limits import Clock
from simulator.providers.models import ModelSpec

__all__ = ["Endpoint", "EndpointStats", "EndpointTally", "Fleet", "LatencyMs", "display_url"]

log = get_logger(__name__)

#: Errors that say the endpoint itself is in trouble, not the request or the model's quota.
_FAULTS = (ProviderUnavailable, ProviderTimeout)
#: Relative accuracy of the latency percentiles (1%).
_ACCURACY = 0.01


def display_url(url: str | None) -> str:
    """``url`` as shown in summaries and logs: no user, password, query or fragment."""
    if url is None:
        return "(provider default)"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class LatencyMs(msgspec.Struct, frozen=True):
    """Latency percentiles in milliseconds (within 1% of the true value)."""

    p50: float
    p90: float
    p99: float


class EndpointStats(msgspec.Struct, kw_only=True):
    """One endpoint of one model over a run.

    ``requests`` were sent to it (every attempt, retries included), ``errors`` of them
    failed (any error), ``ejections`` counts the times it was taken out of service, and
    ``latency_ms`` are the percentiles of its successful requests (None when none was).
    """

    model: str
    endpoint: str
    requests: int = 0
    errors: int = 0
    ejections: int = 0
    latency_ms: LatencyMs | None = None


class EndpointTally:
    """The running figures of one endpoint; :meth:`merge` adds another process's tally."""

    def __init__(self, model: str, endpoint: str) -> None:
        self.model = model
        self.endpoint = endpoint
        self.requests = 0
        self.errors = 0
        self.ejections = 0
        self.latency = DDSketch(relative_accuracy=_ACCURACY)

    def add_latency(self, seconds: float) -> None:
        self.latency.add(max(seconds, 1e-9))

    def merge(self, other: EndpointTally) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.ejections += other.ejections
        self.latency.merge(other.latency)

    def stats(self) -> EndpointStats:
        latency = None
        if self.latency.count:

            def ms(q: float) -> float:
                return round((self.latency.get_quantile_value(q) or 0.0) * 1000.0, 3)

            latency = LatencyMs(p50=ms(0.5), p90=ms(0.9), p99=ms(0.99))
        return EndpointStats(
            model=self.model,
            endpoint=self.endpoint,
            requests=self.requests,
            errors=self.errors,
            ejections=self.ejections,
            latency_ms=latency,
        )


class Endpoint:
    """One base URL of a model: its provider (SDK client), load, health and tally."""

    def __init__(self, url: str | None, provider: Provider, tally: EndpointTally, cooldown: float) -> None:
        self.url = url
        self.name = display_url(url)
        self.provider = provider
        self.tally = tally
        self.in_flight = 0
        self.max_in_flight = 0
        #: Endpoint faults in a row while in service.
        self.failures = 0
        #: Out of service until then (the fleet's clock); past it, one probe at a time.
        self.out_until: float | None = None
        self.cooldown = cooldown
        self.last_pick = 0

    def __repr__(self) -> str:
        return f"Endpoint({self.name!r}, in_flight={self.in_flight}, out_until={self.out_until})"


class Fleet:
    """The endpoints of one model and the choice between them (see the module docstring)."""

    def __init__(
        self,
        spec: ModelSpec,
        endpoints: Sequence[tuple[str | None, Provider]],
        *,
        clock: Clock,
        max_in_flight: int,
        failures: int = 3,
        cooldown: float = 10.0,
        cooldown_max: float = 300.0,
    ) -> None:
        if not endpoints:
            raise ValueError("a fleet needs at least one endpoint")
        self.spec = spec
        model = str(spec)
        self.endpoints = [Endpoint(url, p, EndpointTally(model, display_url(url)), cooldown) for url, p in endpoints]
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._eject_after = failures if len(self.endpoints) > 1 else None
        self._cooldown = cooldown
        self._cooldown_max = cooldown_max
        self._changed: anyio.Event | None = None
        self._picks = 0

    @asynccontextmanager
    async def lease(self, avoid: Collection[Endpoint] = ()) -> AsyncIterator[Endpoint]:
        """Hold one request's place on the chosen endpoint; the block sends the request.

        A :class:`ProviderError` leaving the block counts against the endpoint (only
        faults can take it out); a normal exit records the latency. Raises
        ProviderUnavailable (retryable) at once when every endpoint is out of service.
        """
        endpoint = await self._choose(avoid)
        probe = endpoint.out_until is not None
        if probe:
            log.info("endpoint_probe", model=str(self.spec), endpoint=endpoint.name)
        endpoint.in_flight += 1
        endpoint.max_in_flight = max(endpoint.max_in_flight, endpoint.in_flight)
        endpoint.tally.requests += 1
        started = time.perf_counter()
        try:
            yield endpoint
        except ProviderError as error:
            endpoint.tally.errors += 1
            if isinstance(error, _FAULTS):
                self._fault(endpoint, error, probe)
            else:
                self._alive(endpoint, probe)
            raise
        else:
            endpoint.tally.add_latency(time.perf_counter() - started)
            self._alive(endpoint, probe)
        finally:
            endpoint.in_flight -= 1
            self._notify()

    def _usable(self, endpoint: Endpoint, now: float) -> bool:
        if endpoint.in_flight >= self.max_in_flight:
            return False
        if endpoint.out_until is not None:
            return now >= endpoint.out_until and endpoint.in_flight == 0  # one probe at a time
        return True

    async def _choose(self, avoid: Collection[Endpoint]) -> Endpoint:
        while True:
            now = self._clock.now()
            usable = [e for e in self.endpoints if self._usable(e, now)]
            if usable:
                chosen = min(usable, key=lambda e: (e in avoid, e.in_flight, e.last_pick))
                self._picks += 1
                chosen.last_pick = self._picks
                return chosen
            out = [e.out_until for e in self.endpoints if e.out_until is not None and now < e.out_until]
            if len(out) == len(self.endpoints):
                wait = min(out) - now
                raise ProviderUnavailable(
                    f"all {len(out)} endpoints are out of service after repeated failures; "
                    f"the first is probed again in {wait:.1f} s",
                    provider=self.spec.provider,
                    model=self.spec.model,
                    retry_after=wait,
                )
            await self._wait(min(out, default=None))

    async def _wait(self, deadline: float | None) -> None:
        """Until a request ends or an endpoint's time out does (``deadline``), whichever is first."""
        if self._changed is None:
            self._changed = anyio.Event()
        changed = self._changed
        if deadline is None:
            await changed.wait()
            return

        async def alarm() -> None:
            await self._clock.sleep(max(0.0, deadline - self._clock.now()))
            changed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(alarm)
            await changed.wait()
            tg.cancel_scope.cancel()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _fault(self, endpoint: Endpoint, error: ProviderError, probe: bool) -> None:
        if self._eject_after is None:
            return
        model = str(self.spec)
        if probe:
            endpoint.cooldown = min(endpoint.cooldown * 2.0, self._cooldown_max)
            endpoint.out_until = self._clock.now() + endpoint.cooldown
            endpoint.tally.ejections += 1
            log.warning(
                "endpoint_probe_failed",
                model=model,
                endpoint=endpoint.name,
                out_for_s=endpoint.cooldown,
                error=type(error).__name__,
                detail=error.detail,
            )
            return
        if endpoint.out_until is not None:
            return  # a request sent before it was taken out: it is out already
        endpoint.failures += 1
        if endpoint.failures >= self._eject_after:
            endpoint.failures = 0
            endpoint.out_until = self._clock.now() + endpoint.cooldown
            endpoint.tally.ejections += 1
            log.warning(
                "endpoint_out",
                model=model,
                endpoint=endpoint.name,
                failures=self._eject_after,
                out_for_s=endpoint.cooldown,
                error=type(error).__name__,
                detail=error.detail,
            )

    def _alive(self, endpoint: Endpoint, probe: bool) -> None:
        endpoint.failures = 0
        if probe:
            endpoint.out_until = None
            endpoint.cooldown = self._cooldown
            log.info("endpoint_back", model=str(self.spec), endpoint=endpoint.name)

    def in_service(self, endpoint: Endpoint) -> bool:
        """Whether ``endpoint`` takes requests now (not out of service)."""
        return endpoint.out_until is None or self._clock.now() >= endpoint.out_until

    def tallies(self) -> list[EndpointTally]:
        return [e.tally for e in self.endpoints]

    def stats(self) -> list[EndpointStats]:
        """The figures of every endpoint so far, in the order the endpoints were given."""
        return [e.tally.stats() for e in self.endpoints]

    async def aclose(self) -> None:
        """Close every endpoint's SDK client."""
        for endpoint in self.endpoints:
            await endpoint.provider.aclose()
