"""Record the seed corpus from real clients: `python -m fuzz.capture [--only TARGET]`.

- rtmp: the bytes FFmpeg's CLI (H.264 + AAC) and PyAV's newer FFmpeg (HEVC in
  Enhanced-RTMP tags) send when they publish to a listener driven by the server's
  own RTMP core.
- srt: the datagrams srt-live-transmit (encrypted, one seed per key length) and
  FFmpeg (plain and encrypted) send to a listener driven by the SRT core. Their
  conclusions carry the SYN cookie of the harness's listener instead of the one
  they got (the cookie hashes the caller's address and port, which the harness
  cannot reproduce); nothing else is changed.
- mpegts: the start of transport streams FFmpeg writes (H.264 or HEVC, AAC or MP2).
- whip: the SDP offers of Chromium (through Playwright), aiortc and FFmpeg 8's WHIP
  muxer (in PyAV).

Media is tiny (32x32 pixels, a fraction of a second) so every seed stays a few KB.
Needs ffmpeg, srt-live-transmit and Debian's chromium; run it under the end-to-end
lock on a shared machine. Everything runs on loopback, on ports picked at runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.server
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO, ClassVar, Final

import av

from fuzz import CORPUS, TARGETS
from fuzz import srt as srt_harness
from live.protocols.rtmp import PublishRequested, RtmpServerConnection
from live.protocols.srt import handshake as hs
from live.protocols.srt import packets as pk

STREAM_KEY: Final = "sk_fuzz"
MAX_SEED_BYTES: Final = 12 * 1024
_LAVFI_VIDEO: Final = "testsrc=size=32x32:rate=10"
_LAVFI_AUDIO: Final = "sine=frequency=440:sample_rate=8000"
# In a handshake datagram: the header, then version, type, ISN, MSS, window, kind, id, cookie.
_KIND_OFFSET: Final = pk.HEADER_SIZE + 20
_COOKIE_OFFSET: Final = pk.HEADER_SIZE + 28
_CLIENT_TIMEOUT_S: Final = 30


def write_seed(target: str, name: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}-{hashlib.sha1(data).hexdigest()[:10]}").write_bytes(data)
    print(f"{target}: {name} ({len(data)} bytes)")


def run(command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, timeout=_CLIENT_TIMEOUT_S)


def in_subprocess(client: str, url: str, check: bool = True) -> None:
    """A PyAV client in a process of its own: PyAV keeps the GIL while it waits on the
    network, so in this process it would starve the recorder's thread."""
    run([sys.executable, "-m", "fuzz.capture", "--client", client, url], check=check)


def ffmpeg(*args: str) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *args]


# -- RTMP ---------------------------------------------------------------------------------


