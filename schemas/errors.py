"""The one exception tree of dialogsim.

::

    DialogsimError
    ├── ConfigError              bad user input found before work starts; CLI exit code 2
    │   ├── EnvironmentFileError an environment file that does not match its schema
    │   ├── DatabaseFileError    a database that is missing, empty or not SQLite
    │   ├── ToolDefinitionError  a tool whose SQL does not match the database
    │   └── ExternalServerError  an external MCP server (--server/--url) that cannot be used
    ├── ToolError                goes back to the model as an ``isError`` tool result
    │   ├── InvalidArgumentsError arguments that do not match the tool's input schema
    │   ├── NotFoundError        no row matched where one was required
    │   ├── ToolExecutionError   the database refused the statement (constraint, type)
    │   ├── AuthorizationError   the SQLite authorizer refused an action
    │   └── ToolServerFailure    an external tool server crashed, hung or went away: the
    │                            dialogue ends with ``tool_failure``, the run goes on
    └── DialogueError            fatal for one dialogue: recorded with a termination reason

Only ``ToolError`` and its subclasses are shown to a model; everything else is fatal at
its own level (the command line for ``ConfigError``, the dialogue for the rest).
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "ConfigError",
    "DatabaseFileError",
    "DialogsimError",
    "DialogueError",
    "EnvironmentFileError",
    "ExternalServerError",
    "InvalidArgumentsError",
    "NotFoundError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "ToolServerFailure",
]


class DialogsimError(Exception):
    """Base of every error dialogsim raises on purpose."""


class ConfigError(DialogsimError):
    """Bad input from the user (a file, a flag), reported before any work starts."""


class EnvironmentFileError(ConfigError):
    """An environment file that cannot be read or does not match the schema.

    ``path`` is the file, ``where`` the JSON path inside it (``$.tools[3].name``).
    """

    def __init__(self, path: str, where: str, problem: str) -> None:
        self.path = path
        self.where = where
        self.problem = problem
        super().__init__(f"{path}: at {where}: {problem}")


class DatabaseFileError(ConfigError):
    """A database that is missing, empty or not an SQLite file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ToolDefinitionError(ConfigError):
    """A tool whose definition does not fit the database (unknown table, column, parameter)."""

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


class DialogueError(DialogsimError):
    """Fatal for one dialogue; the run records it and goes on."""


class ToolServerFailure(ToolError):
    """An external tool server that crashed, hung or closed the connection mid-dialogue.

    The call is answered with an ``isError`` result carrying this code, and the dialogue
    ends with the termination reason ``tool_failure``.
    """

    code = "server_failure"
