"""Render a report in headless Chromium and save a PNG (for the README, or to check a report by eye).

::

    python -m simulator.report.screenshot report.html report.png
    python -m simulator.report.screenshot report.html browser.png --element '#browser' --search refund
    python -m simulator.report.screenshot report.html full.png --full-page

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the ``selenium``
package (a development dependency). Exits with 2 and says what is missing otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from schemas.errors import ConfigError
from simulator.report._browser import start_chromium

__all__ = ["main", "screenshot"]


def screenshot(
    report: Path,
    out: Path,
    *,
    width: int = 1400,
    height: int = 1000,
    full_page: bool = False,
    element: str | None = None,
    search: str | None = None,
    dialogue: str | None = None,
) -> Path:
    """Save a PNG of ``report`` to ``out`` and return ``out``.

    ``element`` (a CSS selector) shoots that element only; ``search`` types into the
    dialogue search box first; ``dialogue`` opens that dialogue (its id). Raises
    ConfigError when the report is missing or the browser cannot start.
    """
    if not report.is_file():
        raise ConfigError(f"{report}: no such report file")
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="dialogsim-chromium-") as profile:
        driver = start_chromium(Path(profile), width=width, height=height)
        try:
            url = report.resolve().as_uri() + (f"#{dialogue}" if dialogue else "")
            driver.get(url)
            if search:
                driver.find_element(By.ID, "search").send_keys(search)
            out.parent.mkdir(parents=True, exist_ok=True)
            if element:
                target = driver.find_element(By.CSS_SELECTOR, element)
                driver.execute_script("arguments[0].scrollIntoView()", target)
                target.screenshot(str(out))
            else:
                if full_page:
                    total = int(driver.execute_script("return document.documentElement.scrollHeight"))
                    driver.set_window_size(width, total)
                driver.save_screenshot(str(out))
        finally:
            driver.quit()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.report.screenshot",
        description="Render a dialogsim report in headless Chromium and save a PNG.",
    )
    parser.add_argument("report", type=Path, help="the report's HTML file")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1400, help="window width in pixels (default: 1400)")
    parser.add_argument("--height", type=int, default=1000, help="window height in pixels (default: 1000)")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not only the first screen")
    parser.add_argument("--element", metavar="CSS", help="shoot only this element, e.g. '#browser'")
    parser.add_argument("--search", metavar="TEXT", help="type TEXT into the dialogue search box first")
    parser.add_argument("--dialogue", metavar="ID", help="open this dialogue first")
    args = parser.parse_args(argv)
    try:
        out = screenshot(
            args.report,
            args.out,
            width=args.width,
            height=args.height,
            full_page=args.full_page,
            element=args.element,
            search=args.search,
            dialogue=args.dialogue,
        )
    except ConfigError as exc:
        print(f"screenshot: error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    print(f"wrote {out}", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
