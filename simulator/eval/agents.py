"""Agents under evaluation: the ``python:`` and ``cmd:`` ways in.

``python:package.module:factory`` (or ``python:path/to/file.py:factory``)
    ``factory(info: AgentInfo)`` returns (or awaits to) an object with::

        async def reply(self, conversation: list[Utterance], session: mcp.Client) -> str | AgentReply

    called once per user message with the whole conversation so far (the last item is
    the new user message) and an MCP client session connected to the dialogue's tool
    server; ``info.endpoint`` also has the server's URL and token for agents that
    connect themselves. An optional ``async def aclose(self)`` runs when the dialogue
    ends. Each user utterance carries the offline user's dialogue acts as plain dicts
    (see ``simulator.eval.protocol`` on what they are for).

``cmd:COMMAND``
    any program, started per dialogue, speaking the JSON-lines protocol documented in
    ``simulator.eval.protocol``, with the dialogue's MCP server in its environment.

Secrets. A ``cmd:`` agent runs in a process of its own whose environment is built from
an allow-list (:func:`agent_environment`: ``PATH``, ``HOME``, ``LANG``, ``TMPDIR``, every
``DIALOGSIM_*`` variable, and the names the user grants with ``--agent-env NAME``), never
the evaluator's: provider keys and other secrets do not reach it. A ``python:`` agent runs
inside the evaluator's process, so it is not isolated the same way: before it is imported,
:func:`scrub_environment` deletes from ``os.environ`` the provider key variables and every
variable whose name looks like a secret (unless granted), after the keys the evaluation
itself needs were read into masked ``Secret`` objects. That keeps keys out of what the
agent reads from its environment; it is not a sandbox (code in the process can reach its
memory), so evaluate agents you do not trust as ``cmd:`` agents, in a container.

Both are registered as agent schemes in ``simulator.dialogue.brains``. A failure of the agent
(it cannot start, crashes, hangs, breaks the protocol, raises) is raised from
``respond`` as an :class:`OutsideAgentError`, which the dialogue runner records as
``agent_failure`` with the message as the reason; the evaluation goes on.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Literal, Protocol

import anyio
import mcp
import mcp_types as types
from anyio.abc import Process

from schemas import AgentMessage, Event, ProviderCall, UserMessage
from schemas.errors import BrainError, ConfigError
from simulator.dialogue.roles import AgentContext, AgentFactory, AgentTurn
from simulator.eval.protocol import (
    EndMessage,
    HistoryItem,
    McpInfo,
    ProtocolError,
    StartMessage,
    StdioInfo,
    UsageInfo,
    UserTextMessage,
    decode_reply,
    encode,
)
from simulator.log import get_logger
from simulator.offline.acts import Act, encode_acts
from toolservers.stdio_pool import StdioCommand

__all__ = [
    "AGENT_ENV_ALLOWED",
    "MAX_REPLY_LINE_BYTES",
    "REPLY_TIMEOUT_SHARE",
    "AgentEndpoint",
    "AgentExited",
    "AgentInfo",
    "AgentProtocolError",
    "AgentReply",
    "AgentStartError",
    "AgentTimeout",
    "OutsideAgentError",
    "PythonAgent",
    "Utterance",
    "agent_environment",
    "check_cmd_program",
    "cmd_agent_brain",
    "python_agent_brain",
    "scrub_environment",
]

log = get_logger(__name__)

#: An outside agent must answer within this share of the turn timeout; the rest is the
#: runner's margin, so that a slow agent is recorded as the agent's failure.
REPLY_TIMEOUT_SHARE = 0.8
#: How long an agent may take to exit after the ``end`` message before it is killed.
_EXIT_GRACE_S = 3.0
_STDERR_TAIL_BYTES = 1500
#: Longest line a ``cmd:`` agent may write (a reply); a longer one is a protocol error. The
#: text of a reply is then cut to the dialogue's ``max_message_chars`` by the runner.
MAX_REPLY_LINE_BYTES = 16 * 1024 * 1024


# --------------------------------------------------------------------------- environment

#: Variables an outside agent's process inherits from the evaluator (when they are set),
#: besides every ``DIALOGSIM_*`` variable and the names granted with ``--agent-env``.
AGENT_ENV_ALLOWED = ("PATH", "HOME", "LANG", "TMPDIR")
_OWN_PREFIX = "DIALOGSIM_"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Parts of a variable name that say it holds a secret (matched anywhere, case-insensitively).
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "DSN")
#: A value that carries credentials whatever its name: a URL with ``user:password@``.
_CREDENTIAL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")


def agent_environment(granted: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment outside agents get: the allow-list, ``DIALOGSIM_*`` and the ``granted`` names.

    Read from ``environ`` (default ``os.environ``). Raises ConfigError for a granted name
    that is not a variable name or is not set.
    """
    source = os.environ if environ is None else environ
    env = {name: source[name] for name in AGENT_ENV_ALLOWED if name in source}
    env.update({k: v for k, v in source.items() if k.startswith(_OWN_PREFIX)})
    for name in granted:
        if not _NAME.fullmatch(name):
            raise ConfigError(f"--agent-env {name!r}: expected the name of an environment variable")
        if name not in source:
            raise ConfigError(f"--agent-env {name}: no such variable is set in this environment")
        env[name] = source[name]
    return env


