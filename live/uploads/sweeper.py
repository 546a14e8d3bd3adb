"""The uploads' rounds: abandoned uploads expire with their bytes (a scratch file,
or an S3 multipart upload and its staged pieces), and files PUT straight to the
bucket are noticed. Every node may sweep: each upload is removed by one write, so
two nodes never both drop it, and dropping bytes twice is harmless."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from live.uploads.intake import UploadIntake
from live.uploads.receiver import UploadReceiver

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 30.0


class UploadSweeper:
    def __init__(
        self, receiver: UploadReceiver, intake: UploadIntake, *, every_s: float = SWEEP_EVERY_S
    ) -> None:
        self.receiver = receiver
        self.intake = intake
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> None:
        expired = await self.receiver.expire_due()
        if expired:
            log.info("dropped %d expired upload(s)", expired)
        await self.intake.check_arrivals()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="upload sweeper")

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:  # the store or storage away for a moment: next round
                log.warning("upload sweep failed", exc_info=True)
            await asyncio.sleep(self.every_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
