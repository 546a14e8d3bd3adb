// The dashboard: everything here goes through the public REST API (/v1) with the key
// the user signed in with, kept in this tab's session storage only. Whatever the API
// returns is shown as text (stream names are user input), never parsed as HTML.

import {Api} from "./api.js";
import {el, fill, formatBytes, formatDuration, formatTime, samePath, say} from "./dom.js";
import {attach} from "./hls-loader.js";
import {loadVendored} from "./vendor-loader.js";

const KEY_STORAGE = "live.apiKey";
const REFRESH_MS = 3000;
const POSTER_EVERY_MS = 6000;
// Viewer counts cost one request per live stream per refresh; past this many live
// streams the rest show "–" rather than spend the key's rate limit (600/min default).
const VIEWER_COUNTS_MAX = 20;
const ASSET_SETTLED = new Set(["ready", "failed", "empty"]);
// tus chunks: small enough that a cut connection loses little, big enough to be quick.
const UPLOAD_CHUNK_BYTES = 5 * 1024 * 1024;
const UPLOAD_RETRY_DELAYS_MS = [0, 1000, 3000, 5000, 10000];
const TUS_PATH = "/v1/uploads";
const $ = (id) => document.getElementById(id);

let api = null;
let isAdmin = false;
let timer = null;
let refreshing = false;
const cards = new Map(); // livestream id -> StreamCard
let historyOf = null; // {id, name} of the stream whose history is open
const historyRows = new Map(); // session id -> HistoryRow
const assets = new Map(); // asset id -> asset (refetched until settled)
const lastRendered = {webhooks: "", deliveries: "", assets: ""};
let fieldIds = 0;

// ---------------------------------------------------------------- sign in and out

async function signIn(key, quiet = false) {
  const candidate = new Api(key);
  try {
    await candidate.get("/livestreams?page_size=1");
  } catch (error) {
    sessionStorage.removeItem(KEY_STORAGE);
    if (!quiet) {
      say($("sign-in-message"), error.status === 401
        ? "That API key was not accepted. Check it and try again." : error.message, "error");
    }
    return;
  }
  isAdmin = true;
  try {
    await candidate.get("/api-keys?page_size=1"); // only an admin key may list keys
  } catch (error) {
    if (error.status === 403) isAdmin = false;
  }
  api = candidate;
  sessionStorage.setItem(KEY_STORAGE, key);
  document.body.classList.toggle("read-only", !isAdmin);
  $("read-only").hidden = isAdmin;
  $("scope").hidden = false;
  $("scope").textContent = isAdmin ? "Admin key" : "Read-only key";
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  say($("sign-in-message"), "");
  $("api-key").value = "";
  await Promise.all([refresh(), listEvents()]);
  timer = setInterval(refresh, REFRESH_MS);
  $("streams-title").focus();
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  clearInterval(timer);
  api = null;
  cards.clear();
  fill($("stream-list"));
  closeHistory();
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("scope").hidden = true;
  $("sign-in").hidden = false;
  say($("sign-in-message"), message, message ? "error" : "");
  $("api-key").focus();
}

// ---------------------------------------------------------------- refreshing