def _provider_key_variables() -> set[str]:
    from simulator.providers import known_providers, provider_info

    return {v for name in known_providers() if (v := provider_info(name).key_env)}


def scrub_environment(environ: MutableMapping[str, str], *, keep: Sequence[str] = ()) -> list[str]:
    """Delete provider keys and secret-looking variables from ``environ`` (names in ``keep`` and
    ``DIALOGSIM_*`` stay); returns the names deleted. For agents loaded into this process.

    Secret-looking: a provider's key variable, a name with KEY, TOKEN, SECRET, PASSWORD,
    CREDENTIAL, AUTH or DSN in it, or a value that is a URL with a password in it
    (``DATABASE_URL=postgres://user:pw@host/db``)."""
    provider_keys = _provider_key_variables()
    kept = set(keep)
    doomed = [
        name
        for name in environ
        if name not in kept
        and not name.startswith(_OWN_PREFIX)
        and (
            name in provider_keys
            or any(word in name.upper() for word in _SECRET_WORDS)
            or _CREDENTIAL_URL.search(environ[name]) is not None
        )
    ]
    for name in doomed:
        del environ[name]
    return sorted(doomed)


# --------------------------------------------------------------------------- errors


class OutsideAgentError(BrainError):
    """An agent under evaluation failed; the message says how (recorded as the reason)."""

    code = "agent"


class AgentStartError(OutsideAgentError):
    """The agent could not be started (no such program, a factory that raised...)."""

    code = "agent_start"


class AgentExited(OutsideAgentError):
    """The agent's process ended before it answered."""

    code = "agent_exited"


class AgentTimeout(OutsideAgentError):
    """The agent did not answer in time; it was stopped."""

    code = "agent_timeout"


class AgentProtocolError(OutsideAgentError):
    """The agent answered something other than a reply."""

    code = "agent_protocol"


# --------------------------------------------------------------------------- shared types


@dataclass(frozen=True, slots=True)
class AgentEndpoint:
    """Where an outside agent finds the dialogue's MCP server (``AgentContext.endpoint``).

    ``url`` and ``token``: streamable HTTP on the loopback host (None when tools are
    served from the stdio pool only); ``stdio``: a command speaking MCP on stdio,
    connected to the same server. ``environment``: what a ``cmd:`` agent's process
    environment is built from (see :func:`agent_environment`; None: its default).
    """

    url: str | None
    token: str | None
    stdio: StdioCommand | None
    environment: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Utterance:
    """One message of the conversation as a python agent sees it."""

    role: Literal["user", "assistant"]
    text: str
    #: The offline user's dialogue acts, as plain dicts (empty for assistant messages
    #: and for other users).
    acts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AgentReply:
    """A python agent's reply with what it cost, when it knows (recorded as a ProviderCall)."""

    text: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What a python agent's factory gets: the dialogue's tools and server, never the user's goal."""

    dialogue_id: str
    tools: list[types.Tool]
    policy: str | None
    description: str
    #: A seed for the agent's own randomness (differs per trial, same for every agent).
    seed: int
    endpoint: AgentEndpoint | None
    #: The conversation so far when the dialogue continues a recorded one.
    history: list[Utterance]


