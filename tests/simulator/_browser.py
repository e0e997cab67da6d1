"""Headless Chromium for the report's browser tests, installed from the Debian packages when missing.

``ensure_chromium()`` returns None when ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
are there (installing them with apt-get first when running as root), else the reason the
tests must be skipped. It tries the installation once per test session. Run it by hand
with ``python -m tests.simulator._browser``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from simulator.report._browser import INSTALL_HINT, browser_missing

__all__ = ["ensure_chromium"]

_PACKAGES = ("chromium", "chromium-driver")
_APT_TIMEOUT_S = 900


@functools.cache
def ensure_chromium() -> str | None:
    """None when headless Chromium can be started, else why not (a skip message)."""
    missing = browser_missing()
    if missing is None:
        return None
    if "selenium" in missing:
        return f"no browser test: {missing}"
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return (
            f"no browser test: missing {missing}, and cannot install it here (needs root and apt-get): {INSTALL_HINT}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", *_PACKAGES]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return f"no browser test: {' '.join(command)} took longer than {_APT_TIMEOUT_S} s"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"no browser test: {' '.join(command)} failed ({done.returncode}): {' / '.join(tail)}"
    missing = browser_missing()
    return None if missing is None else f"no browser test: still missing {missing} after installing {_PACKAGES}"


if __name__ == "__main__":
    reason = ensure_chromium()
    print(reason or "chromium and chromedriver are ready")  # noqa: T201
