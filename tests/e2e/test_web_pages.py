"""The pages in headless Chromium (Playwright driving Debian's chromium): the player
against ffmpeg publishing over RTMP, the dashboard banning that publisher, the browser
publishing page with Chromium's fake camera, and a stream name that is HTML.

One server and one browser serve every test of this module (they are slow to start);
each test publishes on its own livestream. Screenshots of every page, at desktop and
phone widths, go to a temporary directory removed at teardown (set WEB_SHOTS_DIR to
keep them)."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
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
    tab.on(
        "dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
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


def buffered_ranges(page: Page) -> list[list[float]]:
    """What the video element holds: a hole in it is media the player never loaded."""
    return page.eval_on_selector(
        "#video",
        "v => Array.from({length: v.buffered.length}, (_, i) =>"
        " [+v.buffered.start(i).toFixed(3), +v.buffered.end(i).toFixed(3)])",
    )


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

    times, latencies = [video_time(page)], []
    for _ in range(20):  # 10 s of watching: currentTime moves on at every look
        page.wait_for_timeout(500)
        times.append(video_time(page))
        latencies.append(float(page.locator("#latency").get_attribute("data-seconds") or "nan"))
    seen = (times, buffered_ranges(page))
    assert times[-1] - times[0] >= 9.0, seen
    assert all(later > earlier for earlier, later in itertools.pairwise(times)), seen
    assert page.locator("#error").is_hidden()
    settled = latencies[4:]  # hls.js has caught up 2 s after it started
    assert all(latency < 2.0 for latency in settled), latencies  # NaN (none shown) fails
    assert int(page.locator("#viewers").get_attribute("data-count")) >= 1
    snap(page, shots, "player-live")

    # ?embed=1: the video and nothing around it, in another site's <iframe> (another
    # origin on loopback: Chromium keeps public sites from framing local ones); the
    # dashboard refuses to be framed there
    embed = page.context.new_page()
    embed.goto(f"http://{FAKE_HOST}:{live.ports['HTTP']}/healthz")  # a page without a CSP
    embed.evaluate(
        """([player, admin]) => {
            document.body.innerHTML = "";
            for (const [id, src] of [["player", player], ["admin", admin]]) {
                const frame = document.createElement("iframe");
                Object.assign(frame, {id, src, title: id});
                frame.style.cssText = "width:100%;height:45vh;border:0";
                document.body.append(frame);
            }
        }""",
        [f"{live.http}/play/{stream['playback_id']}?embed=1", f"{live.http}/admin"],
    )
    framed = embed.frame_locator("#player")
    expect(framed.locator("#overlay-badge")).to_have_text("Live", timeout=15_000)
    expect(framed.locator("header")).to_be_hidden()
    expect(framed.locator(".embed-stats")).to_contain_text("watching")
    # the framed dashboard is an error page (frame-ancestors 'none'), not a sign-in form
    admin_frame = embed.query_selector("#admin").content_frame()
    wait_for(lambda: admin_frame.url.startswith("chrome-error:"), 5, message="a blocked frame")
    snap(embed, shots, "player-embed")
    embed.close()

    publisher.terminate()
    expect(page.locator("#offline")).to_be_visible(timeout=15_000)
    expect(page.locator("#badge")).to_have_text("Offline")
    assert page.evaluate("window.notReloaded === true")
    snap(page, shots, "player-ended")


# hls.js's transmuxing worker answering 250 ms late, as on a machine short of CPU
SLOW_WORKER = """
(() => {
  const Real = self.Worker;
  self.Worker = class extends Real {
    constructor(...args) {
      super(...args);
      const listen = this.addEventListener.bind(this);
      this.addEventListener = (type, handler, options) => listen(
        type, type === "message" ? (event) => setTimeout(() => handler(event), 250) : handler,
        options);
    }
  };
})();
"""


def test_player_loads_every_part_on_a_busy_machine(live, processes, page):
    """hls.js 1.7 skips the last part of a segment (then stalls on the hole) when the
    playlist update that completes the segment lands between the download of the part
    before and its buffering, as it does when its worker answers late. The player
    buffers parts inline, so with a worker this slow the video still holds one
    unbroken range after 15 s."""
    page.add_init_script(SLOW_WORKER)
    stream = live.create_livestream(name="busy machine", reconnect_window_s=0)
    page.goto(f"/play/{stream['playback_id']}")
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=30)
    expect(page.locator("#badge")).to_have_text("Live", timeout=20_000)
    page.wait_for_timeout(15_000)
    ranges = buffered_ranges(page)
    publisher.terminate()
    assert len(ranges) == 1 and ranges[0][1] - ranges[0][0] >= 12, ranges


def sign_in(page: Page, key: str = API_KEY) -> None:
    page.goto("/admin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#dashboard")).to_be_visible()


def confirm(page: Page, reason: str | None = None) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    if reason is not None:
        dialog.get_by_label("Reason").fill(reason)
    dialog.locator("#confirm-ok").click()
    expect(dialog).to_be_hidden()


def test_admin_bans_the_publisher_unbans_and_plays_the_recording(live, processes, page, shots):
    stream = live.create_livestream(name=XSS_NAME, reconnect_window_s=0)
    publisher = ffmpeg_publish(processes, live.rtmp_url(stream["stream_key"]), seconds=60)
    live.wait_playable(stream["playback_id"])
    viewer = page.context.new_page()  # someone watching, for the viewer count
    viewer.goto(f"/play/{stream['playback_id']}")
    expect(viewer.locator("#badge")).to_have_text("Live", timeout=20_000)

    sign_in(page)
    card = page.locator(f'article[data-id="{stream["id"]}"]')
    expect(card.locator('[data-field="status"]')).to_have_text("live")
    expect(card.locator('[data-field="name"]')).to_have_text(XSS_NAME)  # text, not an <img>
    expect(card.locator('[data-field="viewers"]')).to_have_attribute(
        "data-count", re.compile(r"^[1-9]\d*$"), timeout=10_000
    )
    expect(card.locator('[data-field="protocol"]')).to_have_text("RTMP")
    expect(card.locator('[data-field="resolution"]')).to_contain_text("640\u00d7360")
    expect(card.locator(".preview img")).to_be_visible(timeout=10_000)
    assert page.locator("img[src='x']").count() == 0
    snap(page, shots, "admin-live")

    card.locator('[data-action="ban"]').click()
    expect(page.locator("#confirm-title")).to_have_text(f"Ban “{XSS_NAME}”?")
    snap(page, shots, "admin-ban-dialog")
    confirm(page, reason="test card")
    publisher.wait(timeout=5)  # the server closed ffmpeg's connection
    expect(card.locator('[data-field="status"]')).to_have_text("banned")
    expect(card.locator('[data-field="ban"]')).to_contain_text("test card")
    viewer.close()
    snap(page, shots, "admin-banned")

    card.locator('[data-action="unban"]').click()
    confirm(page)
    expect(card.locator('[data-field="status"]')).to_have_text("idle")
    assert live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["ban"] is None

    card.locator('[data-action="history"]').click()
    history = page.locator("#history")
    expect(history.locator("#history-name")).to_have_text(XSS_NAME)
    row = history.locator("tbody tr").first
    expect(row.locator('[data-field="end"]')).to_have_text("banned")
    row.locator('[data-action="play-recording"]').click(timeout=30_000)  # once it is ready
    video = row.locator("video")
    expect(video).to_be_visible()
    wait_for(lambda: video.evaluate("v => v.currentTime") > 1.0, 15, message="the VOD to play")
    href = row.locator('[data-action="download"]').get_attribute("href")
    status, body, headers = live.get(href)
    assert status == 200 and headers["Content-Type"] == "video/mp4" and len(body) > 10_000
    snap(page, shots, "admin-history")

    # the recording's own page, /vod/{asset_id}
    asset_id = href.split("/")[2]
    vod = page.context.new_page()
    vod.goto(f"/vod/{asset_id}")
    expect(vod.locator("#badge")).to_have_text("Recording")
    expect(vod.locator("#download")).to_have_attribute("href", href)
    wait_for(lambda: video_time(vod) > 1.0, 15, message="the recording page to play")
    snap(vod, shots, "vod-page")
    vod.close()


def test_admin_creates_a_stream_and_manages_webhooks(live, page, shots):
    sign_in(page)
    page.get_by_label("Name").fill("Studio B")
    page.get_by_role("button", name="Create livestream").click()
    created = page.locator("#created")
    expect(created).to_contain_text("Created “Studio B”")
    server = created.get_by_role("textbox", name="OBS server", exact=True).input_value()
    key = created.get_by_role("textbox", name="Stream key", exact=True).input_value()
    assert server == f"rtmp://127.0.0.1:{live.ports['RTMP ingest']}/live"
    assert key.startswith("sk_")
    assert (
        created.get_by_role("textbox", name="SRT URL", exact=True)
        .input_value()
        .endswith(f"streamid={key}")
    )
    assert (
        created.get_by_role("textbox", name="WHIP URL", exact=True).input_value()
        == f"{live.http}/whip"
    )
    stream = next(
        s for s in live.api("GET", "/v1/livestreams")[1]["data"] if s["name"] == "Studio B"
    )
    assert stream["stream_key"] == key
    snap(page, shots, "admin-created")

    card = page.locator(f'article[data-id="{stream["id"]}"]')
    card.locator('[data-action="reset-key"]').click()
    confirm(page)
    new_key = card.get_by_role("textbox", name="Stream key", exact=True)
    expect(new_key).not_to_have_value(key)
    assert (
        live.api("GET", f"/v1/livestreams/{stream['id']}")[1]["stream_key"] == new_key.input_value()
    )

    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hooks")  # nobody listens
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhook-secret")).to_contain_text("shown once")
    assert page.locator("#webhook-secret").get_by_role("textbox").input_value().startswith("whsec_")
    live.api("PATCH", f"/v1/livestreams/{stream['id']}/ban", {})
    delivery = page.locator("#delivery-rows tr", has_text="livestream.banned")
    expect(delivery.locator('[data-field="attempts"]')).not_to_have_text("0", timeout=10_000)
    before = int(delivery.locator('[data-field="attempts"]').inner_text())
    delivery.locator('[data-action="resend"]').click()
    expect(page.locator("#message")).to_contain_text("Sent livestream.banned again")
    wait_for(
        lambda: live.api("GET", "/v1/webhooks/deliveries")[1]["data"][0]["attempts"] > before,
        10,
        message="the resend to be attempted",
    )
    snap(page, shots, "admin-webhooks")

    card.locator('[data-action="delete"]').click()
    confirm(page)
    expect(page.locator(f'article[data-id="{stream["id"]}"]')).to_have_count(0)
    assert live.api("GET", f"/v1/livestreams/{stream['id']}")[0] == 404


def test_admin_with_a_read_key_only_reads(live, page, shots):
    status, key = live.api("POST", "/v1/api-keys", {"name": "viewer", "scope": "read"})
    assert status == 201
    live.create_livestream(name="Read me")
    sign_in(page, key["key"])
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.locator("article", has_text="Read me")).to_be_visible()
    expect(page.locator("#create")).to_be_hidden()
    expect(page.locator("#webhook-form")).to_be_hidden()
    for action in ("ban", "delete", "disconnect", "reset-key", "connect"):
        expect(page.locator(f'[data-action="{action}"]:visible')).to_have_count(0)
    expect(page.locator('[data-action="history"]').first).to_be_visible()
    snap(page, shots, "admin-read-only")
    page.reload()  # the key survives a reload of the tab (session storage)...
    expect(page.locator("#dashboard")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()  # ...until signing out
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.get_by_label("API key").fill("lk_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-message")).to_contain_text("not accepted")


def test_publish_page_goes_live_with_the_fake_camera(live, page, shots):
    stream = live.create_livestream(name="From the browser", reconnect_window_s=0)
    banned = live.create_livestream(name="Banned one")
    live.api("PATCH", f"/v1/livestreams/{banned['id']}/ban", {"reason": "spam"})
    page.goto("/publish")
    expect(page.locator("#no-camera")).to_be_hidden(timeout=10_000)  # the preview runs
    assert page.locator("#camera option").count() >= 1
    assert page.locator("#microphone option").count() >= 1
    problem = page.locator("#problem")

    page.get_by_label("Stream key").fill("sk_not_a_key")
    page.get_by_role("button", name="Go live").click()
    expect(problem).to_contain_text("stream key is not valid")
    page.get_by_label("Stream key").fill(banned["stream_key"])
    page.get_by_role("button", name="Go live").click()
    expect(problem).to_contain_text("banned")
    snap(page, shots, "publish-refused")

    page.get_by_label("Stream key").fill(stream["stream_key"])
    page.get_by_role("button", name="Go live").click()
    expect(page.locator("#badge")).to_have_text("Live", timeout=20_000)
    expect(problem).to_be_empty()
    live.wait_playable(stream["playback_id"], timeout=20)
    snap(page, shots, "publish-live")

    player = page.context.new_page()
    player.goto(f"/play/{stream['playback_id']}")
    expect(player.locator("#badge")).to_have_text("Live", timeout=20_000)
    first = video_time(player)
    wait_for(lambda: video_time(player) - first > 3, 10, message="the WHIP stream to play")
    snap(player, shots, "publish-watched")
    player.close()

    # the server ends the session (an admin disconnects it): the page says so
    live.api("POST", f"/v1/livestreams/{stream['id']}/disconnect")
    expect(problem).to_contain_text("dropped", timeout=20_000)
    expect(page.locator("#badge")).to_have_text("Not live")
    expect(page.get_by_role("button", name="Go live")).to_be_enabled()
    snap(page, shots, "publish-dropped")


def test_publish_page_explains_why_plain_http_off_localhost_has_no_camera(live, page, shots):
    page.goto(f"http://{FAKE_HOST}:{live.ports['HTTP']}/publish")
    notice = page.locator("#insecure")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("secure connection")
    expect(notice).to_contain_text("--https")
    expect(notice.locator("#insecure-origin")).to_have_text(
        f"http://{FAKE_HOST}:{live.ports['HTTP']}"
    )
    expect(page.get_by_role("button", name="Go live")).to_be_disabled()
    snap(page, shots, "publish-insecure")