class PythonAgent(Protocol):
    async def reply(self, conversation: list[Utterance], session: mcp.Client) -> str | AgentReply: ...


def _history(events: list[Event]) -> list[Utterance]:
    out: list[Utterance] = []
    for event in events:
        if isinstance(event, UserMessage):
            out.append(Utterance("user", event.text, list(event.acts)))
        elif isinstance(event, AgentMessage):
            out.append(Utterance("assistant", event.text))
    return out


async def _record_usage(ctx: AgentContext, model: str, tokens_in: int, tokens_out: int, cost: float | None) -> None:
    if model or tokens_in or tokens_out or cost is not None:
        await ctx.publish(
            ProviderCall(role="agent", model=model, input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost)
        )


def _reply_timeout(ctx: AgentContext) -> float:
    return ctx.call_timeout_s * REPLY_TIMEOUT_SHARE


# --------------------------------------------------------------------------- python:


_FILE_MODULES: dict[Path, ModuleType] = {}


def _load_module(where: str) -> ModuleType:
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where).expanduser().resolve()
        if path in _FILE_MODULES:
            return _FILE_MODULES[path]
        if not path.is_file():
            raise ConfigError(f"python agent: no such file {where!r}")
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        name = f"dialogsim_agent_{path.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"python agent: cannot load {where!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"python agent: importing {where!r} raised {type(exc).__name__}: {exc}") from exc
        _FILE_MODULES[path] = module
        return module
    try:
        return importlib.import_module(where)
    except ImportError as exc:
        raise ConfigError(f"python agent: cannot import module {where!r}: {exc}") from exc


def python_agent_brain(argument: str) -> AgentFactory:
    """The ``python:MODULE:FACTORY`` agent spec (MODULE a dotted name or a ``.py`` file).

    Raises ConfigError when the module cannot be imported or has no such callable.
    """
    where, _, attr = argument.rpartition(":")
    if not where or not attr:
        raise ConfigError(
            f"python agent {argument!r}: expected python:package.module:factory or python:path/to/file.py:factory"
        )
    module = _load_module(where)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"python agent: {where!r} has no attribute {attr!r}")
    if not callable(target):
        raise ConfigError(f"python agent: {where}:{attr} is not callable")
    make = target

    async def factory(ctx: AgentContext) -> _PythonAgent:
        endpoint = ctx.endpoint if isinstance(ctx.endpoint, AgentEndpoint) else None
        history = _history(ctx.history)
        info = AgentInfo(
            dialogue_id=ctx.dialogue_id,
            tools=ctx.tools,
            policy=ctx.policy,
            description=ctx.description,
            seed=ctx.rng.randrange(2**32),
            endpoint=endpoint,
            history=history,
        )
        return _PythonAgent(f"python:{argument}", make, info, ctx, history)

    return factory


class _PythonAgent:
    """Adapts a python agent object to the runner's Agent protocol."""

    def __init__(self, brain: str, make: Any, info: AgentInfo, ctx: AgentContext, history: list[Utterance]) -> None:
        self.brain = brain
        self._make = make
        self._info = info
        self._ctx = ctx
        self._conversation = list(history)
        self._agent: Any = None

    async def _instance(self) -> Any:
        # Built on the first message, so a factory that raises is the agent's failure.
        if self._agent is None:
            try:
                made = self._make(self._info)
                if inspect.isawaitable(made):
                    made = await made
            except Exception as exc:
                raise AgentStartError(f"the agent factory raised {type(exc).__name__}: {exc}") from exc
            if not callable(getattr(made, "reply", None)):
                raise AgentStartError(
                    f"the agent factory returned {type(made).__name__}, which has no async reply(conversation, session)"
                )
            self._agent = made
        return self._agent

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        agent = await self._instance()
        self._conversation.append(Utterance("user", text, encode_acts(acts)))
        timeout = _reply_timeout(self._ctx)
        with anyio.move_on_after(timeout) as scope:
            result = await agent.reply(list(self._conversation), self._ctx.client)
        if scope.cancelled_caught:
            raise AgentTimeout(f"the agent did not answer within {timeout:.1f} s")
        if isinstance(result, AgentReply):
            await _record_usage(self._ctx, result.model, result.input_tokens, result.output_tokens, result.cost_usd)
            text_out = result.text
        elif isinstance(result, str):
            text_out = result
        else:
            raise AgentProtocolError(f"reply() returned {type(result).__name__}; expected str or AgentReply")
        self._conversation.append(Utterance("assistant", text_out))
        return AgentTurn(text=text_out)

    async def aclose(self) -> None:
        close = getattr(self._agent, "aclose", None)
        if close is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_EXIT_GRACE_S):
                await close()


