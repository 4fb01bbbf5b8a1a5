"""Browser tests: Playwright driving Debian's Chromium (never Playwright's own download) against
one demo-like run shared by the module; screenshots go to $RINGFENCE_ARTIFACTS or tests/artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.demo import Demo

playwright_api = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")
CHROMIUM = os.environ.get("RINGFENCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("RINGFENCE_ARTIFACTS") or Path(__file__).parents[1] / "artifacts")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no chromium: run `RINGFENCE_NEED_CHROMIUM=1 scripts/ensure-system-deps.sh` (make test does)")
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: CI and containers run as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = Demo(tmp_path_factory.mktemp("browser-demo"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, context: Any, base: str) -> None:
        self.context = context
        self.page = context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, token: str) -> None:
        self.goto("/ui/login")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/ui/rollouts**")


@pytest.fixture
def session(browser: Any, demo: Demo) -> Iterator[Any]:
    """A fresh browser context (no cookies), so each test logs in as whom it needs."""
    context = browser.new_context(viewport={"width": 1320, "height": 900})
    context.set_default_timeout(15_000)

    def open_page() -> Watched:
        return Watched(context, demo.url)

    yield open_page
    context.close()
