"""A stdio MCP server that shows its environment, for the tests that ``--env`` values stay out of the output.

It prints its environment to stderr when it starts; its one tool, ``show_env``, answers
any arguments (so invalid ones are accepted, a finding whose evidence is the answer) with
the environment as JSON. ``python env_echo_server.py --die`` prints the environment and
exits before it answers anything.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(
        name="show_env",
        description="Show the environment variables this server was started with, as a JSON object.",
        input_schema={
            "type": "object",
            "properties": {"prefix": {"type": "string", "description": "Only variables whose name starts with it"}},
            "required": ["prefix"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
]


async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = json.dumps(dict(os.environ))
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


async def serve_stdio() -> None:
    server = Server("env-echo", version="1", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    print(f"env-echo environment: {json.dumps(dict(os.environ))}", file=sys.stderr, flush=True)  # noqa: T201
    if "--die" in sys.argv[1:]:
        sys.exit(3)
    anyio.run(serve_stdio)