# --------------------------------------------------------------------------- cmd:


def _split_command(argument: str) -> list[str]:
    try:
        argv = shlex.split(argument)
    except ValueError as exc:
        raise ConfigError(f"cmd agent {argument!r}: cannot split the command: {exc}") from None
    if not argv:
        raise ConfigError('cmd agent: expected a command, as cmd:"program --flag"')
    return argv


def check_cmd_program(argument: str, *, path: str | None) -> None:
    """Check that the program of the ``cmd:COMMAND`` agent spec can be found, before any dialogue.

    The program is COMMAND's first word, split as ``cmd_agent_brain`` splits it: a path
    must be an executable file, a bare name one on ``path`` (the ``PATH`` the agent's
    process is started with; None: this process's). Raises ConfigError naming the
    program otherwise, or for an empty or unparsable command.
    """
    program = _split_command(argument)[0]
    if shutil.which(program, path=path) is not None:
        return
    if os.path.dirname(program):
        raise ConfigError(f"cmd agent: cannot run {program!r}: expected an executable file at that path")
    raise ConfigError(f"cmd agent: cannot run {program!r}: no executable of that name on PATH")


def cmd_agent_brain(argument: str) -> AgentFactory:
    """The ``cmd:COMMAND`` agent spec: COMMAND is split like a shell would (no shell runs it).

    Raises ConfigError for an empty or unparsable command.
    """
    argv = _split_command(argument)

    async def factory(ctx: AgentContext) -> _CmdAgent:
        agent = _CmdAgent(f"cmd:{argument}", argv, ctx)
        await agent.start()
        return agent

    return factory


def _environment(ctx: AgentContext, endpoint: AgentEndpoint) -> dict[str, str]:
    # Built from the allow-list, never from the evaluator's whole environment.
    env = dict(endpoint.environment) if endpoint.environment is not None else agent_environment()
    for name in ("DIALOGSIM_MCP_URL", "DIALOGSIM_MCP_TOKEN", "DIALOGSIM_MCP_STDIO"):
        env.pop(name, None)
    env["DIALOGSIM_DIALOGUE_ID"] = ctx.dialogue_id
    if endpoint.url is not None and endpoint.token is not None:
        env["DIALOGSIM_MCP_URL"] = endpoint.url
        env["DIALOGSIM_MCP_TOKEN"] = endpoint.token
    if endpoint.stdio is not None:
        env["DIALOGSIM_MCP_STDIO"] = endpoint.stdio.shell
    return env


class _LineTooLong(Exception):
    pass