class RtmpRecorder:
    """Accepts one publisher at a time with the server's core; keeps what it sent."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.sessions: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                with client:
                    self.sessions.append(self._record(client))

    @staticmethod
    def _record(client: socket.socket) -> bytes:
        core = RtmpServerConnection(app="live")
        received = bytearray()
        while not core.closed:
            data = client.recv(65536)
            if not data:
                break
            received += data
            core.receive_data(data)
            if any(isinstance(e, PublishRequested) for e in core.events()):
                core.accept_publish()
            client.sendall(core.data_to_send())
        return bytes(received)

    def close(self) -> None:
        self._server.close()
        self._thread.join(5)


def publish_pyav_hevc(url: str) -> None:
    """HEVC + AAC through FFmpeg 8's FLV muxer, which writes Enhanced-RTMP tags."""
    with av.open(url, "w", format="flv") as output:
        video = output.add_stream("libx265", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        video.options = {"x265-params": "log-level=error:keyint=5", "preset": "ultrafast"}
        audio = output.add_stream("aac", rate=8000)
        audio.layout = "mono"
        for index in range(5):
            frame = av.VideoFrame(32, 32, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([index * 40 % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = index, Fraction(1, 10)
            for packet in video.encode(frame):
                output.mux(packet)
        sound = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        sound.planes[0].update(bytes(sound.planes[0].buffer_size))
        sound.sample_rate, sound.pts = 8000, 0
        for packet in [*audio.encode(sound), *audio.encode(None), *video.encode(None)]:
            output.mux(packet)


def capture_rtmp() -> None:
    recorder = RtmpRecorder()
    url = f"rtmp://127.0.0.1:{recorder.port}/live/{STREAM_KEY}"
    try:
        run(ffmpeg("-f", "lavfi", "-i", _LAVFI_VIDEO, "-f", "lavfi", "-i", _LAVFI_AUDIO,
                   "-t", "0.5", "-c:v", "libx264", "-g", "5", "-b:v", "20k", "-c:a", "aac",
                   "-b:a", "16k", "-f", "flv", url))  # fmt: skip
        in_subprocess("hevc-rtmp", url)
        wait_for(lambda: len(recorder.sessions) == 2)
    finally:
        recorder.close()
    names = ("ffmpeg-h264-aac", "pyav-ffmpeg8-hevc-enhanced")
    for name, session in zip(names, recorder.sessions, strict=True):
        write_seed("rtmp", name, session[:MAX_SEED_BYTES])


# -- SRT ----------------------------------------------------------------------------------


def harness_cookie() -> int:
    """The SYN cookie the harness's listener gives its one caller at time 0."""
    listener = srt_harness.new_listener()
    induction = hs.Handshake(4, 0, hs.UDT_DGRAM, 1, 1500, 8192, hs.INDUCTION, 1, 0)
    request = pk.control_packet(pk.HANDSHAKE, 0, 0, 0, 0, induction.encode())
    listener.receive_datagram(request, srt_harness.PEER, 0.0)
    ((reply, _),) = listener.datagrams_to_send()
    return hs.parse_handshake(reply[pk.HEADER_SIZE :]).cookie


def with_cookie(datagram: bytes, cookie: int) -> bytes:
    """A conclusion handshake with its cookie replaced; any other datagram as it is."""
    first = struct.unpack_from(">I", datagram)[0] if len(datagram) >= 4 else 0
    if first != pk.CONTROL_BIT | pk.HANDSHAKE << 16 or len(datagram) < _COOKIE_OFFSET + 4:
        return datagram
    if struct.unpack_from(">I", datagram, _KIND_OFFSET)[0] != hs.CONCLUSION:
        return datagram
    return datagram[:_COOKIE_OFFSET] + struct.pack(">I", cookie) + datagram[_COOKIE_OFFSET + 4 :]


class SrtRecorder:
    """A UDP port served by the SRT core (the harness's listener settings), recording
    what one caller sends until it shuts down or falls silent."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]

    def record(self, caller: subprocess.Popen, until: float) -> list[tuple[float, bytes]]:
        listener = srt_harness.new_listener()
        start = last = time.monotonic()
        datagrams: list[tuple[float, bytes]] = []
        connected = closed = False
        while not closed and time.monotonic() < until:
            if caller.poll() is not None and time.monotonic() - last > 1.0:
                break  # gone without a word (it failed, or its SHUTDOWN was lost)
            now = time.monotonic() - start
            deadline = listener.get_timer()
            self.socket.settimeout(max(0.001, min(0.2, (deadline or now + 0.2) - now)))
            try:
                datagram, addr = self.socket.recvfrom(65536)
            except TimeoutError:
                listener.handle_timer(time.monotonic() - start)
            else:
                arrived = time.monotonic()
                datagrams.append((arrived - last, datagram))
                last = arrived
                listener.receive_datagram(datagram, addr, arrived - start)
            srt_harness.decide(listener, time.monotonic() - start)
            connected = connected or bool(listener.connections)
            closed = connected and not listener.connections
            for reply, addr in listener.datagrams_to_send():
                self.socket.sendto(reply, addr)
        return datagrams

    def close(self) -> None:
        self.socket.close()


def small_seed(datagrams: list[tuple[float, bytes]]) -> bytes:
    """The first datagrams up to MAX_SEED_BYTES, then the control packets after them
    (the caller's ACKACKs, key refreshes and SHUTDOWN), with the harness's cookie."""
    cookie = harness_cookie()
    kept: list[tuple[float, bytes]] = []
    size = 0
    for delay, datagram in datagrams:
        is_control = bool(datagram[:1]) and datagram[0] & 0x80
        if size + len(datagram) > MAX_SEED_BYTES and not is_control:
            continue
        kept.append((delay, with_cookie(datagram, cookie)))
        size += len(datagram) + 3
    return srt_harness.encode(kept)[: MAX_SEED_BYTES + 2048]


def _write_and_close(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), pipe:
        pipe.write(data)  # a few KB: the pipe's buffer holds it


def capture_srt(ts: Path) -> None:
    passphrase = srt_harness.PASSPHRASE
    callers = {
        "srt-live-transmit-aes128": ["srt-live-transmit", "-q", "file://con",
                                     "srt://127.0.0.1:{port}?streamid=" + STREAM_KEY
                                     + f"&passphrase={passphrase}&pbkeylen=16"],
        "srt-live-transmit-aes256": ["srt-live-transmit", "-q", "file://con",
                                     "srt://127.0.0.1:{port}?streamid=%23!::r=live/" + STREAM_KEY
                                     + f",m=publish&passphrase={passphrase}&pbkeylen=32"],
        "ffmpeg": ffmpeg("-re", "-i", str(ts), "-c", "copy", "-f", "mpegts",
                         "srt://127.0.0.1:{port}?streamid=publish:live/" + STREAM_KEY),
        "ffmpeg-aes192": ffmpeg("-re", "-i", str(ts), "-c", "copy", "-f", "mpegts",
                                "srt://127.0.0.1:{port}?streamid=" + STREAM_KEY
                                + f"&passphrase={passphrase}&pbkeylen=24"),
    }  # fmt: skip
    for name, template in callers.items():
        recorder = SrtRecorder()
        command = [part.replace("{port}", str(recorder.port)) for part in template]
        # srt-live-transmit reads file://con, which must be a pipe (it polls it), and
        # reads nothing that arrived before it connected: the stream comes a moment later.
        caller = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert caller.stdin is not None
        feeder = threading.Timer(1.0, _write_and_close, (caller.stdin, ts.read_bytes()))
        feeder.start()
        try:
            datagrams = recorder.record(caller, time.monotonic() + 15)
        finally:
            feeder.join()
            recorder.close()
            caller.terminate()
            caller.wait(10)
        write_seed("srt", name, small_seed(datagrams))


# -- MPEG-TS -----------------------------------------------------------------------------


def make_ts(directory: Path, name: str, video: str, audio: str, seconds: str = "0.5") -> Path:
    path = directory / f"{name}.ts"
    run(ffmpeg("-f", "lavfi", "-i", _LAVFI_VIDEO, "-f", "lavfi", "-i", _LAVFI_AUDIO,
               "-t", seconds, "-c:v", video, "-pix_fmt", "yuv420p", "-g", "5", "-b:v", "20k",
               *(["-x265-params", "log-level=error"] if video == "libx265" else []),
               "-c:a", audio,
               "-b:a", "16k", "-f", "mpegts", str(path)))  # fmt: skip
    return path


def capture_mpegts(directory: Path) -> None:
    for name, video, audio in (
        ("ffmpeg-h264-aac", "libx264", "aac"),
        ("ffmpeg-hevc-aac", "libx265", "aac"),
        ("ffmpeg-h264-mp2", "libx264", "mp2"),
    ):
        data = make_ts(directory, name, video, audio).read_bytes()
        write_seed("mpegts", name, data[: MAX_SEED_BYTES // 188 * 188])


# -- WHIP ---------------------------------------------------------------------------------

_CHROMIUM_OFFER: Final = """async (kinds) => {
    const pc = new RTCPeerConnection();
    for (const kind of kinds) pc.addTransceiver(kind, {direction: "sendonly"});
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await new Promise((done) => {
        if (pc.iceGatheringState === "complete") return done();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
        setTimeout(done, 3000);
    });
    const sdp = pc.localDescription.sdp;
    pc.close();
    return sdp;
}"""


def chromium_offers(scratch: Path) -> Iterator[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", f"--disk-cache-dir={scratch}"],
            env={"TMPDIR": str(scratch), "XDG_RUNTIME_DIR": str(scratch), "HOME": str(scratch)},
        )
        try:
            page = browser.new_page()
            for name, kinds in (("chromium-audio-video", ["audio", "video"]),
                                ("chromium-video", ["video"])):  # fmt: skip
                yield name, page.evaluate(_CHROMIUM_OFFER, kinds)
        finally:
            browser.close()


class _OfferCatcher(http.server.BaseHTTPRequestHandler):
    offers: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).offers.append(self.rfile.read(length))
        self.send_error(403)  # the offer is all we wanted

    def log_message(self, *args: object) -> None:
        pass


def ffmpeg_whip_offer() -> bytes:
    """The offer of FFmpeg's WHIP muxer (PyAV's FFmpeg 8), refused once it is posted."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OfferCatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        in_subprocess("whip", f"http://127.0.0.1:{server.server_address[1]}/whip", check=False)
    finally:
        server.shutdown()
        server.server_close()
    return _OfferCatcher.offers[0]


def publish_pyav_whip(url: str) -> None:
    with (
        contextlib.suppress(av.FFmpegError, OSError),
        av.open(url, "w", format="whip", options={"authorization": STREAM_KEY}) as output,
    ):
        video = output.add_stream("libx264", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        video.options = {"profile": "baseline", "bf": "0", "tune": "zerolatency"}
        audio = output.add_stream("libopus", rate=48000)
        audio.layout = "stereo"
        frame = av.VideoFrame(32, 32, "yuv420p")
        frame.pts = 0
        for packet in [*video.encode(frame), *video.encode(None)]:
            output.mux(packet)


def aiortc_offer() -> str:
    """The offer of aiortc, the WebRTC stack of Python WHIP clients."""
    from aiortc import RTCPeerConnection

    async def offer() -> str:
        pc = RTCPeerConnection()
        try:
            for kind in ("audio", "video"):
                pc.addTransceiver(kind, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            return pc.localDescription.sdp
        finally:
            await pc.close()

    return asyncio.run(offer())


def capture_whip(scratch: Path) -> None:
    for name, offer in chromium_offers(scratch):
        write_seed("whip", name, offer.encode())
    write_seed("whip", "aiortc-audio-video", aiortc_offer().encode())
    write_seed("whip", "pyav-ffmpeg8-whip-muxer", ffmpeg_whip_offer())


# -- all ------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the recorder saw fewer sessions than clients")
        time.sleep(0.05)


_CLIENTS: Final = {"hevc-rtmp": publish_pyav_hevc, "whip": publish_pyav_whip}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=TARGETS, action="append")
    parser.add_argument("--client", choices=_CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _CLIENTS[args.client](args.url)
        return
    targets = args.only or list(TARGETS)
    with tempfile.TemporaryDirectory(prefix="fuzz-capture-") as temp:
        scratch = Path(temp)
        for target in targets:
            shutil.rmtree(CORPUS / target, ignore_errors=True)
        if "rtmp" in targets:
            capture_rtmp()
        if "srt" in targets:
            capture_srt(make_ts(scratch, "srt-input", "libx264", "aac", "1"))
        if "mpegts" in targets:
            capture_mpegts(scratch)
        if "whip" in targets:
            capture_whip(scratch)


if __name__ == "__main__":
    main()
