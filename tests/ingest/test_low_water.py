"""The receive low-water mark: its arithmetic with a recording socket, and what the
kernel does with it on a real loopback TCP connection."""

from __future__ import annotations

import select
import socket
from types import SimpleNamespace

import pytest

from live.ingest.low_water import MAX_LOW_WATER, RATE_WINDOW_S, STALL_S, LowWaterMark


class RecordingSocket:
    def __init__(self, fail: bool = False) -> None:
        self.marks: list[int] = []
        self.fail = fail

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert (level, option) == (socket.SOL_SOCKET, socket.SO_RCVLOWAT)
        if self.fail:
            raise OSError("not supported")
        self.marks.append(value)


class Timers:
    """call_later that runs nothing by itself: the test fires what is due."""

    def __init__(self) -> None:
        self.pending: list[list] = []  # [delay, callback, cancelled]

    def __call__(self, delay: float, callback):
        entry = [delay, callback, False]
        self.pending.append(entry)
        return SimpleNamespace(cancel=lambda: entry.__setitem__(2, True))

    def live(self) -> list:
        return [e for e in self.pending if not e[2]]

    def fire(self) -> None:
        for entry in self.live():
            entry[2] = True
            entry[1]()


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def mark_on(sock, timers=None, coalesce_s=0.03, clock=None) -> LowWaterMark:
    return LowWaterMark(sock, 100.0, timers or Timers(), coalesce_s, clock or Clock())


def test_the_mark_is_what_the_message_lacks_until_the_rate_is_known() -> None:
    sock = RecordingSocket()
    mark = mark_on(sock)
    mark.after_read(1, 100.1, 500)
    assert sock.marks == []  # already 1: no system call
    mark.after_read(5000, 100.2, 900)
    mark.after_read(5000, 100.3, 1000)
    mark.after_read(10**9, 100.4, 1100)
    assert sock.marks == [5000, MAX_LOW_WATER]


def test_the_mark_follows_the_byte_rate_once_measured() -> None:
    sock = RecordingSocket()
    mark = mark_on(sock)
    mark.after_read(1, 100.0 + RATE_WINDOW_S / 2, 200_000)
    assert sock.marks == []  # half a window: no rate yet
    mark.after_read(1, 100.0 + RATE_WINDOW_S, 375_000)  # 3 Mbit/s over the window
    assert sock.marks == [11_250]  # 30 ms of it
    mark.after_read(20_000, 101.1, 390_000)  # a big frame under way: wait for all of it
    assert mark.value == 20_000


def test_a_stall_drops_the_mark_so_nothing_waits_under_it() -> None:
    sock, timers, clock = RecordingSocket(), Timers(), Clock()
    mark = mark_on(sock, timers, clock=clock)
    mark.after_read(8000, 100.1, 10)
    mark.after_read(8000, 100.16, 20)  # reads do not make timers
    (entry,) = timers.live()
    assert entry[0] == STALL_S and len(timers.pending) == 1
    clock.now = 100.2
    timers.fire()  # due, but read 40 ms ago: armed again for the rest of STALL_S
    (entry,) = timers.live()
    assert entry[0] == pytest.approx(STALL_S - 0.04) and mark.value == 8000
    clock.now = 100.26
    timers.fire()  # nothing read for STALL_S
    assert mark.value == 1 and sock.marks == [8000, 1]
    mark.after_read(1, 100.5, 30)
    assert timers.live() == []  # a mark of 1 needs no timer
    mark.after_read(3000, 100.6, 40)
    mark.close()
    assert timers.live() == []


def test_no_coalescing_when_turned_off_and_no_socket_no_calls() -> None:
    sock = RecordingSocket()
    mark = mark_on(sock, coalesce_s=0.0)
    mark.after_read(1, 102.0, 10**6)
    mark.after_read(1, 102.1, 2 * 10**6)
    assert sock.marks == []
    silent = mark_on(None)
    silent.after_read(5000, 100.1, 10)
    assert silent.value == 1


def test_a_socket_that_refuses_the_option_is_read_as_before() -> None:
    sock = RecordingSocket(fail=True)
    mark = mark_on(sock)
    mark.after_read(5000, 100.1, 10)
    sock.fail = False
    mark.after_read(6000, 100.2, 20)
    assert mark.value == 1 and sock.marks == []


@pytest.fixture
def tcp_pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    yield client, server
    client.close()
    server.close()


def _readable(sock: socket.socket, timeout: float = 0.05) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def test_the_kernel_holds_bytes_under_the_mark_and_releases_them(tcp_pair) -> None:
    client, server = tcp_pair
    timers = Timers()
    mark = LowWaterMark(server, 0.0, timers)
    mark.after_read(4096, 0.0, 0)
    client.sendall(b"x" * 100)
    assert not _readable(server)  # 100 bytes queued, under the mark
    client.sendall(b"y" * 4000)
    assert _readable(server, 2.0)  # 4100 bytes: over it
    assert len(server.recv(65536)) == 4100

    client.sendall(b"z" * 10)
    assert not _readable(server)
    timers.fire()  # a stall: the mark drops
    assert _readable(server, 2.0) and server.recv(100) == b"z" * 10


def test_end_of_stream_wakes_the_reader_whatever_the_mark(tcp_pair) -> None:
    client, server = tcp_pair
    LowWaterMark(server, 0.0, Timers()).after_read(60_000, 0.0, 0)
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    assert _readable(server, 2.0)
    assert server.recv(100) == b"last words" and server.recv(100) == b""
