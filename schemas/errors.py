"""The one exception tree of dialogsim.

Every exception dialogsim raises on purpose is a :class:`DialogsimError`. Each class has a
``code`` (a stable string tests and programs match on, never the message text) and, where
one applies, a ``field`` (the JSON path or flag that was wrong). Classes defined in other
modules are listed with where they live::

    DialogsimError                   code
    ├── ConfigError                  config            bad user input found before work starts; CLI exit code 2
    │   ├── EnvironmentFileError     environment_file  an environment file that does not match its schema
    │   ├── DatabaseFileError        database_file     a database that is missing, empty or not SQLite
    │   ├── ToolDefinitionError      tool_definition   a tool whose SQL does not match the database
    │   ├── TargetError              stress_target     simulator.stress.target: a server stress cannot use
    │   ├── MergeError               merge             simulator.run.merge: shard directories that cannot be merged
    │   └── ExternalServerError      external_server   an external MCP server (--server/--url) that cannot be used
    ├── UsageError                   usage             an API called the wrong way by the calling code (a bug)
    ├── ExecutorError                executor          simulator.run.ray_executor: the run's workers were lost
    ├── ToolError                    tool_error        goes back to the model as an ``isError`` tool result
    │   ├── InvalidArgumentsError    invalid_arguments arguments that do not match the tool's input schema
    │   ├── NotFoundError            not_found         no row matched where one was required
    │   ├── ToolExecutionError       execution_failed  the database refused the statement (constraint, type)
    │   ├── AuthorizationError       not_authorized    the SQLite authorizer refused an action
    │   ├── ToolTimeoutError         timeout           the tool's SQL ran past the call's deadline and was interrupted
    │   ├── ResultTooLargeError      result_too_large  toolservers.limits: a read's result past MAX_RESULT_CHARS
    │   └── ToolServerFailure        server_failure    an external tool server crashed, hung or went away mid-call:
    │                                                  the dialogue ends with ``tool_failure``, the run goes on
    ├── ProviderError                provider          simulator.providers: one model call failed
    │   ├── RateLimited              rate_limited
    │   ├── ProviderUnavailable      unavailable
    │   ├── ProviderTimeout          provider_timeout
    │   ├── BadResponse              bad_response
    │   └── ProviderRejected         rejected
    │       └── ProviderAuthError    auth
    └── DialogueError                dialogue          fatal for one dialogue: recorded with a termination reason
        ├── ToolServerError          tool_server       the dialogue's tool server failed to start, answer or stay up
        │   ├── PoolError            pool              toolservers.stdio_pool: a pool worker failed
        │   └── LinkDown             link_down         simulator.stress._link: the target could not be (re)connected
        ├── InitialStateError        initial_state     replaying a scenario's initial database actions failed
        ├── QueryTimeoutError        query_timeout     a query dialogsim ran itself (verification, planning, a state
        │                                              check, a snapshot) ran past its deadline and was interrupted
        ├── BrainError               brain             a user or agent brain failed to start or to answer
        │   ├── TurnTimeout          turn_timeout      a user, agent or judge did not answer within the turn timeout
        │   └── OutsideAgentError    agent             simulator.eval.agents: an agent under evaluation failed
        │       ├── AgentStartError  agent_start
        │       ├── AgentExited      agent_exited
        │       ├── AgentTimeout     agent_timeout
        │       └── AgentProtocolError agent_protocol  (also simulator.eval.protocol.ProtocolError)
        ├── StructuredOutputError    structured_output simulator.providers: a structured reply did not decode
        ├── JudgeError               judge_failed      the rubric judge could not give its verdicts
        └── VerificationError        verification_failed a dialogue's tasks could not be checked

Only ``ToolError`` and its subclasses are shown to a model; everything else is fatal at
its own level (the command line for ``ConfigError``, the dialogue for the rest).
Validation inside msgspec Structs (``__post_init__``) raises ``ValueError``, which msgspec
reports as ``msgspec.ValidationError`` while decoding; readers turn that into a ConfigError.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "BrainError",
    "ConfigError",
    "DatabaseFileError",
    "DialogsimError",
    "DialogueError",
    "EnvironmentFileError",
    "ExternalServerError",
    "InitialStateError",
    "InvalidArgumentsError",
    "JudgeError",
    "NotFoundError",
    "QueryTimeoutError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "ToolServerError",
    "ToolServerFailure",
    "ToolTimeoutError",
    "TurnTimeout",
    "UsageError",
    "VerificationError",
]


class DialogsimError(Exception):
    """Base of every error dialogsim raises on purpose."""

    code = "error"
    #: The JSON path, flag or field that was wrong, where one applies.
    field: str | None = None


class ConfigError(DialogsimError):
    """Bad input from the user (a file, a flag), reported before any work starts."""

    code = "config"


class UsageError(DialogsimError):
    """An API used the wrong way by the calling code: a bug in the caller, not bad user input."""

    code = "usage"


class EnvironmentFileError(ConfigError):
    """An environment file that cannot be read or does not match the schema.

    ``path`` is the file, ``where`` the JSON path inside it (``$.tools[3].name``).
    """

    code = "environment_file"

    def __init__(self, path: str, where: str, problem: str) -> None:
        self.path = path
        self.where = where
        self.field = where
        self.problem = problem
        super().__init__(f"{path}: at {where}: {problem}")


class DatabaseFileError(ConfigError):
    """A database that is missing, empty or not an SQLite file."""

    code = "database_file"

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ToolDefinitionError(ConfigError):
    """A tool whose definition does not fit the database (unknown table, column, parameter)."""

    code = "tool_definition"

    def __init__(self, source: str, tool: str, problem: str) -> None:
        self.source = source
        self.tool = tool
        self.problem = problem
        super().__init__(f"{source}: tool {tool!r}: {problem}")


class ExternalServerError(ConfigError):
    """An external MCP server that cannot be used: not an MCP server, no tools, a bad
    ``{state}`` placeholder or state template. ``field`` is the flag at fault."""

    code = "external_server"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ToolError(DialogsimError):
    """An error a tool call answers with: shown to the caller as an ``isError`` result."""

    code = "tool_error"


class InvalidArgumentsError(ToolError):
    """Arguments that do not match the input schema; ``field`` is the JSON path of the culprit."""

    code = "invalid_arguments"

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFoundError(ToolError):
    """A tool that promises one row found none."""

    code = "not_found"


class ToolExecutionError(ToolError):
    """The database refused the statement (a constraint, a type); nothing was changed."""

    code = "execution_failed"


class AuthorizationError(ToolError):
    """The SQLite authorizer refused an action the tool is not allowed to take."""

    code = "not_authorized"


class ToolTimeoutError(ToolError):
    """The tool's SQL ran past the call's deadline and SQLite interrupted it; nothing was changed.

    ``timeout_s`` is the deadline the call had.
    """

    code = "timeout"

    def __init__(self, message: str, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(message)


class ToolServerFailure(ToolError):
    """An external tool server that crashed, hung or closed the connection mid-dialogue.

    The call is answered with an ``isError`` result carrying this code, and the dialogue
    ends with the termination reason ``tool_failure``.
    """

    code = "server_failure"


class DialogueError(DialogsimError):
    """Fatal for one dialogue; the run records it and goes on."""

    code = "dialogue"


class ToolServerError(DialogueError):
    """The dialogue's tool server failed to start, to answer, or to stay up."""

    code = "tool_server"


