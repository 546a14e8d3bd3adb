"""A thread that runs codec work in order and hands results back to the loop.

PyAV's decoders and encoders release the GIL, so one thread per transcoder keeps
the event loop free while the codecs use the other core. The queue in front is
bounded: when the codecs cannot keep up, `submit` says so at once instead of
letting latency and memory grow, and the caller decides what to drop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")

_STOP = object()


class CodecWorker(Generic[In, Out]):
    def __init__(
        self,
        name: str,
        work: Callable[[In], Out],
        deliver: Callable[[Out], None],
        *,
        max_pending: int = 60,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.name = name
        self._work = work
        self._deliver = deliver
        self._loop = loop or asyncio.get_running_loop()
        self._queue: queue.Queue[object] = queue.Queue(max_pending)
        self.busy_s = 0.0  # seconds spent inside `work`: the codec's CPU share
        self.errors = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: In) -> bool:
        """Queue `item`; False (nothing queued) when the worker is behind or closed."""
        if self._closed:
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            started = time.perf_counter()
            try:
                result = self._work(item)  # type: ignore[arg-type]
            except Exception:
                self.errors += 1
                log.exception("%s: codec work failed", self.name)
                continue
            finally:
                self.busy_s += time.perf_counter() - started
            if self._closed:
                continue
            try:
                self._loop.call_soon_threadsafe(self._deliver, result)
            except RuntimeError:  # the loop is closed: nobody wants the result
                return

    async def close(self) -> None:
        """Stop after the work already queued is dropped; wait for the thread."""
        if self._closed:
            return
        self._closed = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join, 10)
