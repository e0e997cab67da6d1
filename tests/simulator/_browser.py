"""Headless Chromium for the report's browser tests.

``chromium_missing()`` returns None when ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
can be used, else the reason the tests must be skipped. The tests install nothing:
``make test`` sets Chromium up (``.ci/install-chromium``) where it can.
"""

from __future__ import annotations

from simulator.report._browser import INSTALL_HINT, browser_missing

__all__ = ["chromium_missing"]


def chromium_missing() -> str | None:
    """None when headless Chromium can be started, else why not (a skip message)."""
    missing = browser_missing()
    if missing is None:
        return None
    return f"no browser test: missing {missing}; `make test` installs it where it can ({INSTALL_HINT})"
