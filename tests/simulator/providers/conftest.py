"""Helpers for the provider tests: a fake clock, and one description per wire protocol so
the same scenario runs through both official SDKs against the loopback server."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from simulator.providers import LLMClient, ModelPrice, ProviderSettings, Secret, open_client
from simulator.providers.loopback import (
    LoopbackServer,
    Reply,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)

#: A key no test output may ever contain.
CANARY_KEY = "sk-canary-7f3a9c1e5b2d4f60"


class FakeClock:
    """The limiter's clock: sleeps return at once, advance the time and are recorded."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await anyio.lowlevel.checkpoint()


@dataclass(frozen=True)
class Protocol:
    """How one provider's wire protocol looks, for tests that run on both."""

    name: str
    model: str

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.model}"

    def base_url(self, server: LoopbackServer) -> str:
        return server.base_url if self.name == "anthropic" else server.openai_base_url

    def ok(
        self,
        text: str = "ok",
        *,
        tool_calls: list[tuple[str, str, dict[str, Any]]] | None = None,
        input_tokens: int = 10,
        output_tokens: int = 5,
    ) -> Reply:
        if self.name == "anthropic":
            body = anthropic_message(
                text, tool_calls=tool_calls or [], input_tokens=input_tokens, output_tokens=output_tokens
            )
        else:
            body = openai_completion(
                text or None,
                tool_calls=list(tool_calls or []),
                prompt_tokens=input_tokens,
                completion_tokens=output_tokens,
            )
        return Reply(body=body)

    def error(self, status: int, kind: str, message: str = "try later", headers: dict[str, str] | None = None) -> Reply:
        if self.name == "anthropic":
            return anthropic_error(status, kind, message, headers)
        return openai_error(status, message, kind, headers)


ANTHROPIC = Protocol("anthropic", "claude-sonnet-5")
OPENAI = Protocol("openai", "gpt-4.1")
PROTOCOLS = [ANTHROPIC, OPENAI]


@pytest.fixture(params=PROTOCOLS, ids=lambda p: p.name)
def proto(request: pytest.FixtureRequest) -> Protocol:
    param: Protocol = request.param
    return param


def settings_for(
    proto: Protocol,
    server: LoopbackServer,
    *,
    max_retries: int = 3,
    timeout: float = 10.0,
    max_concurrency: int = 8,
    rpm: float | None = None,
    tpm: float | None = None,
    cache_dir: Path | None = None,
    prices: dict[str, ModelPrice] | None = None,
) -> ProviderSettings:
    return ProviderSettings(
        api_key=Secret(CANARY_KEY),
        base_url=proto.base_url(server),
        max_retries=max_retries,
        timeout=timeout,
        max_concurrency=max_concurrency,
        rpm=rpm,
        tpm=tpm,
        cache_dir=cache_dir,
        prices=prices or {},
    )


@asynccontextmanager
async def client_for(
    proto: Protocol, server: LoopbackServer, clock: FakeClock | None = None, seed: int = 7, **kwargs: Any
) -> AsyncIterator[LLMClient]:
    async with open_client(
        proto.spec, settings_for(proto, server, **kwargs), clock=clock or FakeClock(), rng=random.Random(seed)
    ) as client:
        yield client
