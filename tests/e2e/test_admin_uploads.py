"""The dashboard's upload panel in headless Chromium against a real `live serve`: a
file chosen in the page goes up with tus-js-client, lands byte for byte as the asset's
source, and the list follows it to `ready` with a link to play it; a file that is no
video ends `failed` with the server's reason shown."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from harness import LiveProcess
from playwright.sync_api import Page, expect
from test_web_pages import browser, page, processes, sign_in  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

# the server's VOD work at normal priority: other tests' processes share this machine
ENV = {"LIVE_VOD_PRIORITY": "normal", "LIVE_LADDER_PRESET": "ultrafast"}


@pytest.fixture(scope="module")
def live(processes):  # noqa: F811
    server = LiveProcess(processes, processes.scratch_dir("live-uploads-"), env=ENV)
    yield server
    server.stop()


def _make_video(path: Path) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-t",
            "4",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def _upload(tab: Page, name: str, file: Path) -> str:
    """Fill the panel, press Upload, wait for the whole file to be sent: the asset id."""
    form = tab.locator("#upload-form")
    form.get_by_label("Title").fill(name)
    form.get_by_label("Video file").set_input_files(str(file))
    form.get_by_role("button", name="Upload").click()
    expect(tab.locator("#upload-state")).to_contain_text(f"Uploaded {file.name}", timeout=30_000)
    expect(tab.locator("#upload-bar")).to_have_attribute("value", "100")
    row = tab.locator("#asset-rows tr", has_text=name)
    expect(row).to_have_count(1)
    return row.get_attribute("data-asset")


def test_a_video_uploaded_in_the_dashboard_is_stored_whole_and_becomes_playable(
    live,
    page,  # noqa: F811 (a fixture)
    tmp_path,
):
    video = _make_video(tmp_path / "clip.mp4")
    sign_in(page)
    asset_id = _upload(page, "Clip from the dashboard", video)
    row = page.locator(f'#asset-rows tr[data-asset="{asset_id}"]')
    expect(row.locator('[data-field="status"]')).to_have_text("ready", timeout=180_000)
    play = row.locator('[data-action="play-asset"]')
    expect(play).to_have_attribute("href", f"/vod/{asset_id}")
    stored = live.data_dir / "recordings" / "assets" / asset_id / "source"
    assert stored.read_bytes() == video.read_bytes()
    status, asset = live.api("GET", f"/v1/assets/{asset_id}")
    assert status == 200 and asset["source"] == "upload" and asset["progress"] == 100

    # a file that is no video: uploaded all the same, then failed with the reason
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video\n" * 5000)
    junk_id = _upload(page, "Not a video", junk)
    junk_row = page.locator(f'#asset-rows tr[data-asset="{junk_id}"]')
    expect(junk_row.locator('[data-field="status"]')).to_have_text("failed", timeout=60_000)
    status, failed = live.api("GET", f"/v1/assets/{junk_id}")
    assert status == 200 and failed["error"]["message"]
    expect(junk_row.locator('[data-field="error"]')).to_contain_text(failed["error"]["message"])
    expect(junk_row.locator('[data-action="play-asset"]')).to_have_count(0)


def test_an_upload_cut_off_by_a_reload_resumes_into_the_same_asset(live, page, tmp_path):  # noqa: F811
    """The page reloaded after the first 5 MB chunk: choosing the same file again goes on
    from the server's offset into the asset already made, not into a new one."""
    data = os.urandom(12 * 1024 * 1024)  # three chunks; no video, so it ends failed
    file = tmp_path / "big.bin"
    file.write_bytes(data)
    sign_in(page)
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1}
    network.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": 2_000_000})
    form = page.locator("#upload-form")
    form.get_by_label("Title").fill("Cut short")
    form.get_by_label("Video file").set_input_files(str(file))
    form.get_by_role("button", name="Upload").click()
    # past the first chunk (5.2 MB), before the last: the server holds part of the file
    expect(page.locator("#upload-state")).to_contain_text(
        re.compile(r": [6-9]\.\d MB of"), timeout=30_000
    )
    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()  # signed in again from the tab
    row = page.locator("#asset-rows tr", has_text="Cut short")
    expect(row.locator('[data-field="status"]')).to_have_text("empty")
    asset_id = row.get_attribute("data-asset")
    status, uploads = live.api("GET", "/v1/assets?page_size=100")
    assert status == 200
    assert [a["id"] for a in uploads["data"] if a["name"] == "Cut short"] == [asset_id]

    network.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})
    form.get_by_label("Title").fill("Cut short")
    form.get_by_label("Video file").set_input_files(str(file))
    form.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-state")).to_contain_text("Uploaded big.bin", timeout=30_000)
    _status, uploads = live.api("GET", "/v1/assets?page_size=100")
    assert [a["id"] for a in uploads["data"] if a["name"] == "Cut short"] == [asset_id]
    stored = live.data_dir / "recordings" / "assets" / asset_id / "source"
    assert stored.read_bytes() == data
