"""The one exception tree of dialogsim.

::

    DialogsimError
    ├── ConfigError              bad user input found before work starts; CLI exit code 2
    │   ├── EnvironmentFileError an environment file that does not match its schema
    │   ├── DatabaseFileError    a database that is missing, empty or not SQLite
    │   └── ToolDefinitionError  a tool whose SQL does not match the database
    ├── ToolError                goes back to the model as an ``isError`` tool result
    │   ├── InvalidArgumentsError arguments that do not match the tool's input schema
    │   ├── NotFoundError        no row matched where one was required
    │   ├── ToolExecutionError   the database refused the statement (constraint, type)
    │   └── AuthorizationError   the SQLite authorizer refused an action
    └── DialogueError            fatal for one dialogue: recorded with a termination reason
        ├── JudgeError           the rubric judge could not give its verdicts (judge_failure)
        └── VerificationError    a dialogue's tasks could not be checked (verification_failure)

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
    "InvalidArgumentsError",
    "JudgeError",
    "NotFoundError",
    "ToolDefinitionError",
    "ToolError",
    "ToolExecutionError",
    "VerificationError",
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


class JudgeError(DialogueError):
    """The rubric judge failed (its provider, its answer, a bug): the dialogue ends ``judge_failure``."""

    code = "judge_failed"


class VerificationError(DialogueError):
    """A dialogue's tasks could not be checked: the gold calls do not replay on a fresh copy, or
    the final database cannot be read. The dialogue ends ``verification_failure``."""

    code = "verification_failed"
