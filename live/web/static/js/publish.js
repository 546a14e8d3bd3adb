// Publishing from the browser over WHIP (RFC 9725): camera and microphone, an SDP offer
// POSTed to /whip with the stream key as a Bearer token, DELETE to stop.

const $ = (id) => document.getElementById(id);
const GATHER_MS = 2000;
const DROP_GRACE_MS = 3000;
const MESSAGES = {
  401: "That stream key is not valid. Check it and try again.",
  403: "This livestream is banned: the server refuses to let it go live. Ask your admin.",
  409: "Someone else is live on this stream key right now.",
};

let media = null; // MediaStream of the chosen camera and microphone
let pc = null;
let resource = null; // the WHIP session URL, for DELETE
let dropTimer = null;
let statsTimer = null;
let lastBytes = null;

function setStatus(text) { $("status").textContent = text; }
function setProblem(text) { $("problem").textContent = text; }

function setLive(live) {
  $("badge").textContent = live ? "Live" : "Not live";
  $("badge").className = live ? "badge live" : "badge idle";
  $("go-live").disabled = live || pc !== null;
  $("stop").disabled = pc === null;
  $("stream-key").disabled = pc !== null;
}

function refuseInsecure() {
  $("insecure").hidden = false;
  $("insecure-origin").textContent = location.origin;
  for (const control of document.querySelectorAll("#publish-form input, #publish-form select, #publish-form button")) {
    control.disabled = true;
  }
  $("no-camera-text").textContent = "The camera is not available on an insecure (plain HTTP) page.";
}

async function openMedia() {
  const video = $("camera").value;
  const audio = $("microphone").value;
  const wanted = {
    video: video ? {deviceId: {exact: video}} : {width: {ideal: 1280}, height: {ideal: 720}},
    audio: audio ? {deviceId: {exact: audio}} : true,
  };
  const next = await navigator.mediaDevices.getUserMedia(wanted);
  if (pc) { // live: swap the tracks without renegotiating
    for (const sender of pc.getSenders()) {
      const track = next.getTracks().find((t) => t.kind === sender.track?.kind);
      if (track) await sender.replaceTrack(track);
    }
  }
  media?.getTracks().forEach((t) => t.stop());
  media = next;
  $("preview").srcObject = media;
  $("no-camera").hidden = true;
  await listDevices();
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select, noun] of [["videoinput", $("camera"), "Camera"], ["audioinput", $("microphone"), "Microphone"]]) {
    const current = media?.getTracks().find((t) => `${t.kind}input` === kind)?.getSettings().deviceId;
    select.replaceChildren(...devices.filter((d) => d.kind === kind).map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `${noun} ${i + 1}`;
      option.selected = d.deviceId === current;
      return option;
    }));
  }
}

function gathered(connection) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, GATHER_MS); // go with the candidates found so far
  });
}

async function goLive() {
  setProblem("");
  const key = $("stream-key").value.trim();
  if (!key) {
    setProblem("Enter the stream key first.");
    $("stream-key").focus();
    return;
  }
  if (!media) await openMedia();
  pc = new RTCPeerConnection();
  setLive(false);
  setStatus("Connecting…");
  for (const track of media.getTracks()) pc.addTransceiver(track, {direction: "sendonly", streams: [media]});
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  let response;
  try {
    response = await fetch("/whip", {
      method: "POST",
      headers: {"Content-Type": "application/sdp", "Authorization": `Bearer ${key}`},
      body: pc.localDescription.sdp,
    });
  } catch {
    return ended("The server cannot be reached. Check the network and try again.");
  }
  const body = await response.text();
  if (response.status !== 201) {
    let message = MESSAGES[response.status];
    if (!message) {
      try { message = JSON.parse(body).error.message; } catch { message = `The server answered ${response.status}.`; }
    }
    return ended(message);
  }
  resource = new URL(response.headers.get("Location"), location.href).href;
  const connection = pc;
  connection.addEventListener("connectionstatechange", () => watch(connection));
  await connection.setRemoteDescription({type: "answer", sdp: body});
}

function watch(connection) {
  if (connection !== pc) return;
  clearTimeout(dropTimer);
  const state = connection.connectionState;
  if (state === "connected") {
    setStatus("You are live.");
    setLive(true);
    statsTimer = statsTimer || setInterval(showRate, 1000);
  } else if (state === "disconnected") { // may come back by itself
    setStatus("The connection is unsteady…");
    dropTimer = setTimeout(() => {
      if (connection === pc && connection.connectionState !== "connected") dropped();
    }, DROP_GRACE_MS);
  } else if (state === "failed" || state === "closed") {
    dropped();
  }
}

function dropped() {
  ended("The connection to the server dropped: you are no longer live. The stream may have been ended by an admin, or the network went away. Press Go live to try again.");
}

async function showRate() {
  if (!pc) return;
  let bytes = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === "outbound-rtp") bytes += s.bytesSent || 0; });
  if (lastBytes !== null) {
    $("sending").textContent = `Sending ${((bytes - lastBytes) * 8 / 1000).toFixed(0)} kbps`;
    $("sending").dataset.bytes = String(bytes);
  }
  lastBytes = bytes;
}

/** Close the connection; `problem` says why when it was not the user's choice. */
function ended(problem = "") {
  clearTimeout(dropTimer);
  clearInterval(statsTimer);
  statsTimer = null;
  lastBytes = null;
  pc?.close();
  pc = null;
  resource = null;
  setLive(false);
  setStatus(problem ? "" : "Stopped.");
  $("sending").textContent = "";
  setProblem(problem);
}

async function stop() {
  const session = resource;
  ended();
  if (session) await fetch(session, {method: "DELETE"}).catch(() => {});
}

if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
  refuseInsecure();
} else {
  $("publish-form").addEventListener("submit", (event) => {
    event.preventDefault();
    goLive().catch((error) => ended(`Could not go live: ${error.message}`));
  });
  $("stop").addEventListener("click", stop);
  for (const select of [$("camera"), $("microphone")]) {
    select.addEventListener("change", () => openMedia().catch((error) => setProblem(`That device cannot be used: ${error.message}`)));
  }
  window.addEventListener("pagehide", () => {
    if (resource) fetch(resource, {method: "DELETE", keepalive: true}).catch(() => {});
  });
  openMedia().catch((error) => {
    $("no-camera-text").textContent = `No camera: ${error.message}. Allow the camera and microphone for this page, then reload it.`;
  });
}
