"""A TCP relay on loopback that cuts the client off once a given number of bytes
has gone from it to the server: a client whose connection drops in the middle of a
request. The bytes go on at the pace of a slow link, and the server gets an end of
stream (FIN) after the last of them, as when the client's machine goes away."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

PIECE = 64 * 1024


class TcpCutter:
    def __init__(self, target_port: int, cut_after: int, *, piece_delay_s: float = 0.005) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.piece_delay_s = piece_delay_s
        self.sent = 0  # client -> server bytes, over all connections
        self.cut = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(PIECE):
                with self._lock:
                    data = data[: max(0, self.cut_after - self.sent)]
                    self.sent += len(data)
                if data:
                    server.sendall(data)
                    time.sleep(self.piece_delay_s)
                if self.sent >= self.cut_after:
                    self.cut.set()
                    break
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)  # the server reads all, then the end
        if self.cut.is_set():
            client.close()  # the client is cut off

    def _downstream(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(PIECE):
                client.sendall(data)
        for sock in (server, client):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()
