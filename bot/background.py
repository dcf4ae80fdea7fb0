"""A loop of background work (the worker's recovery, the outbox's sender): started and stopped
with the application, one round at a time; an outage is one line when it starts and one when
it ends, any other failure a logged traceback, and the loop goes on either way."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.faults import OutageLog, is_outage


class Loop:
    def __init__(self, name: str, logger: logging.Logger, what: str, interval: float) -> None:
        self.name = name
        self.logger = logger
        self.what = what
        self.interval = interval
        self.outage = OutageLog(logger, what)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> None:
        """One round of the work."""
        raise NotImplementedError

    def kick(self) -> None:
        """Something is due now: the next round starts without waiting for the interval."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the round: a kick during it makes another round
            try:
                await self.round()
            except Exception as exc:
                if is_outage(exc):  # one line when a service goes away, one when it is back
                    self.outage.failed(exc)
                else:
                    self.logger.exception("%s failed; trying again shortly", self.what)
            else:
                self.outage.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