async function refresh() {
  if (!api || refreshing) return;
  refreshing = true;
  try {
    const list = await api.get("/livestreams?page_size=100");
    const viewers = new Map(await Promise.all(
      list.data.filter((ls) => ls.status === "live").slice(0, VIEWER_COUNTS_MAX).map(async (ls) => {
        const players = await api.get(`/livestreams/${ls.id}/players`).catch(() => null);
        return [ls.id, players ? players.current_viewers : null];
      })));
    renderStreams(list.data, viewers);
    if (historyOf) await renderHistory();
    await renderAssets();
    await renderWebhooks();
    $("refreshed").textContent = `Last refreshed at ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    if (error.status === 401) signOut("The key is no longer valid: sign in again.");
    else say($("message"), `Could not refresh: ${error.message}`, "error");
  } finally {
    refreshing = false;
  }
}

/** Run an API action, say how it went, refresh at once. */
async function act(action, done) {
  try {
    await action();
    say($("message"), done, "ok");
  } catch (error) {
    say($("message"), error.message, "error");
  }
  await refresh();
}

// ---------------------------------------------------------------- confirmations

function confirmDialog({title, text, ok = "Confirm", ban = false}) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("ban-fields").hidden = !ban;
  $("ban-reason").value = "";
  $("ban-until").value = "";
  dialog.returnValue = "";
  dialog.showModal();
  if (ban) $("ban-reason").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"
      ? {reason: $("ban-reason").value.trim(), until: $("ban-until").value} : null), {once: true});
  });
}

// ---------------------------------------------------------------- copyable settings

function copyField(label, value) {
  const id = `copy-${++fieldIds}`;
  const input = el("input", {id, readonly: true, value: value ?? "", spellcheck: "false"});
  const button = el("button", {type: "button", "aria-label": `Copy ${label}`}, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select(); // no clipboard API off a secure context: the old way
      document.execCommand("copy");
    }
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return el("div", {class: "copy-field"},
    el("div", {class: "field"}, el("label", {for: id}, label), input), button);
}

function connectionDetails(ls) {
  const rtmp = ls.ingest.rtmp;
  const fields = [
    el("p", {class: "muted"}, "OBS: Settings → Stream → Service “Custom…”, then the server and key below."),
    copyField("OBS server", rtmp.slice(0, rtmp.lastIndexOf("/"))),
    copyField("Stream key", ls.stream_key),
  ];
  if (ls.ingest.rtmps) {
    fields.push(copyField("OBS server (RTMPS)", ls.ingest.rtmps.slice(0, ls.ingest.rtmps.lastIndexOf("/"))));
  }
  fields.push(
    copyField("SRT URL", ls.ingest.srt),
    copyField("WHIP URL", ls.ingest.whip),
    copyField("WHIP bearer token", ls.stream_key),
    copyField("Player page", ls.playback.player),
    copyField("HLS URL", ls.playback.hls),
    el("p", {}, "Or go live from a browser: ", el("a", {href: "/publish", target: "_blank", rel: "noopener"}, "the publishing page"), "."),
  );
  return fields;
}

// ---------------------------------------------------------------- livestream cards

const FACTS = [["protocol", "Protocol"], ["bitrate", "Bitrate"], ["resolution", "Resolution"],
  ["viewers", "Viewers"], ["uptime", "Live for"]];

class StreamCard {
  constructor(ls) {
    this.ls = ls;
    this.preview = el("div", {class: "preview"});
    this.posterAt = 0;
    this.name = el("h3", {dataset: {field: "name"}});
    this.status = el("span", {class: "badge", dataset: {field: "status"}});
    this.facts = {};
    const facts = el("dl", {class: "facts"}, FACTS.map(([field, label]) => {
      this.facts[field] = el("dd", {dataset: {field}});
      return el("div", {}, el("dt", {}, label), this.facts[field]);
    }));
    this.banInfo = el("p", {class: "muted", dataset: {field: "ban"}, hidden: true});
    this.warnings = el("ul", {class: "warnings"});
    this.watch = el("a", {class: "button", target: "_blank", rel: "noopener"}, "Watch");
    this.buttons = {
      history: this.button("history", "History", () => openHistory(this.ls)),
      connect: this.button("connect", "Connect", () => this.toggleConnect(), true),
      disconnect: this.button("disconnect", "Disconnect", () => this.disconnect(), true),
      ban: this.button("ban", "Ban", () => this.ban(), true),
      unban: this.button("unban", "Unban", () => this.unban(), true),
      resetKey: this.button("reset-key", "Reset key", () => this.resetKey(), true),
      delete: this.button("delete", "Delete", () => this.remove(), true),
    };
    this.buttons.ban.classList.add("danger");
    this.buttons.delete.classList.add("danger");
    this.connect = el("div", {class: "connect", hidden: true});
    this.node = el("article", {class: "card", dataset: {id: ls.id}},
      this.preview,
      el("div", {class: "body"},
        el("div", {class: "title"}, this.name, this.status),
        facts, this.banInfo, this.warnings,
        el("div", {class: "actions"}, this.watch, Object.values(this.buttons)),
        this.connect));
  }

  button(action, label, onclick, adminOnly = false) {
    const button = el("button", {type: "button", dataset: {action}, onclick}, label);
    if (adminOnly && !isAdmin) button.hidden = true;
    return button;
  }

  update(ls, viewers) {
    this.ls = ls;
    const session = ls.current_session;
    const live = ls.status === "live";
    this.node.setAttribute("aria-label", `Livestream ${ls.name}`);
    this.name.textContent = ls.name;
    const reconnecting = live && session?.reconnecting;
    this.status.textContent = reconnecting ? "reconnecting" : ls.status;
    this.status.className = `badge ${ls.status}`;
    const video = session?.video;
    const kbps = session?.ingest_health?.bitrate_kbps ?? video?.bitrate_kbps;
    const values = {
      protocol: session ? session.protocol.toUpperCase() : "–",
      bitrate: kbps ? `${Math.round(kbps)} kbps` : "–",
      resolution: video?.width ? `${video.width}×${video.height}${video.fps ? ` @ ${Math.round(video.fps)}` : ""}` : "–",
      viewers: live ? String(viewers ?? "–") : "–",
      uptime: session ? formatDuration((Date.now() - Date.parse(session.started_at)) / 1000) : "–",
    };
    for (const [field, value] of Object.entries(values)) this.facts[field].textContent = value;
    this.facts.viewers.dataset.count = live && viewers !== null && viewers !== undefined ? String(viewers) : "";
    this.banInfo.hidden = !ls.ban;
    if (ls.ban) {
      const until = ls.ban.until ? ` until ${formatTime(ls.ban.until)}` : " until unbanned";
      this.banInfo.textContent = `Banned${until}${ls.ban.reason ? `: ${ls.ban.reason}` : ""}`;
    }
    fill(this.warnings, (session?.warnings || []).map((text) => el("li", {}, text)));
    this.watch.href = `/play/${encodeURIComponent(ls.playback_id)}`;
    this.watch.setAttribute("aria-label", `Watch ${ls.name}`);
    for (const [key, button] of Object.entries(this.buttons)) {
      button.setAttribute("aria-label", `${button.textContent} ${ls.name}`);
      if (!isAdmin && key !== "history") button.hidden = true;
    }
    if (isAdmin) {
      this.buttons.disconnect.hidden = !live;
      this.buttons.ban.hidden = ls.status === "banned";
      this.buttons.unban.hidden = ls.status !== "banned";
      this.buttons.connect.hidden = !ls.stream_key;
    }
    this.updatePreview(ls, live);
  }

  updatePreview(ls, live) {
    this.preview.classList.toggle("empty", !live);
    if (!live) {
      this.posterAt = 0;
      fill(this.preview, el("span", {}, ls.status === "banned" ? "Banned" : "Not live"));
      return;
    }
    const now = Date.now();
    if (now - this.posterAt < POSTER_EVERY_MS) return;
    this.posterAt = now;
    const image = el("img", {
      src: `/live/${encodeURIComponent(ls.playback_id)}/poster.jpg?t=${now}`,
      alt: `Latest picture of ${ls.name}`,
    });
    image.addEventListener("error", () => fill(this.preview, el("span", {}, "No picture yet")));
    image.addEventListener("load", () => fill(this.preview, image));
  }

  toggleConnect() {
    this.connect.hidden = !this.connect.hidden;
    this.buttons.connect.setAttribute("aria-expanded", String(!this.connect.hidden));
    if (!this.connect.hidden) fill(this.connect, connectionDetails(this.ls));
  }

  async disconnect() {
    const ls = this.ls;
    if (!await confirmDialog({title: `Disconnect “${ls.name}”?`, ok: "Disconnect",
      text: "The publisher's connection is closed now. It may connect again."})) return;
    await act(() => api.call("POST", `/livestreams/${ls.id}/disconnect`), `Disconnected “${ls.name}”.`);
  }

  async ban() {
    const ls = this.ls;
    const answer = await confirmDialog({title: `Ban “${ls.name}”?`, ok: "Ban", ban: true,
      text: "The publisher is disconnected now, and every publish is refused until you unban the stream (or until the time below)."});
    if (!answer) return;
    const body = {};
    if (answer.reason) body.reason = answer.reason;
    if (answer.until) body.until = new Date(answer.until).toISOString();
    await act(() => api.call("PATCH", `/livestreams/${ls.id}/ban`, body), `Banned “${ls.name}”.`);
  }

  async unban() {
    const ls = this.ls;
    if (!await confirmDialog({title: `Unban “${ls.name}”?`, ok: "Unban",
      text: "Publishing with its stream key is allowed again."})) return;
    await act(() => api.call("PATCH", `/livestreams/${ls.id}/unban`), `Unbanned “${ls.name}”.`);
  }

  async resetKey() {
    const ls = this.ls;
    if (!await confirmDialog({title: `Reset the stream key of “${ls.name}”?`, ok: "Reset key",
      text: "The old key stops working at once and a publisher using it is disconnected. Give the broadcaster the new key."})) return;
    await act(async () => {
      this.ls = await api.call("POST", `/livestreams/${ls.id}/reset-stream-key`);
      this.connect.hidden = false;
      fill(this.connect, connectionDetails(this.ls));
    }, `New stream key for “${ls.name}”: see Connect.`);
  }

  async remove() {
    const ls = this.ls;
    if (!await confirmDialog({title: `Delete “${ls.name}”?`, ok: "Delete",
      text: "The livestream is deleted and a live publisher disconnected. Its recordings stay as assets."})) return;
    await act(() => api.call("DELETE", `/livestreams/${ls.id}`), `Deleted “${ls.name}”.`);
  }
}

function renderStreams(list, viewers) {
  const seen = new Set();
  const container = $("stream-list");
  let previous = null;
  for (const ls of list) {
    seen.add(ls.id);
    let card = cards.get(ls.id);
    if (!card) {
      card = new StreamCard(ls);
      cards.set(ls.id, card);
    }
    card.update(ls, viewers.get(ls.id));
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (wanted !== card.node) container.insertBefore(card.node, wanted);
    previous = card.node;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.node.remove();
      cards.delete(id);
    }
  }
  $("streams-empty").hidden = list.length > 0;
  if (historyOf && !seen.has(historyOf.id)) closeHistory();
}

// ---------------------------------------------------------------- history and recordings

class HistoryRow {
  constructor(session) {
    this.cells = {};
    this.assetStatus = null;
    this.node = el("tr", {dataset: {session: session.id}},
      ["started", "length", "protocol", "video", "end", "peak", "recording"].map((name) => {
        this.cells[name] = el("td", {dataset: {field: name}});
        return this.cells[name];
      }));
  }

  update(session, asset) {
    const c = this.cells;
    c.started.textContent = formatTime(session.started_at);
    c.length.textContent = formatDuration(session.duration_s);
    c.protocol.textContent = session.protocol.toUpperCase();
    const v = session.video;
    c.video.textContent = v ? `${v.codec} ${v.width}×${v.height}` : "–";
    c.end.textContent = session.ended_at ? (session.end_reason || "–") : "live now";
    c.peak.textContent = String(session.peak_viewers ?? 0);
    const status = asset ? asset.status : (session.asset_id ? "loading" : "none");
    if (status === this.assetStatus) return; // keep a playing inline video as it is
    this.assetStatus = status;
    if (!session.asset_id) {
      fill(c.recording, "Not recorded");
    } else if (!asset || asset.status !== "ready") {
      fill(c.recording, el("span", {dataset: {field: "asset-status"}}, asset ? asset.status : "…"));
    } else {
      fill(c.recording, this.recordingControls(asset));
    }
  }

  recordingControls(asset) {
    const holder = el("div", {class: "inline-player", hidden: true});
    const play = el("button", {type: "button", dataset: {action: "play-recording"}, "aria-expanded": "false"}, "Play");
    play.addEventListener("click", async () => {
      const open = holder.hidden;
      holder.hidden = !open;
      play.textContent = open ? "Close player" : "Play";
      play.setAttribute("aria-expanded", String(open));
      if (!open) {
        this.player?.hls?.destroy();
        fill(holder);
        return;
      }
      const video = el("video", {controls: true, playsinline: true, "aria-label": "Recording"});
      fill(holder, video);
      this.player = await attach(video, samePath(asset.hls_url));
      if (!this.player) video.src = samePath(asset.mp4_url); // any browser plays the MP4
      video.play().catch(() => {});
    });
    const duration = asset.duration_s ? ` (${formatDuration(asset.duration_s)})` : "";
    return el("div", {},
      el("div", {class: "row"}, play,
        el("a", {class: "button", href: samePath(asset.mp4_url), download: `${asset.id}.mp4`,
          dataset: {action: "download"}}, `Download MP4${duration}`),
        el("a", {href: `/vod/${encodeURIComponent(asset.id)}`, target: "_blank", rel: "noopener"}, "Open player")),
      holder);
  }
}

async function openHistory(ls) {
  historyOf = {id: ls.id, name: ls.name};
  historyRows.clear();
  fill($("history-rows"));
  $("history-name").textContent = ls.name;
  $("history").hidden = false;
  await renderHistory();
  $("history").scrollIntoView({block: "start"});
  $("history-title").focus();
}

function closeHistory() {
  historyOf = null;
  historyRows.clear();
  fill($("history-rows"));
  $("history").hidden = true;
}

async function renderHistory() {
  const shown = historyOf;
  let sessions;
  try {
    sessions = (await api.get(`/livestreams/${shown.id}/history?page_size=20`)).data;
  } catch (error) {
    if (error.status === 404) closeHistory();
    return;
  }
  await Promise.all(sessions.filter((s) => s.asset_id).map(async (s) => {
    const known = assets.get(s.asset_id);
    if (known && ASSET_SETTLED.has(known.status)) return;
    try {
      assets.set(s.asset_id, await api.get(`/assets/${s.asset_id}`));
    } catch { /* deleted, or not yet there: shown as loading */ }
  }));
  if (historyOf !== shown) return;
  const body = $("history-rows");
  for (const session of sessions) {
    let row = historyRows.get(session.id);
    if (!row) {
      row = new HistoryRow(session);
      historyRows.set(session.id, row);
    }
    row.update(session, assets.get(session.asset_id));
  }
  const order = sessions.map((s) => historyRows.get(s.id).node);
  order.forEach((node, i) => { if (body.children[i] !== node) body.insertBefore(node, body.children[i] || null); });
  $("history-empty").hidden = sessions.length > 0;
}

// ---------------------------------------------------------------- videos (assets)

function assetState(asset) {
  if (asset.status === "failed") {
    return el("span", {dataset: {field: "error"}}, `failed: ${asset.error?.message || "unknown error"}`);
  }
  if (asset.status === "ready") {
    return el("a", {href: `/vod/${encodeURIComponent(asset.id)}`, target: "_blank", rel: "noopener",
      dataset: {action: "play-asset"}, "aria-label": `Play ${asset.name}`}, "Play");
  }
  if (asset.status === "processing" || asset.status === "viewable") {
    return el("progress", {max: 100, value: asset.progress ?? 0, "aria-label": `Processing ${asset.name}`});
  }
  return "";
}

async function renderAssets() {
  const list = await api.get("/assets?page_size=50");
  const json = JSON.stringify(list.data);
  if (json === lastRendered.assets) return;
  lastRendered.assets = json;
  fill($("asset-rows"), list.data.map((asset) => {
    const progress = asset.status === "processing" || asset.status === "viewable" ? ` ${asset.progress ?? 0}%` : "";
    return el("tr", {dataset: {asset: asset.id}},
      el("td", {}, asset.name || asset.id),
      el("td", {}, asset.source),
      el("td", {}, formatTime(asset.created_at)),
      el("td", {}, el("span", {class: `badge ${asset.status}`, dataset: {field: "status"}}, asset.status),
        el("span", {dataset: {field: "progress"}}, progress)),
      el("td", {}, assetState(asset)));
  }));
  $("assets-empty").hidden = list.data.length > 0;
  $("asset-table").hidden = list.data.length === 0;
}

function showUploadProgress(text, percent = null) {
  $("upload-progress").hidden = false;
  $("upload-state").textContent = text;
  if (percent === null) $("upload-bar").removeAttribute("value");
  else $("upload-bar").value = percent;
}

/** An upload of this same file that was cut off, to its asset that still waits for it. */
async function unfinishedUpload(tus, file) {
  const probe = new tus.Upload(file, {endpoint: new URL(TUS_PATH, location.href).href});
  for (const previous of await probe.findPreviousUploads()) {
    const assetId = previous.metadata?.asset_id;
    if (!assetId) continue;
    const asset = await api.get(`/assets/${encodeURIComponent(assetId)}`).catch(() => null);
    if (asset?.status === "empty" && asset.upload) return {asset, previous};
  }
  return null;
}

/** The file to the asset's tus URL in chunks; resolves when the server has all of it. */
function sendFile(tus, file, asset, previous) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      endpoint: new URL(samePath(asset.upload.tus_url), location.href).href,
      chunkSize: UPLOAD_CHUNK_BYTES,
      retryDelays: UPLOAD_RETRY_DELAYS_MS,
      headers: {"X-API-Key": api.key},
      metadata: {asset_id: asset.id, filename: file.name},
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => showUploadProgress(
        `Uploading ${file.name}: ${formatBytes(sent)} of ${formatBytes(total)}`,
        total ? Math.floor((sent / total) * 100) : 0),
      onError: reject,
      onSuccess: resolve,
    });
    if (previous) upload.resumeFromPreviousUpload(previous);
    upload.start();
  });
}

async function uploadVideo(form) {
  const name = form.elements.name.value.trim();
  const file = form.elements.file.files[0];
  const originUrl = form.elements.origin_url.value.trim();
  if (!file === !originUrl) {
    say($("message"), "Choose a video file or give a URL to import from (not both).", "error");
    return;
  }
  if (originUrl) {
    const asset = await api.call("POST", "/assets", {name, origin_url: originUrl});
    form.reset();
    say($("message"), `Importing “${asset.name}”: it shows below.`, "ok");
    return;
  }
  const tus = await loadVendored("tus-src", "tus");
  if (!tus) {
    say($("message"), "The upload library (tus-js-client) is not installed on this server: run scripts/setup.sh there, or set web_js_url.", "error");
    return;
  }
  const resumed = await unfinishedUpload(tus, file);
  const asset = resumed ? resumed.asset : await api.call("POST", "/assets", {name});
  showUploadProgress(resumed ? `Resuming ${file.name}…` : `Uploading ${file.name}…`);
  await refresh();
  try {
    await sendFile(tus, file, asset, resumed?.previous);
  } catch (error) {
    say($("message"), `The upload stopped: ${error.message}. Choose the same file again to resume it.`, "error");
    return;
  }
  form.reset();
  showUploadProgress(`Uploaded ${file.name}: processing, see below.`, 100);
  say($("message"), `Uploaded “${asset.name}”.`, "ok");
}

// ---------------------------------------------------------------- webhooks

async function renderWebhooks() {
  const [hooks, deliveries] = await Promise.all([
    api.get("/webhooks?page_size=100"), api.get("/webhooks/deliveries?page_size=20")]);
  const hooksJson = JSON.stringify(hooks.data);
  if (hooksJson !== lastRendered.webhooks) {
    lastRendered.webhooks = hooksJson;
    fill($("webhook-rows"), hooks.data.map((hook) => el("tr", {dataset: {webhook: hook.id}},
      el("td", {}, hook.url),
      el("td", {}, hook.events.join(", ")),
      el("td", {}, formatTime(hook.created_at)),
      el("td", {}, isAdmin ? el("button", {type: "button", class: "danger", dataset: {action: "delete-webhook"},
        "aria-label": `Delete webhook ${hook.url}`, onclick: () => deleteWebhook(hook)}, "Delete") : ""))));
    $("webhooks-empty").hidden = hooks.data.length > 0;
    $("webhook-table").hidden = hooks.data.length === 0;
  }
  const deliveriesJson = JSON.stringify(deliveries.data);
  if (deliveriesJson !== lastRendered.deliveries) {
    lastRendered.deliveries = deliveriesJson;
    fill($("delivery-rows"), deliveries.data.map((d) => el("tr", {dataset: {delivery: d.id}},
      el("td", {}, formatTime(d.created_at)),
      el("td", {}, d.event),
      el("td", {dataset: {field: "state"}}, d.state),
      el("td", {dataset: {field: "attempts"}}, String(d.attempts)),
      el("td", {}, d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error || "–")),
      el("td", {}, isAdmin ? el("button", {type: "button", dataset: {action: "resend"},
        "aria-label": `Resend ${d.event}`, onclick: () => act(
          () => api.call("POST", `/webhooks/deliveries/${d.id}/resend`), `Sent ${d.event} again.`)},
      "Resend") : ""))));
    $("deliveries-empty").hidden = deliveries.data.length > 0;
    $("delivery-table").hidden = deliveries.data.length === 0;
  }
}

async function deleteWebhook(hook) {
  if (!await confirmDialog({title: "Delete this webhook?", ok: "Delete",
    text: `No more events go to ${hook.url}.`})) return;
  await act(() => api.call("DELETE", `/webhooks/${hook.id}`), "Webhook deleted.");
}

// ---------------------------------------------------------------- forms

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("api-key").value.trim());
});
$("sign-out").addEventListener("click", () => signOut());
$("history-close").addEventListener("click", closeHistory);

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    name: form.elements.name.value.trim(),
    record: form.elements.record.checked,
    latency_mode: form.elements.latency_mode.value,
  };
  try {
    const ls = await api.call("POST", "/livestreams", body);
    const panel = $("created");
    fill(panel, el("h3", {}, `Created “${ls.name}”`), connectionDetails(ls));
    panel.hidden = false;
    form.reset();
    say($("message"), `Created “${ls.name}”.`, "ok");
    panel.querySelector("input")?.focus();
  } catch (error) {
    say($("message"), error.message, "error");
  }
  await refresh();
});

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = event.target.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await uploadVideo(event.target);
  } catch (error) {
    say($("message"), error.message, "error");
  } finally {
    button.disabled = false;
  }
  await refresh();
});

/** The events this server sends, from its OpenAPI description. */
async function listEvents() {
  if ($("webhook-events").querySelector("input")) return;
  let names = [];
  try {
    const spec = await api.get("/openapi.json");
    names = spec.components.schemas.WebhookCreate.properties.events.items.enum;
  } catch {
    say($("message"), "Could not read the list of webhook events from /v1/openapi.json.", "error");
  }
  for (const name of names) {
    const id = `event-${name.replace(".", "-")}`;
    $("webhook-events").append(el("div", {class: "field inline"},
      el("input", {type: "checkbox", id, name: "events", value: name, checked: true}),
      el("label", {for: id}, name)));
  }
}

$("webhook-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const events = [...form.querySelectorAll("input[name=events]:checked")].map((i) => i.value);
  try {
    const hook = await api.call("POST", "/webhooks", {url: form.elements.url.value.trim(), events});
    fill($("webhook-secret"),
      el("p", {}, "The signing secret, shown once: keep it where your receiver can check signatures."),
      copyField("Signing secret", hook.secret));
    $("webhook-secret").hidden = false;
    form.elements.url.value = "";
    say($("message"), "Webhook added.", "ok");
  } catch (error) {
    say($("message"), error.message, "error");
  }
  await refresh();
});

for (const id of ["streams-title", "history-title"]) $(id).tabIndex = -1;
const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) signIn(saved, true);
else $("api-key").focus();
