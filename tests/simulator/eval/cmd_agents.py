"""A standard-library-only ``cmd:`` agent that misbehaves on demand (run by path).

    python cmd_agents.py MODE

``idle``: answers "OK." to everything, with a made-up token usage; ``crash``: exits with code 3 on the first user
message, after a line on stderr; ``hang``: reads on, never answers; ``garbage``: answers
with a line that is not JSON. ``crash-first`` and ``hang-first`` misbehave only in trial
1 (dialogue ids ending in ``~t1``) and are ``idle`` otherwise.
``env``: answers with its whole environment, as JSON; ``megabyte``: answers with a 1 MB
comma-separated list and no full stop; ``flood``: writes 17 MiB with no newline, then
reads on; ``hang-later``: ``idle`` in the dialogues of scenario ``shop-0``, ``hang`` in
the others. With ``DIALOGSIM_TEST_PIDS`` set (a directory), each agent writes a file
named by its pid there when it starts.
"""

import json
import os
import sys

MEGABYTE = ", ".join(f"item {i}" for i in range(130_000))


def main(mode: str) -> int:
    if os.environ.get("DIALOGSIM_TEST_PIDS"):
        with open(os.path.join(os.environ["DIALOGSIM_TEST_PIDS"], str(os.getpid())), "w"):
            pass
    if mode.endswith("-first"):
        first = os.environ.get("DIALOGSIM_DIALOGUE_ID", "").endswith("~t1")
        mode = mode.removesuffix("-first") if first else "idle"
    if mode == "hang-later":
        mode = "idle" if os.environ.get("DIALOGSIM_DIALOGUE_ID", "").startswith("shop-0~") else "hang"
    start = json.loads(sys.stdin.readline())
    # What the start message says matches the environment, and the tools are listed.
    assert start["type"] == "start" and start["protocol"] == 1, start
    assert start["dialogue_id"] == os.environ["DIALOGSIM_DIALOGUE_ID"]
    assert start["mcp"]["url"] == os.environ.get("DIALOGSIM_MCP_URL")
    assert start["mcp"]["token"] == os.environ.get("DIALOGSIM_MCP_TOKEN")
    assert start["mcp"]["stdio"]["command"] in os.environ["DIALOGSIM_MCP_STDIO"]
    assert {t["name"] for t in start["tools"]} >= {"get_customer"} and start["tools"][0]["inputSchema"]
    for line in sys.stdin:
        message = json.loads(line)
        if message["type"] == "end":
            return 0
        if mode == "crash":
            sys.stderr.write("cmd_agents: crashing on purpose\n")
            return 3
        if mode == "hang":
            continue
        if mode == "garbage":
            sys.stdout.write("this is not json\n")
        elif mode == "env":
            sys.stdout.write(json.dumps({"type": "agent", "text": json.dumps(dict(os.environ))}) + "\n")
        elif mode == "megabyte":
            sys.stdout.write(json.dumps({"type": "agent", "text": MEGABYTE}) + "\n")
        elif mode == "flood":
            sys.stdout.write("a" * (17 * 1024 * 1024))
            sys.stdout.flush()
            continue
        else:
            usage = {"model": "fake-1", "input_tokens": 10, "output_tokens": 2, "cost_usd": 0.5}
            sys.stdout.write(json.dumps({"type": "agent", "text": "OK.", "usage": usage}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
