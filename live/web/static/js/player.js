// The player: /play/{playback_id} (live) and /vod/{asset_id} (a recording).
// Live: polls /play/{id}/status (which does not count as a view) and starts playing
// when the stream goes on air, without a reload; goes back to the offline card when
// it ends. ?embed=1 drops everything around the video, for an <iframe>.

import {attach, loadHls} from "./hls-loader.js";

const [, kind, id] = location.pathname.split("/");
const params = new URLSearchParams(location.search);
const embed = params.has("embed") && params.get("embed") !== "0";
const $ = (selector) => document.getElementById(selector);
const video = $("video");
const STATUS_EVERY_MS = 2000;

let player = null; // {hls, Hls, native} while playing or starting
let state = "offline"; // offline | starting | playing | failed
let failedAt = 0;
const RETRY_AFTER_FAILURE_MS = 10000;

if (embed) document.body.classList.add("embed");

function setBadge(text, live) {
  for (const badge of [$("badge"), $("overlay-badge")]) {
    badge.textContent = text;
    badge.className = live ? "badge live" : "badge idle";
  }
  $("overlay-badge").hidden = !live;
}

function showOffline(title, text) {
  state = "offline";
  $("offline-title").textContent = title;
  $("offline-text").textContent = text;
  $("offline").hidden = false;
  setBadge(kind === "vod" ? "Recording" : "Offline", false);
  setLatency(null);
}

function fail(message) {
  state = "failed";
  failedAt = Date.now();
  $("error").textContent = message;
  $("error").hidden = false;
}

function setLatency(seconds) {
  const text = seconds === null ? "–" : `${seconds.toFixed(1)} s`;
  $("latency").textContent = text;
  $("latency").dataset.seconds = seconds === null ? "" : seconds.toFixed(3);
  $("embed-latency").textContent = seconds === null ? "" : `${text} behind live`;
  $("embed-latency").hidden = seconds === null;
}

function setViewers(count) {
  $("viewers").textContent = String(count);
  $("viewers").dataset.count = String(count);
  $("embed-viewers").textContent = `${count} watching`;
}

/** How far behind the live edge the picture is, in seconds (null: unknown). */
function currentLatency() {
  if (state !== "playing" || kind !== "play") return null;
  if (player?.hls && Number.isFinite(player.hls.latency)) return player.hls.latency;
  if (player?.native && typeof video.getStartDate === "function") {
    const start = video.getStartDate().getTime(); // PROGRAM-DATE-TIME of position 0
    if (!Number.isNaN(start)) return Math.max(0, (Date.now() - start) / 1000 - video.currentTime);
  }
  if (video.seekable.length) {
    return Math.max(0, video.seekable.end(video.seekable.length - 1) - video.currentTime);
  }
  return null;
}

function stop() {
  if (player?.hls) player.hls.destroy();
  player = null;
  video.removeAttribute("src");
  video.load();
}

async function start(src) {
  state = "starting";
  $("error").hidden = true;
  player = await attach(video, src, {
    lowLatencyMode: true,
    maxLiveSyncPlaybackRate: 1.5, // catch up to the live edge after a stall
    backBufferLength: 30,
  });
  if (!player) {
    fail("This browser cannot play HLS without hls.js, and hls.js is not available here.");
    return;
  }
  if (player.hls) {
    const {Hls} = player;
    let recoveries = 0;
    player.hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && recoveries++ < 2) {
        player.hls.recoverMediaError();
        return;
      }
      stop();
      if (kind === "play") showOffline("This stream is offline",
        "It starts playing here by itself as soon as the broadcaster goes live.");
      else fail(`The recording could not be played (${data.details}).`);
    });
  }
  video.play().catch(() => { /* autoplay refused: the controls' play button works */ });
}

video.addEventListener("playing", () => {
  if (state !== "starting" && state !== "playing") return;
  state = "playing";
  $("offline").hidden = true;
  setBadge(kind === "vod" ? "Recording" : "Live", kind === "play");
});
video.addEventListener("error", () => {
  if (state !== "starting" && state !== "playing") return;
  const detail = video.error?.message || `code ${video.error?.code}`;
  stop();
  fail(`This browser could not play the ${kind === "vod" ? "recording" : "stream"} (${detail}).`);
});
video.addEventListener("ended", () => {
  if (kind !== "play") return;
  stop();
  showOffline("The stream has ended", "It starts again here by itself if the broadcaster comes back.");
});

async function pollStatus() {
  let status;
  try {
    const response = await fetch(`/play/${encodeURIComponent(id)}/status`, {cache: "no-store"});
    if (!response.ok) throw new Error(String(response.status));
    status = await response.json();
  } catch {
    return; // the server is restarting or the network is down: try again next time
  }
  setViewers(status.viewers);
  const retry = state === "failed" && Date.now() - failedAt > RETRY_AFTER_FAILURE_MS;
  if (status.live && (state === "offline" || retry)) {
    await start(`/live/${encodeURIComponent(id)}/index.m3u8`);
  } else if (!status.live && (state === "playing" || state === "starting")) {
    stop();
    showOffline("The stream has ended", "It starts again here by itself if the broadcaster comes back.");
  }
}

async function playRecording() {
  const base = `/vod/${encodeURIComponent(id)}`;
  $("title").textContent = "Recording";
  document.title = "Recording";
  $("viewers-row").hidden = true;
  $("latency-row").hidden = true;
  showOffline("Loading the recording…", "");
  const response = await fetch(`${base}/index.m3u8`, {method: "HEAD"});
  if (!response.ok) {
    showOffline("This recording is not available",
      "It may still be processing (try again in a minute), or it was deleted.");
    return;
  }
  $("download").href = `${base}/download.mp4`;
  $("download-row").hidden = false;
  await start(`${base}/index.m3u8`);
}

if (kind === "vod") {
  playRecording();
} else {
  showOffline("This stream is offline",
    "It starts playing here by itself as soon as the broadcaster goes live.");
  loadHls(); // fetch the library while waiting, so the start is quick
  pollStatus();
  setInterval(pollStatus, STATUS_EVERY_MS);
  setInterval(() => setLatency(currentLatency()), 500);
}
