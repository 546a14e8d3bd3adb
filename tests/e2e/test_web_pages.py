"""The pages in headless Chromium (Playwright driving Debian's chromium): the player
against ffmpeg publishing over RTMP, the dashboard banning that publisher, the browser
publishing page with Chromium's fake camera, and a stream name that is HTML.

One server and one browser serve every test of this module (they are slow to start);
each test publishes on its own livestream. Screenshots of every page, at desktop and
phone widths, go to a temporary directory removed at teardown (set WEB_SHOTS_DIR to
keep them)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from browser import launch_playwright_chromium
from harness import API_KEY, Processes, ffmpeg_publish, wait_for
from playwright.sync_api import Page, expect, sync_playwright
from test_whip_support import start_live

pytestmark = pytest.mark.e2e
XSS_NAME = "<img src=x onerror=alert(1)>"
FAKE_HOST = "studio.example"  # mapped to 127.0.0.1: an http:// origin that is not secure
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def processes():
    tracker = Processes()
    yield tracker
    tracker.end_all()


@pytest.fixture(scope="module")
def live(processes):
    data = processes.scratch_dir("live-web-")
    server = start_live(processes, data, LIVE_ENDED_PLAYLIST_LINGER_S="5")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(processes):
    with sync_playwright() as playwright:
        chromium = launch_playwright_chromium(
            playwright,
            processes,
            (
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                f"--host-resolver-rules=MAP {FAKE_HOST} 127.0.0.1",
            ),
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots():
    keep = os.environ.get("WEB_SHOTS_DIR")
    directory = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="live-web-shots-"))
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def page(browser, live):
    """A fresh tab; a JavaScript dialog (an injected `alert`) or an uncaught error fails
    the test."""
    context = browser.new_context(viewport=DESKTOP, base_url=live.http)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                     dialog.dismiss()))
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not problems, problems


def snap(page: Page, shots: Path, name: str) -> None:
    """The page as a user sees it, at desktop and phone widths."""
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(150)
        page.screenshot(path=shots / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size(size)


def video_time(page: Page) -> float:
    return page.eval_on_selector("#video", "v => v.currentTime")


def test_player_goes_live_by_itself_plays_at_low_latency_and_goes_back(
    live, processes, page, shots
):
    stream = live.create_livestream(name=XSS_NAME, reconnect_window_s=0)
    page.goto(f"/play/{stream['playback_id']}")
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#badge")).to_have_text("Offline")
    snap(page, shots, "player-offline")
    page.evaluate("window.notReloaded = true")

    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=40)
    expect(page.locator("#badge")).to_have_text("Live", timeout=20_000)
    expect(page.locator("#offline")).to_be_hidden()
    assert page.evaluate("window.notReloaded === true")  # switched without a reload

    first = video_time(page)
    latencies = []
    for _ in range(20):  # 10 s of watching, currentTime moving on all the time
        page.wait_for_timeout(500)
        latencies.append(float(page.locator("#latency").get_attribute("data-seconds") or "nan"))
    assert video_time(page) - first >= 9.0
    assert page.locator("#error").is_hidden()
    settled = latencies[4:]
    assert max(settled) < 2.0, latencies
    assert int(page.locator("#viewers").get_attribute("data-count")) >= 1
    snap(page, shots, "player-live")

    # ?embed=1: the video and nothing around it, in someone else's <iframe>
    embed = page.context.new_page()
    embed.goto(f"/play/{stream['playback_id']}?embed=1")
    expect(embed.locator("#overlay-badge")).to_have_text("Live", timeout=15_000)
    expect(embed.locator("header")).to_be_hidden()
    snap(embed, shots, "player-embed")
    embed.close()

    publisher.terminate()
    expect(page.locator("#offline")).to_be_visible(timeout=15_000)
    expect(page.locator("#badge")).to_have_text("Offline")
    assert page.evaluate("window.notReloaded === true")
    snap(page, shots, "player-ended")
