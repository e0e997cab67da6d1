"""The user's side of a "dual control" test: a phone whose settings only the user can change.

    python phone_server.py

Tools: ``phone_status`` (read-only) and ``set_airplane_mode`` (a write). The phone starts in
airplane mode; its state lives in the process, so every dialogue's fresh process starts so.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def main() -> None:
    server = MCPServer("phone")
    phone = {"airplane_mode": True, "signal_bars": 0}

    @server.tool(name="phone_status", description="Show the phone's airplane mode and signal", annotations=READ)
    def phone_status() -> dict[str, Any]:
        return dict(phone)

    @server.tool(name="set_airplane_mode", description="Turn airplane mode on or off", annotations=WRITE)
    def set_airplane_mode(on: bool) -> dict[str, Any]:
        phone["airplane_mode"] = on
        phone["signal_bars"] = 0 if on else 4
        return dict(phone)

    server.run("stdio")


if __name__ == "__main__":
    main()