class _ReplyReader:
    """Newline-delimited lines from the agent's stdout, each at most ``limit`` bytes."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._buffer = bytearray()
        self._scanned = 0

    async def readline(self) -> bytes | None:
        """The next line without its newline, or None at the end of the stream.

        Raises _LineTooLong when more than ``limit`` bytes arrive without a newline.
        """
        while True:
            at = self._buffer.find(b"\n", self._scanned)
            if at >= 0:
                line = bytes(self._buffer[:at])
                del self._buffer[: at + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            if self._scanned > self._limit:
                raise _LineTooLong(f"the agent wrote a line of more than {self._limit} bytes (a reply is one line)")
            try:
                chunk = await self._stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return None
            self._buffer += chunk


class _CmdAgent:
    """One ``cmd:`` agent process, for one dialogue."""

    def __init__(self, brain: str, argv: list[str], ctx: AgentContext) -> None:
        self.brain = brain
        self._argv = argv
        self._ctx = ctx
        self._process: Process | None = None
        self._reader: _ReplyReader | None = None
        self._stderr: IO[bytes] | None = None
        self._failure: OutsideAgentError | None = None

    async def start(self) -> None:
        """Start the process and send ``start``; a failure is raised by the first ``respond``."""
        endpoint = self._ctx.endpoint
        if not isinstance(endpoint, AgentEndpoint):
            self._failure = AgentStartError(
                "a cmd: agent needs the dialogue's tool server on the evaluation host; run it with dialogsim eval"
            )
            return
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = await anyio.open_process(
                self._argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=_environment(self._ctx, endpoint),
                start_new_session=True,
            )
        except OSError as exc:
            self._failure = AgentStartError(f"cannot start {self._argv[0]!r}: {exc.strerror or exc}")
            return
        assert self._process.stdout is not None
        self._reader = _ReplyReader(self._process.stdout, MAX_REPLY_LINE_BYTES)
        stdio = endpoint.stdio
        start = StartMessage(
            dialogue_id=self._ctx.dialogue_id,
            mcp=McpInfo(
                url=endpoint.url,
                token=endpoint.token,
                stdio=StdioInfo(command=stdio.command, args=list(stdio.args)) if stdio is not None else None,
            ),
            tools=[t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in self._ctx.tools],
            policy=self._ctx.policy,
            description=self._ctx.description,
            history=[HistoryItem(role=u.role, text=u.text) for u in _history(self._ctx.history)],
        )
        try:
            await self._send(encode(start))
        except OutsideAgentError as exc:
            self._failure = exc

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
            tail = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; stderr: ...{tail[-_STDERR_TAIL_BYTES:]}" if tail else ""

    async def _send(self, data: bytes) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            await self._process.stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            code = await self._wait_exit(_EXIT_GRACE_S)
            raise AgentExited(
                f"the agent exited (code {code}) and no longer reads stdin{self._stderr_tail()}"
            ) from None

    async def _wait_exit(self, within_s: float) -> int | None:
        assert self._process is not None
        with anyio.CancelScope(shield=True), anyio.move_on_after(within_s):
            await self._process.wait()
        return self._process.returncode

    async def _kill(self) -> None:
        """Kill the agent and every process it started (its own process group)."""
        process = self._process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        await self._wait_exit(_EXIT_GRACE_S)

    def _fail(self, error: OutsideAgentError) -> OutsideAgentError:
        self._failure = error
        return error

    async def respond(self, text: str, acts: list[Act]) -> AgentTurn:
        if self._failure is not None:
            raise self._failure
        assert self._reader is not None
        try:
            await self._send(encode(UserTextMessage(text=text, acts=encode_acts(acts))))
        except OutsideAgentError as exc:
            raise self._fail(exc) from None
        timeout = _reply_timeout(self._ctx)
        try:
            with anyio.move_on_after(timeout) as scope:
                line = await self._reader.readline()
        except _LineTooLong as exc:
            await self._kill()
            raise self._fail(AgentProtocolError(f"{exc}{self._stderr_tail()}")) from None
        if scope.cancelled_caught:
            await self._kill()
            raise self._fail(
                AgentTimeout(f"the agent did not answer within {timeout:.1f} s and was killed{self._stderr_tail()}")
            )
        if line is None:
            code = await self._wait_exit(_EXIT_GRACE_S)
            raise self._fail(AgentExited(f"the agent exited (code {code}) without answering{self._stderr_tail()}"))
        try:
            reply = decode_reply(line)
        except ProtocolError as exc:
            await self._kill()
            raise self._fail(AgentProtocolError(f"{exc}{self._stderr_tail()}")) from None
        usage: UsageInfo | None = reply.usage
        if usage is not None:
            await _record_usage(self._ctx, usage.model, usage.input_tokens, usage.output_tokens, usage.cost_usd)
        return AgentTurn(text=reply.text)

    async def aclose(self) -> None:
        """Say ``end``, give the agent a moment to exit, then kill whatever is left of it."""
        process = self._process
        with anyio.CancelScope(shield=True):
            if process is not None:
                if process.returncode is None and self._failure is None:
                    try:
                        await self._send(encode(EndMessage()))
                    except OutsideAgentError:
                        pass
                if process.stdin is not None:
                    try:
                        await process.stdin.aclose()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
                await self._wait_exit(_EXIT_GRACE_S)
                await self._kill()  # also whatever it started and left behind
                with anyio.move_on_after(_EXIT_GRACE_S):
                    await process.aclose()
            if self._stderr is not None:
                self._stderr.close()
