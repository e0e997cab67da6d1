"""The JSON-lines protocol of ``cmd:`` agents (``dialogsim eval --agent cmd:"COMMAND"``).

Any program, in any language, can be evaluated. dialogsim starts it once per dialogue
(``COMMAND`` is split like a shell would, and run without a shell), talks to it over its
stdin and stdout, one JSON object per line (UTF-8, ``\\n``-terminated), and gives it
the dialogue's MCP tool server.

The tool server
---------------
The agent calls tools itself, through any MCP client. Its environment holds:

``DIALOGSIM_MCP_URL``
    the dialogue's streamable-HTTP endpoint on a loopback host, e.g.
    ``http://127.0.0.1:41234/d/retail-1-00000-t1/mcp`` (absent when the evaluation
    serves tools from the stdio pool only, ``--tool-server pool``);
``DIALOGSIM_MCP_TOKEN``
    the bearer token that endpoint requires (``Authorization: Bearer <token>``);
    any other token, or none, gets HTTP 401;
``DIALOGSIM_MCP_STDIO``
    a shell-quoted command that speaks MCP over its stdin/stdout, for agents that
    prefer to spawn their server: it connects to the same dialogue's server, already
    running, and starts in milliseconds;
``DIALOGSIM_DIALOGUE_ID``
    the dialogue's id.

Every call, over either way in, is recorded by the server as ToolCall/ToolResult events,
exactly like the built-in agent's, and changes the dialogue's own database copy.

Messages to the agent (stdin)
-----------------------------
``{"type": "start", "protocol": 1, "dialogue_id": "...", "mcp": {"url": "..." | null,
"token": "..." | null, "stdio": {"command": "...", "args": ["..."]} | null},
"tools": [MCP Tool objects, as listed by the server], "policy": "..." | null,
"description": "...", "history": [{"role": "user" | "assistant", "text": "..."}]}``
    first, once. ``history`` is the conversation so far when the dialogue continues a
    recorded one (usually empty). No answer is expected.
``{"type": "user", "text": "...", "acts": [...]}``
    the user's next message. Answer it with exactly one ``agent`` line. ``acts`` is what
    the offline user simulator means, machine-readable (its dialogue acts: requests with
    the tool it has in mind, the facts it gives, corrections...); it is empty with other
    user simulators. It exists for plumbing tests and examples: an agent being measured
    should read ``text`` only, as it would read a person.
``{"type": "end"}``
    the dialogue is over. Exit within a few seconds (3 s): stdin is closed after it, then
    whatever is left of the agent's process group is killed.

Messages from the agent (stdout)
--------------------------------
``{"type": "agent", "text": "...", "usage": {"model": "...", "input_tokens": N,
"output_tokens": N, "cost_usd": X}}``
    the reply to the last ``user`` message. ``usage`` is optional; when given it is
    recorded (a ProviderCall event) and counted in the evaluation's tokens and cost.

Anything else on stdout is a protocol error: another JSON value, an unknown ``type`` or
field, a blank line, a line that is not JSON (write logs to stderr, never stdout).

Failures
--------
The dialogue fails, with ``agent_failure`` and a reason on its record, and the
evaluation goes on, when the agent cannot be started, exits before answering, writes a
protocol error, or does not answer within the reply timeout (80% of the turn timeout,
``--turn-timeout``). A failed agent is killed with its whole process group, and the
last lines of its stderr are kept in the reason.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.errors import BrainError

__all__ = [
    "PROTOCOL_VERSION",
    "ProtocolError",
    "AgentReplyMessage",
    "EndMessage",
    "HistoryItem",
    "McpInfo",
    "StartMessage",
    "StdioInfo",
    "UsageInfo",
    "UserTextMessage",
    "decode_reply",
    "encode",
]

PROTOCOL_VERSION = 1


class StdioInfo(msgspec.Struct, kw_only=True):
    command: str
    args: list[str]


class McpInfo(msgspec.Struct, kw_only=True):
    url: str | None
    token: str | None
    stdio: StdioInfo | None


class HistoryItem(msgspec.Struct, kw_only=True):
    role: str
    text: str


class StartMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="start"):
    protocol: int = PROTOCOL_VERSION
    dialogue_id: str
    mcp: McpInfo
    tools: list[dict[str, Any]]
    policy: str | None
    description: str
    history: list[HistoryItem] = []


class UserTextMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="user"):
    text: str
    acts: list[dict[str, Any]] = []


class EndMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="end"):
    pass


class UsageInfo(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


class AgentReplyMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="agent", forbid_unknown_fields=True):
    text: str
    usage: UsageInfo | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AgentReplyMessage)


def encode(message: StartMessage | UserTextMessage | EndMessage) -> bytes:
    """One protocol line, newline included."""
    return _encoder.encode(message) + b"\n"


class ProtocolError(BrainError):
    """A line on the agent's stdout that is not an ``agent`` message."""

    code = "agent_protocol"


def decode_reply(line: bytes) -> AgentReplyMessage:
    """The agent message on ``line``; raises ProtocolError saying what was wrong."""
    try:
        return _decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        shown = line[:200].decode("utf-8", "replace")
        raise ProtocolError(
            f'expected {{"type": "agent", "text": "..."}} on stdout, got {shown!r} ({exc}); logs belong on stderr'
        ) from None
