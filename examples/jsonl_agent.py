#!/usr/bin/env python3
"""An example outside agent for the ``cmd:`` way in of ``dialogsim eval``.

    dialogsim eval --agent 'cmd:python examples/jsonl_agent.py' --seed 1 --out evals/cmd

A standalone program: dialogsim starts it once per dialogue and speaks the JSON-lines
protocol documented in ``simulator/eval/protocol.py`` on its stdin/stdout. It calls the
dialogue's tools itself with the official MCP client, over streamable HTTP at
``DIALOGSIM_MCP_URL`` with ``DIALOGSIM_MCP_TOKEN`` as the bearer token, or, with
``--stdio`` (or when no URL is given), by spawning ``DIALOGSIM_MCP_STDIO``. Logs go to
stderr: stdout carries the protocol only.

What it says comes from ``ActPolicy`` in ``python_agent.py`` next to it (it reads the
offline user's dialogue acts; see there).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp
from mcp import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from python_agent import ActPolicy  # noqa: E402  (next to this file)


def _log(message: str) -> None:
    sys.stderr.write(f"jsonl_agent: {message}\n")


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


@asynccontextmanager
async def _http(url: str, token: str) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


def _server(use_stdio: bool) -> mcp.Client:
    """The official MCP client, over streamable HTTP with the token, or over the stdio command."""
    url = os.environ.get("DIALOGSIM_MCP_URL")
    if url and not use_stdio:
        return mcp.Client(_http(url, os.environ.get("DIALOGSIM_MCP_TOKEN", "")))
    command = shlex.split(os.environ["DIALOGSIM_MCP_STDIO"])
    return mcp.Client(StdioServerParameters(command=command[0], args=command[1:]))


async def main(use_stdio: bool) -> int:
    stdin = anyio.wrap_file(sys.stdin)
    start = json.loads(await stdin.readline())
    if start.get("type") != "start":
        _log(f"expected a start message, got {start!r}")
        return 2
    async with _server(use_stdio) as session:
        listed = await session.list_tools()
        policy = ActPolicy(list(listed.tools))
        _log(f"dialogue {start['dialogue_id']}: {len(listed.tools)} tools")
        async for line in stdin:
            message = json.loads(line)
            if message["type"] == "end":
                break
            if message["type"] == "user":
                text = await policy.respond(message.get("acts", []), session.call_tool)
                _write({"type": "agent", "text": text})
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stdio", action="store_true", help="spawn DIALOGSIM_MCP_STDIO instead of using HTTP")
    sys.exit(anyio.run(main, parser.parse_args().stdio))
