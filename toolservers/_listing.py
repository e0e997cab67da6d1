"""What every client of an environment's servers learns the same way, learned once.

Every dialogue of an environment gets its own server, serving the same tools: its answer
to ``server/discover`` (capabilities, instructions), its tool listing (``tools/list``:
40-50 tools with their schemas in a built-in domain) and the compiled validators of the
output schemas are the same for all of them. Asking and compiling again per dialogue
costs more than the rest of a dialogue's tool traffic together (the SDK client also
checks every output schema against its metaschema once per session).

The first client of an environment (per transport) probes ``server/discover`` and lists
the tools over MCP, as any client would; the output validators are compiled once
(``toolservers.validation``). Later clients of the same environment are built with
``mode=<version>, prior_discover=<that result>`` (the SDK's documented way to reuse a
known discover result) and ``list_tools_once`` hands their session the same listing and
the same checked validators: the session then validates every result's structured
content exactly as if it had listed and compiled them itself. Every dialogue's server
still answers ``tools/list`` and ``server/discover`` for any agent that asks.

The MCP SDK has no public way to give a session its output schemas; ``list_tools_once``
writes the two per-session maps ``ClientSession`` keeps them in
(``_tool_output_schemas``, ``_tool_output_validators``). If a release renames them it
falls back to a plain ``list_tools`` per dialogue (correct, only slower) and a test fails.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp
import mcp_types as types

from schemas import Environment
from toolservers.validation import OutputValidator, output_validator

__all__ = ["client_options", "list_tools_once", "remember_discover"]

_LIMIT = 64


@dataclass(slots=True)
class _Known:
    environment: Environment  # kept so its id() stays its own while cached
    #: transport -> (negotiated protocol version, the server's discover result)
    discover: dict[str, tuple[str, types.DiscoverResult]] = field(default_factory=dict)
    tools: tuple[types.Tool, ...] | None = None
    schemas: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    validators: dict[str, OutputValidator] = field(default_factory=dict)
    #: Set while the first client lists: the others (a run starting many dialogues at once) wait for it.
    listing: anyio.Event | None = None


_KNOWN: OrderedDict[int, _Known] = OrderedDict()


def _known(environment: Environment, *, create: bool) -> _Known | None:
    hit = _KNOWN.get(id(environment))
    if hit is not None and hit.environment is environment:
        _KNOWN.move_to_end(id(environment))
        return hit
    if not create:
        return None
    known = _KNOWN[id(environment)] = _Known(environment)
    while len(_KNOWN) > _LIMIT:
        _KNOWN.popitem(last=False)
    return known


def client_options(environment: Environment, transport: str) -> dict[str, Any]:
    """``mcp.Client`` options for a new client of ``environment``'s server over ``transport``.

    No response cache (the servers send no cache hints, so it would hold nothing); the
    discover result of an earlier client of the same environment and transport, if any.
    """
    options: dict[str, Any] = {"cache": None}
    known = _known(environment, create=False)
    if known is not None and transport in known.discover:
        version, result = known.discover[transport]
        options.update(mode=version, prior_discover=result)
    return options


def remember_discover(client: mcp.Client, environment: Environment, transport: str) -> None:
    """Keep the discover result ``client`` negotiated (a handshake-era server has none)."""
    result = client.session.discover_result
    if result is not None:
        known = _known(environment, create=True)
        assert known is not None
        known.discover.setdefault(transport, (client.protocol_version, result))


async def list_tools_once(client: mcp.Client, environment: Environment) -> list[types.Tool]:
    """The tools ``client``'s server lists for ``environment``; over MCP the first time only.

    Afterwards ``client`` validates structured content as a session that listed the tools
    itself would. The returned ``Tool`` objects are shared between dialogues: read them,
    do not change them.
    """
    maps = _session_maps(client.session)
    known = _known(environment, create=True)
    assert known is not None
    if maps is None:
        return list((await client.list_tools()).tools)
    if known.tools is None and known.listing is not None:
        await known.listing.wait()
    schemas, validators = maps
    if known.tools is not None:
        schemas.update(known.schemas)
        validators.update(known.validators)
        return list(known.tools)
    known.listing = listing = anyio.Event()
    try:
        listed = await client.list_tools()
        # Listing may give the session fresh maps: install into the ones it holds now.
        schemas, validators = _session_maps(client.session) or maps
        shared: dict[str, OutputValidator] = {}
        for tool in listed.tools:
            if tool.output_schema is not None and (checked := output_validator(tool.output_schema)) is not None:
                shared[tool.name] = checked
        validators.update(shared)
        known.tools, known.schemas, known.validators = tuple(listed.tools), dict(schemas), shared
    finally:
        known.listing = None
        listing.set()
    return list(listed.tools)


def _session_maps(session: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    schemas = getattr(session, "_tool_output_schemas", None)
    validators = getattr(session, "_tool_output_validators", None)
    if isinstance(schemas, dict) and isinstance(validators, dict):
        return schemas, validators
    return None
