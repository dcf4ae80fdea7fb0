"""The shared key-value store: in-process on the embedded default, Redis in production.

It holds what several processes must agree on (access tokens, locks) and fast paths (the push dedup
cache). The database stays the record: nothing lives only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import LockError

PREFIX = "scrm:"
TOKEN_KEY = PREFIX + "token:{}"  # access token per app (kind:appid)
TOKEN_LOCK = PREFIX + "lock:token:{}"
PUSH_SEEN = PREFIX + "push:{}:{}"  # (source, dedup key) of a push already stored


class LockTimeout(Exception):
    """The lock could not be taken in time."""


class Store(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Set only when absent; True when this call set it."""
        ...

    async def delete(self, key: str) -> None: ...

    def lock(self, name: str, timeout: float = 10.0,
             wait: float = 10.0) -> AbstractAsyncContextManager[None]: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryStore:
    """One process only: the embedded default and the tests."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)
        if len(self._data) > 200_000:
            self._evict()

    async def add(self, key: str, value: str, ttl: float) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]

    @asynccontextmanager
    async def lock(self, name: str, timeout: float = 10.0,
                   wait: float = 10.0) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError as exc:
            raise LockTimeout(name) from exc
        try:
            yield
        finally:
            lock.release()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisStore:
    """Shared by every process pointed at the same Redis database. Its connections are a
    blocking pool: past `max_connections` a caller waits (up to `wait` seconds) for one to come
    back, where redis-py's default pool fails it at once ("Too many connections") — a booth
    burst of a few hundred concurrent pushes would fail most of them."""

    def __init__(self, url: str, max_connections: int = 100, wait: float = 5.0) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=max_connections, timeout=wait)
        self.redis = aioredis.Redis(connection_pool=pool)

    async def get(self, key: str) -> str | None:
        value: str | None = await self.redis.get(key)
        return value

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        await self.redis.set(key, value, px=None if ttl is None else int(ttl * 1000))

    async def add(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self.redis.set(key, value, px=int(ttl * 1000), nx=True))

    async def delete(self, key: str) -> None:
        await self.redis.delete(key)

    @asynccontextmanager
    async def lock(self, name: str, timeout: float = 10.0,
                   wait: float = 10.0) -> AsyncIterator[None]:
        lock = self.redis.lock(name, timeout=timeout, blocking_timeout=wait)
        if not await lock.acquire():
            raise LockTimeout(name)
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # it expired under us: nothing to release
                await lock.release()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # a pool given is not closed with it


def create_store(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
