"""Debian's nginx serving a directory of files: the static baseline of the LL-HLS load tool.

Set up as a static file server is when it is cheapest and nothing else: one worker
process, sendfile, no access log, no on-the-fly gzip (with `gzip_static` instead when
the origin sent gzipped playlists, so the same bytes go on the wire), keep-alive
connections that are never closed for their number of requests. Everything it writes
(configuration, pid file, error log, temp paths) stays in the prefix directory it is
given; it listens on a free loopback port. On leaving, the master is ended by its PID
and any worker it left behind by its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType

from common import Reaper, free_port, process_tree
from cpu_vs_nginx import end_nginx_workers, wait_listening

NGINX = "/usr/sbin/nginx"


def nginx_config(prefix: Path, root: Path, port: int, *, connections: int,
                 gzip_static: bool) -> str:  # fmt: skip
    """The whole nginx.conf; `connections` is how many the one worker must hold."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {connections + 64};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }}
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    gzip off;
    gzip_static {"on" if gzip_static else "off"};
    keepalive_requests 1000000;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


class StaticOrigin:
    """nginx serving `root` while the `with` block runs (its prefix is `prefix`)."""

    def __init__(self, prefix: Path, root: Path, *, connections: int, gzip_static: bool) -> None:
        self.prefix, self.root = prefix, root
        self.connections, self.gzip_static = connections, gzip_static
        self.port = 0
        self._reaper = Reaper()
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> StaticOrigin:
        # nginx started as root runs its worker as nobody, which must read the files.
        subdirectories = [path for path in self.root.rglob("*") if path.is_dir()]
        for directory in (self.prefix, self.root, *subdirectories):
            os.chmod(directory, 0o755)
        self.port = free_port()
        config = self.prefix / "nginx.conf"
        config.write_text(
            nginx_config(self.prefix, self.root, self.port, connections=self.connections,
                         gzip_static=self.gzip_static)
        )  # fmt: skip
        log = str(self.prefix / "error.log")
        self._process = self._reaper.popen(
            [NGINX, "-p", str(self.prefix), "-c", str(config), "-e", log],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_listening(self.port, self._process)
        except RuntimeError as error:
            self._stop()
            raise RuntimeError(f"{error}; its error log:\n{self.error_log()}") from None
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:  # fmt: skip
        self._stop()

    def error_log(self) -> str:
        try:
            return (self.prefix / "error.log").read_text()
        except OSError:
            return ""

    def _stop(self) -> None:
        if self._process is None:
            return
        workers = [pid for pid in process_tree(self._process.pid) if pid != self._process.pid]
        self._reaper.end_all()
        end_nginx_workers(workers)
        self._process = None
