"""A real headless Chromium (Debian's ``chromium``, which scripts/bootstrap installs) driven by Playwright.

Playwright downloads no browser here: it launches the system's chromium with the flags the report's tests
need, in a fresh profile directory, and records every request a page makes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TIMEOUT_MS = 15_000  # every wait and navigation of a page


@dataclass
class Browser:
    context: BrowserContext
    requests: list[str] = field(default_factory=list)  # every URL any page asked for, in order

    def open(self, url: str) -> Page:
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        return page


@contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    """Headless Chromium with a fresh ``--user-data-dir`` (``profile``), closed on exit."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed: run scripts/bootstrap (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=FLAGS, viewport={"width": 1280, "height": 900}
        )
        browser = Browser(context)
        context.on("request", lambda request: browser.requests.append(request.url))
        try:
            yield browser
        finally:
            context.close()
