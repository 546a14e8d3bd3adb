"""Headless Chromium running a test page that reports back over HTTP.

The page and hls.js are served by a small aiohttp server on a free loopback port;
the page POSTs its observations to that server, so no browser driver is needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from pathlib import Path

from aiohttp import web
from harness import Processes

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-dev-shm-usage",
)


class PageServer:
    """Serves tests/web and collects reports, on its own thread and loop."""

    def __init__(self) -> None:
        self.reports: list[dict] = []
        self._received = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/report", self._report)
        app.router.add_static("/", WEB_ROOT)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._started.set()
        self._loop.run_forever()

    async def _report(self, request: web.Request) -> web.Response:
        self.reports.append(json.loads(await request.text()))
        self._received.set()
        return web.Response(text="ok")

    def url(self, page: str) -> str:
        return f"http://127.0.0.1:{self.port}/{page}"

    def player_url(self, src: str, seconds: float) -> str:
        """The hls.js test page playing `src` for `seconds`, then reporting here."""
        query = urllib.parse.urlencode(
            {"src": src, "report": self.url("report"), "seconds": seconds}
        )
        return self.url(f"player.html?{query}")

    def wait_report(self, timeout: float) -> dict:
        if not self._received.wait(timeout):
            raise AssertionError("the page sent no report")
        return self.reports[-1]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def open_chromium(
    processes: Processes, url: str, profile: Path, extra_args: tuple[str, ...] = ()
) -> subprocess.Popen:
    """Headless Chromium on `url`, with its profile in `profile` and its temp files
    (the singleton socket directory, PulseAudio's) in a scratch directory removed at
    teardown: Chromium leaves them behind when it is terminated. (Not under the
    test's own directory: its socket path would pass the 108-byte limit.)"""
    temp = processes.scratch_dir("chromium-")
    return processes.popen(
        [
            chromium_binary(),
            "--headless=new",
            *CHROMIUM_FLAGS,
            *extra_args,
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=chromium_env(temp),
    )


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed (scripts/setup.sh test installs it)"
    return binary


def chromium_env(temp: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(temp), "XDG_RUNTIME_DIR": str(temp)}


def launch_playwright_chromium(playwright, processes: Processes, extra_args: tuple[str, ...] = ()):
    """Debian's Chromium driven by Playwright (never a downloaded browser), with the
    flags `open_chromium` uses and its temp files in a scratch directory."""
    temp = processes.scratch_dir("chromium-")
    return playwright.chromium.launch(
        executable_path=chromium_binary(),
        headless=True,
        args=[*CHROMIUM_FLAGS, *extra_args],
        env=chromium_env(temp),
    )
