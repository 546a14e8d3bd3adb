"""A TCP relay on loopback that reaches the server from another source address.

The ffmpeg CLI cannot bind its RTMP connection to a local address; through this
relay its connection reaches the server from, say, 127.0.0.2, so a test can play
two clients on two addresses. Threads, one pair per connection; `close` ends all.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpRelay:
    def __init__(self, target: tuple[str, int], source_host: str) -> None:
        self.target = target
        self.source_host = source_host
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(
                    self.target, timeout=5, source_address=(self.source_host, 0)
                )
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for reader, writer in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(reader, writer), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _pipe(reader: socket.socket, writer: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := reader.recv(65536):
            writer.sendall(data)
    with contextlib.suppress(OSError):
        writer.shutdown(socket.SHUT_WR)
