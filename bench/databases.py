"""The benchmark's own database: created empty, counted after the run, dropped.

PostgreSQL: `postgres://USER@HOST:PORT/NAME` — NAME is created through the server's `postgres`
database and dropped afterwards; an existing NAME is refused, never reused. SQLite:
`sqlite://PATH`, or `sqlite` alone for a file in the run's temporary directory.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg


@dataclass(frozen=True)
class Database:
    url: str

    @classmethod
    def parse(cls, url: str, scratch: Path) -> Database:
        if url in ("sqlite", "sqlite://"):
            return cls(f"sqlite://{scratch / 'bench.sqlite3'}")
        if url.startswith("postgresql://"):
            url = "postgres://" + url.removeprefix("postgresql://")
        if not url.startswith(("postgres://", "sqlite://")):
            raise SystemExit(f"--database must be postgres://... or sqlite://...: {url}")
        return cls(url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite://")

    @property
    def path(self) -> Path:
        return Path(self.url.removeprefix("sqlite://"))

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1].split("?", 1)[0]

    @property
    def admin_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/postgres"

    def create(self) -> None:
        if self.is_sqlite:
            if self.path.exists():
                raise SystemExit(f"{self.path} exists; the benchmark makes its own database")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"', refuse_existing=True))

    def drop(self) -> None:
        if self.is_sqlite:
            for suffix in ("", "-wal", "-shm", "-journal", ".secret"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, sql: str, refuse_existing: bool = False) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            if refuse_existing and await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", self.name):
                raise SystemExit(f"database {self.name} exists (left by an interrupted run?); "
                                 f"drop it or name another in --database")
            await conn.execute(sql)
        finally:
            await conn.close()

    def scalar(self, sql: str) -> int:
        if self.is_sqlite:
            with closing(sqlite3.connect(self.path)) as conn:
                return int(conn.execute(sql).fetchone()[0])
        return int(asyncio.run(self._scalar(sql)))

    async def _scalar(self, sql: str) -> int:
        conn = await asyncpg.connect(self.url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()
