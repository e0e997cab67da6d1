"""Running at scale: a concurrency cap, request and token rates, retries with backoff.

Everything runs on the event loop's clock (``anyio.current_time`` / ``anyio.sleep``)
behind a small :class:`Clock` protocol, so tests inject a fake clock and assert on the
waits instead of measuring wall time. No threads, no locks: a bucket hands out
reservations and whoever overdraws it waits for the refill, which keeps waiters in
arrival order.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import anyio

from schemas.errors import UsageError

__all__ = [
    "AnyioClock",
    "Clock",
    "Limiter",
    "RetryPolicy",
    "TokenBucket",
    "parse_retry_after",
]


class Clock(Protocol):
    """Monotonic seconds and a way to wait; the default is the event loop's clock."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class AnyioClock:
    """The running event loop's clock."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class TokenBucket:
    """``per_minute`` units per minute, with a burst of ``burst_seconds`` worth of them.

    :meth:`acquire` takes its units at once, possibly overdrawing the bucket, and then
    waits until the refill has paid the debt back; later callers see the debt and wait
    longer, so waiters go in arrival order. :meth:`adjust` settles an estimate after the
    fact (tokens per minute: the real usage is only known from the response).
    """

    def __init__(self, per_minute: float, clock: Clock, *, burst_seconds: float = 10.0) -> None:
        if per_minute <= 0:
            raise UsageError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._level = self.capacity
        self._updated = clock.now()

    def _refill(self) -> None:
        now = self._clock.now()
        self._level = min(self.capacity, self._level + (now - self._updated) * self.rate)
        self._updated = now

    @property
    def level(self) -> float:
        """Units available now; negative while waiters are paying back a debt."""
        self._refill()
        return self._level

    async def acquire(self, amount: float) -> None:
        self._refill()
        self._level -= amount
        if self._level < 0:
            await self._clock.sleep(-self._level / self.rate)

    def adjust(self, amount: float) -> None:
        """Take ``amount`` more units (negative: give them back) without waiting."""
        self._refill()
        self._level = min(self.capacity, self._level - amount)


class Limiter:
    """The limits of one provider and model, shared by every call to it.

    ``max_concurrency`` requests in flight at most (an ``anyio.CapacityLimiter``),
    ``rpm`` requests and ``tpm`` tokens per minute (token buckets; ``None``: no limit).
    After a 429 the client calls :meth:`pause` so every caller, not just the one that
    was refused, waits out the server's ``retry-after``.
    """

    def __init__(
        self,
        *,
        max_concurrency: int,
        rpm: float | None = None,
        tpm: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or AnyioClock()
        self._slots = anyio.CapacityLimiter(max_concurrency)
        self._requests = TokenBucket(rpm, self.clock) if rpm else None
        self._tokens = TokenBucket(tpm, self.clock) if tpm else None
        self._resume_at = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def max_concurrency(self) -> int:
        return int(self._slots.total_tokens)

    def pause(self, seconds: float) -> None:
        """Hold every new request back for ``seconds`` from now."""
        self._resume_at = max(self._resume_at, self.clock.now() + seconds)

    def settle_tokens(self, estimated: int, actual: int) -> None:
        """Correct the token bucket once the real usage of a request is known."""
        if self._tokens is not None:
            self._tokens.adjust(actual - estimated)

    @asynccontextmanager
    async def slot(self, estimated_tokens: int = 0) -> AsyncIterator[None]:
        """Hold a concurrency slot, with the rate limits paid, for one request."""
        async with self._slots:
            wait = self._resume_at - self.clock.now()
            if wait > 0:
                await self.clock.sleep(wait)
            if self._requests is not None:
                await self._requests.acquire(1)
            if self._tokens is not None and estimated_tokens > 0:
                await self._tokens.acquire(estimated_tokens)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, unless the server said how long to wait.

    Attempt ``n`` (0-based) that failed waits ``uniform(0, min(max_delay, base * 2**n))``
    seconds, or the server's ``retry-after`` (capped at ``max_retry_after``).
    """

    max_retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2.0 ** min(attempt, 32)))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date).

    ``headers`` must look names up case-insensitively (httpx headers do).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))
