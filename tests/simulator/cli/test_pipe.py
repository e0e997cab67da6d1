"""A reader of stdout that goes away (``dialogsim stats --json DIR | head -1``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_closed_stdout_ends_quietly_without_a_traceback(user_data: Path) -> None:
    script = "import sys; from simulator.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", script, "stats", "--json", str(user_data)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # gone before the first byte is written
        stderr = process.stderr.read().decode()
    assert process.returncode == 141, stderr  # 128 + SIGPIPE, what a shell shows for such a stop
    assert "Traceback" not in stderr
