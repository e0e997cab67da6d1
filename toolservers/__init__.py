"""Environments materialised as MCP servers: databases, tools, transports.

Depends on ``schemas`` only.
"""

from toolservers.database import DEFAULT_CALL_TIMEOUT_S, Database, check_sqlite_file, open_database
from toolservers.executor import ToolExecutor, ToolOutcome
from toolservers.limits import MAX_RESULT_CHARS, ResultTooLargeError
from toolservers.loader import load_environment, save_environment
from toolservers.server import EventCallback, ProtocolErrorCallback, ToolServer, build_tool_server
from toolservers.transports import (
    TRANSPORTS,
    Connected,
    HttpEndpoint,
    TransportName,
    connect_tool_server,
    http_client,
    http_tool_server,
    stdio_tool_server,
)

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "MAX_RESULT_CHARS",
    "TRANSPORTS",
    "Connected",
    "Database",
    "EventCallback",
    "HttpEndpoint",
    "ProtocolErrorCallback",
    "ResultTooLargeError",
    "ToolExecutor",
    "ToolOutcome",
    "ToolServer",
    "TransportName",
    "build_tool_server",
    "check_sqlite_file",
    "connect_tool_server",
    "http_client",
    "http_tool_server",
    "load_environment",
    "open_database",
    "save_environment",
    "stdio_tool_server",
]
