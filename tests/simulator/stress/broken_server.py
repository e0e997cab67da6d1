"""A deliberately broken MCP server for the stress tests, run as a subprocess.

Each tool has one defect ``dialogsim stress`` must find and attribute to it:

- ``get_item``: a correct tool (validates, answers bad input with ``isError``) - no defect;
- ``lookup_user``: never validates, so invalid arguments are accepted;
- ``slow_search``: hangs forever;
- ``get_weather``: returns structured content that breaks its own output schema;
- ``bad_schema``: an input schema that is not valid JSON Schema (``"type": "strin"``) and
  ``required`` names a property that does not exist;
- ``rate_item``: raises on bad input, which the low-level SDK turns into a protocol error;
- ``export_report``: the server process dies (``os._exit``) - listed last, so a run over
  HTTP (which cannot restart the server) still probes every other tool first.

``python broken_server.py`` serves over stdio; ``python broken_server.py --http`` serves
streamable HTTP on a free loopback port and prints ``URL <url>`` as its first stdout line.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server import Server
from mcp.server.stdio import stdio_server

ITEMS = {1: "kettle", 2: "lamp", 3: "chair"}

TOOLS = [
    types.Tool(
        name="get_item",
        description="Get one catalogue item by its numeric id; fails with an error result for unknown ids.",
        input_schema={
            "type": "object",
            "properties": {"item_id": {"type": "integer", "minimum": 1, "description": "The item's id"}},
            "required": ["item_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"item_id": {"type": "integer"}, "name": {"type": "string"}},
            "required": ["item_id", "name"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="lookup_user",
        description="Look up one user account by its numeric id and return the account's name.",
        input_schema={
            "type": "object",
            "properties": {"user_id": {"type": "integer", "description": "The user's id"}},
            "required": ["user_id"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="slow_search",
        description="Search the catalogue for items whose name contains the given text.",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string", "description": "Part of the item name"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="get_weather",
        description="Get the current temperature in degrees Celsius for a city.",
        input_schema={
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
            "required": ["city", "celsius"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="bad_schema",
        description="Does stuff.",
        input_schema={
            "type": "object",
            "properties": {"q": {"type": "strin"}},
            "required": ["q", "missing_field"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="rate_item",
        description="Rate a catalogue item from 1 to 5 stars and return the new average rating.",
        input_schema={
            "type": "object",
            "properties": {
                "item_id": {"type": "integer", "minimum": 1, "description": "The item's id"},
                "stars": {"type": "integer", "minimum": 1, "maximum": 5, "description": "How many stars"},
            },
            "required": ["item_id", "stars"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
    types.Tool(
        name="export_report",
        description="Export a usage report of the catalogue as plain text.",
        input_schema={
            "type": "object",
            "properties": {"title": {"type": "string", "description": "The report's title"}},
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
]


def _text(text: str, *, error: bool = False, structured: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=error, structured_content=structured
    )


async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = dict(params.arguments or {})
    name = params.name
    if name == "get_item":
        item_id = args.get("item_id")
        if set(args) != {"item_id"} or not isinstance(item_id, int) or isinstance(item_id, bool) or item_id < 1:
            return _text("item_id: expected one integer >= 1", error=True)
        if item_id not in ITEMS:
            return _text(f"no item {item_id}", error=True)
        return _text(ITEMS[item_id], structured={"item_id": item_id, "name": ITEMS[item_id]})
    if name == "lookup_user":
        return _text(f"user {args.get('user_id')!r}: Ada")  # no validation at all
    if name == "slow_search":
        await anyio.sleep_forever()
    if name == "get_weather":
        if set(args) != {"city"} or not isinstance(args["city"], str):
            return _text("city: expected one string", error=True)
        return _text("warm", structured={"city": str(args.get("city")), "celsius": "warm"})
    if name == "bad_schema":
        return _text("ok")
    if name == "rate_item":
        # No isError for bad input: a KeyError or ValueError, which the SDK answers with a protocol error.
        item_id, stars = args["item_id"], args["stars"]
        if set(args) != {"item_id", "stars"} or not isinstance(item_id, int) or item_id < 1:
            raise ValueError(f"bad arguments {args!r}")
        if not isinstance(stars, int) or not 1 <= stars <= 5:
            raise ValueError(f"bad stars {stars!r}")
        return _text("4.5")
    if name == "export_report":
        os._exit(3)
    return _text(f"unknown tool {name!r}", error=True)


def build() -> Server[Any]:
    return Server("broken", version="1", on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio() -> None:
    server = build()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    app = build().streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", log_config=None, access_log=False, lifespan="on")
    print(f"URL http://127.0.0.1:{port}/mcp", flush=True)  # noqa: T201 - the parent reads it
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    # What the tests check: which variables the server was started with, and that it is gone after.
    print(f"broken_server pid={os.getpid()} env={','.join(sorted(os.environ))}", file=sys.stderr, flush=True)  # noqa: T201
    anyio.run(serve_http if "--http" in sys.argv[1:] else serve_stdio)
