"""Headless Chromium (the Debian packages ``chromium`` and ``chromium-driver``) driven by Selenium.

Used by the screenshot command and the report's browser tests. Selenium is a development
dependency, imported only here and only when a browser is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

__all__ = ["CHROMEDRIVER", "CHROMIUM", "INSTALL_HINT", "browser_missing", "start_chromium"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (as root, after apt-get update)"


def browser_missing() -> str | None:
    """What is missing to start the browser, or None when everything is there."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium)")
    return ", ".join(missing) or None


def start_chromium(user_data_dir: Path, *, width: int = 1400, height: int = 1000, logs: bool = False) -> WebDriver:
    """Start headless Chromium with a private profile and no background traffic.

    ``logs`` turns on the browser console log and the DevTools performance log (network
    requests), read with ``driver.get_log("browser")`` / ``get_log("performance")``.
    Raises ConfigError when the browser, its driver or selenium is missing.
    """
    missing = browser_missing()
    if missing is not None:
        raise ConfigError(f"cannot start Chromium: missing {missing}; install with: {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(arg)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(service=service, options=options)