class InitialStateError(DialogueError):
    """Replaying a scenario's initial database actions failed (the dialogue cannot start as planned)."""

    code = "initial_state"


class BrainError(DialogueError):
    """A user or agent brain failed to start or to answer."""

    code = "brain"


class JudgeError(DialogueError):
    """The rubric judge failed (its provider, its answer, a bug): an error of the dialogue's
    ``judge`` phase; every task fails unjudged and the conversation keeps its own ending."""

    code = "judge_failed"


class VerificationError(DialogueError):
    """A dialogue's tasks could not be checked (the gold replay cannot start, the final database
    cannot be read, a check raised): an error of the dialogue's ``verify`` phase; every task
    fails and the conversation keeps its own ending."""

    code = "verification_failed"


class TurnTimeout(BrainError):
    """A side of the dialogue (user, agent, judge) did not answer within the turn timeout."""

    code = "turn_timeout"


class QueryTimeoutError(DialogueError):
    """A query dialogsim ran itself (``Database.query``, ``Database.snapshot``) ran past its deadline.

    SQLite interrupted it; ``sql`` is the statement (shortened), ``timeout_s`` the deadline.
    A read interrupted this way changes nothing.
    """

    code = "query_timeout"

    def __init__(self, sql: str, *, timeout_s: float, busy: bool = False) -> None:
        self.sql = sql
        self.timeout_s = timeout_s
        #: True when the time went waiting for another statement on the same database.
        self.busy = busy
        what = "waited for the database, busy with another statement," if busy else "ran"
        super().__init__(f"a query {what} longer than its {timeout_s:g} s deadline and was interrupted: {sql}")
