"""Upload benchmark: tus throughput on loopback into `live serve` (local storage),
and the server's memory while files of very different sizes go through.

A raw tus client (headers by hand, the body with `socket.sendfile`, so the client
costs next to nothing on a shared machine) uploads a 200 MB and a 1 GB file in
PATCHes of `--chunk-mb`; then tuspy (the real client of the tests, requests-based)
uploads the 200 MB file in the same chunks. For each: wall time, MB/s, the server's
CPU seconds, and its resident memory (VmRSS) before and after plus its peak
(VmHWM): memory must stay flat whatever the file size, since a chunk is streamed
to disk in 1 MiB batches and never held whole.

    flock /tmp/live-heavy.lock .venv/bin/python bench/uploads.py \
        [--sizes-mb 200,1000] [--chunk-mb 64]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LiveServer, Reaper, cpu_seconds, exit_on_sigterm, process_tree

MB = 1000 * 1000


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def api(server: LiveServer, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        server.http + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"X-API-Key": server.api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _exchange(sock: socket.socket, head: str, file=None, offset: int = 0, count: int = 0) -> dict:
    """One HTTP/1.1 request on a kept-alive socket; the answer's status and headers."""
    sock.sendall(head.encode())
    if count:
        sock.sendfile(file, offset, count)
    answer = b""
    while b"\r\n\r\n" not in answer:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError("server closed the connection")
        answer += piece
    lines = answer.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    headers = {"status": lines[0].split()[1]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body_length = int(headers.get("content-length", "0"))
    rest = answer.split(b"\r\n\r\n", 1)[1]
    while len(rest) < body_length:
        rest += sock.recv(65536)
    return headers


def raw_tus_upload(server: LiveServer, asset_id: str, path: Path, chunk: int) -> None:
    size = path.stat().st_size
    sock = socket.create_connection(("127.0.0.1", server.ports["HTTP"]))
    common = f"Host: 127.0.0.1\r\nX-API-Key: {server.api_key}\r\nTus-Resumable: 1.0.0\r\n"
    try:
        created = _exchange(
            sock,
            f"POST /v1/uploads HTTP/1.1\r\n{common}Upload-Length: {size}\r\n"
            f"Upload-Metadata: asset_id {_b64(asset_id)},filename {_b64(path.name)}\r\n"
            "Content-Length: 0\r\n\r\n",
        )
        assert created["status"] == "201", created
        location = "/" + created["location"].split("/", 3)[3]
        with open(path, "rb") as file:
            offset = 0
            while offset < size:
                count = min(chunk, size - offset)
                answer = _exchange(
                    sock,
                    f"PATCH {location} HTTP/1.1\r\n{common}Upload-Offset: {offset}\r\n"
                    "Content-Type: application/offset+octet-stream\r\n"
                    f"Content-Length: {count}\r\n\r\n",
                    file, offset, count,
                )  # fmt: skip
                assert answer["status"] == "204", answer
                offset = int(answer["upload-offset"])
    finally:
        sock.close()


def tuspy_upload(server: LiveServer, asset_id: str, path: Path, chunk: int) -> None:
    from tusclient import client

    tus = client.TusClient(f"{server.http}/v1/uploads", headers={"X-API-Key": server.api_key})
    metadata = {"asset_id": asset_id, "filename": path.name}
    tus.uploader(str(path), chunk_size=chunk, metadata=metadata).upload()


def measure(server: LiveServer, path: Path, chunk: int, client: str) -> dict:
    asset = api(server, "POST", "/v1/assets", {"name": path.name})
    pids = process_tree(server.pid)
    before_mem = memory_kib(server.pid)
    before_cpu = sum(cpu_seconds(pids).values())
    start = time.perf_counter()
    (raw_tus_upload if client == "raw" else tuspy_upload)(server, asset["id"], path, chunk)
    wall = time.perf_counter() - start
    cpu = sum(cpu_seconds(pids).values()) - before_cpu
    after_mem = memory_kib(server.pid)
    status = api(server, "GET", f"/v1/assets/{asset['id']}")["status"]
    # received whole: handed on to processing (which fails this random file at once)
    assert status in ("pending", "processing", "failed"), status
    size = path.stat().st_size
    return {
        "client": client, "size_mb": size / MB, "wall_s": wall, "mb_per_s": size / MB / wall,
        "server_cpu_s": cpu, "rss_before_mib": before_mem["VmRSS"] / 1024,
        "rss_after_mib": after_mem["VmRSS"] / 1024, "rss_peak_mib": after_mem["VmHWM"] / 1024,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", default="200,1000")
    parser.add_argument("--chunk-mb", type=int, default=64)
    args = parser.parse_args()
    exit_on_sigterm()
    chunk = args.chunk_mb * MB
    reaper = Reaper()
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as tmp:
        workdir = Path(tmp)
        files = []
        for size_mb in (int(s) for s in args.sizes_mb.split(",")):
            path = workdir / f"file-{size_mb}mb.bin"
            with open(path, "wb") as handle:
                block = os.urandom(MB)
                for _ in range(size_mb):
                    handle.write(block)
            files.append(path)
        try:
            server = LiveServer(reaper, workdir / "data")
            results = [measure(server, path, chunk, "raw") for path in files]
            results.append(measure(server, files[0], chunk, "tuspy"))
        finally:
            reaper.end_all()
    print(f"chunks of {args.chunk_mb} MB, local storage (fsync at each PATCH's end)")
    print("client  size_MB  wall_s   MB/s  server_cpu_s  rss_before  rss_after  rss_peak (MiB)")
    for r in results:
        print(
            f"{r['client']:6} {r['size_mb']:8.0f} {r['wall_s']:7.2f} {r['mb_per_s']:6.0f}"
            f" {r['server_cpu_s']:13.2f} {r['rss_before_mib']:11.1f} {r['rss_after_mib']:10.1f}"
            f" {r['rss_peak_mib']:9.1f}"
        )


if __name__ == "__main__":
    main()
