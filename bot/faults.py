"""Telling apart what failed: a backing service that is down (503, retry later), a value the
database cannot store (the caller's 400), or a fault of our own (500)."""

from __future__ import annotations

import logging
import sqlite3

import asyncpg
from redis import exceptions as redis_errors
from tortoise.exceptions import DBConnectionError, OperationalError

from bot.errors import BadRequest
from bot.store import LockTimeout
from bot.wechat.client import WeChatTransportError

_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError is an OSError)
    DBConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    LockTimeout,
    WeChatTransportError,  # WeChat itself out of reach
)


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__
    return chain


def is_outage(exc: BaseException) -> bool:
    """The database, the store or the network is unavailable: nobody's input is at fault."""
    for cause in _causes(exc):
        if isinstance(cause, _OUTAGES):
            return True
        if isinstance(cause, asyncpg.InterfaceError) and "closed" in str(cause):
            return True  # "connection is closed", "pool is closing"
        if isinstance(cause, sqlite3.OperationalError | OperationalError) and (
                "database is locked" in str(cause) or "unable to open" in str(cause)):
            return True
    return False


def as_caller_error(exc: BaseException) -> BadRequest | None:
    """A 400 for an error that only a value from outside can cause: text UTF-8 cannot encode,
    a NUL, a string over its column's length, an out-of-range number (PostgreSQL's class 22)."""
    for cause in _causes(exc):
        if isinstance(cause, UnicodeEncodeError | asyncpg.DataError):
            return BadRequest("a value in the request cannot be stored", code="unstorable_value")
    return None


class OutageLog:
    """One line when a service becomes unavailable and one when it is back: not a traceback for
    every attempt in between."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            self.logger.warning("%s paused: a service it needs is unavailable (%s: %s)",
                                self.what, type(exc).__name__, exc)

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            self.logger.info("%s resumed", self.what)
