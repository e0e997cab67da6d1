"""A bench's loopback model endpoint run in a subprocess (its own core), so the client side is what is measured."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyio
import anyio.abc


class EndpointProcess:
    """``python -m MODULE --serve --latency-ms L [extra...]`` in a subprocess; ``base_url`` once it printed its port."""

    def __init__(self, module: str, latency: float, extra: Sequence[str] = (), start_timeout: float = 60) -> None:
        self.command = [sys.executable, "-m", module, "--serve", "--latency-ms", str(latency * 1000), *extra]
        self.latency = latency
        self.start_timeout = start_timeout
        self.process: anyio.abc.Process | None = None
        self.base_url = ""

    async def __aenter__(self) -> EndpointProcess:
        self.process = await anyio.open_process(self.command)
        assert self.process.stdout is not None
        line = b""
        with anyio.fail_after(self.start_timeout):
            while not line.endswith(b"\n"):
                line += await self.process.stdout.receive()
        self.base_url = f"http://127.0.0.1:{int(line)}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        await self.process.wait()
        await self.process.aclose()
