"""Environments materialised as MCP servers: databases, tools, transports.

Depends on ``schemas`` only.
"""

from toolservers.database import Database, check_sqlite_file, open_database
from toolservers.executor import ToolExecutor, ToolOutcome
from toolservers.loader import load_environment, save_environment
from toolservers.server import EventCallback, ToolServer, build_tool_server

__all__ = [
    "Database",
    "EventCallback",
    "ToolExecutor",
    "ToolOutcome",
    "ToolServer",
    "build_tool_server",
    "check_sqlite_file",
    "load_environment",
    "open_database",
    "save_environment",
]
