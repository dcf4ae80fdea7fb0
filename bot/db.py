"""The database: tortoise-orm connection and aerich migrations.

Aerich writes SQL for one dialect, so the migrations live in one folder per dialect
(models/migrations/sqlite, models/migrations/postgres); both are generated from the same models.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from aerich import Command
from pypika_tortoise.context import SqlContext
from pypika_tortoise.terms import Criterion, Term
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.sqlite.executor import SqliteExecutor
from tortoise.filters import json_contains

from models import MODEL_MODULES

MIGRATIONS = Path(__file__).resolve().parent.parent / "models" / "migrations"
log = logging.getLogger(__name__)


class JsonArrayContains(Criterion):  # type: ignore[misc]
    """`field__contains=[...]` on a JSON array column, on SQLite: every wanted item is in it.
    PostgreSQL has it built in (jsonb @>); tortoise leaves it to each dialect, the way it adds
    SQLite's REGEXP, so it is registered here for tag filters."""

    def __init__(self, field: Term, value: str) -> None:
        super().__init__()
        self.field, self.value = field, field.wrap_constant(value)

    def get_sql(self, ctx: SqlContext) -> str:
        return (f"NOT EXISTS (SELECT 1 FROM json_each({self.value.get_sql(ctx)}) AS wanted "
                f"WHERE wanted.value NOT IN (SELECT value FROM json_each("
                f"{self.field.get_sql(ctx)})))")


SqliteExecutor.FILTER_FUNC_OVERRIDE[json_contains] = JsonArrayContains


def dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite://") else "postgres"


async def _no_reset(connection: Any) -> None:
    """The service keeps no session state on a connection (no LISTEN, advisory locks or SET),
    so asyncpg's reset query on every release is a round trip for nothing."""


def tortoise_config(url: str) -> dict[str, Any]:
    connection: str | dict[str, Any] = url
    if url.startswith("postgres://") or url.startswith("postgresql://"):
        connection = expand_db_url("asyncpg://" + url.split("://", 1)[1])
        connection["credentials"]["reset"] = _no_reset
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {"models": [*MODEL_MODULES, "aerich.models"], "default_connection": "default"}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    """`TORTOISE_ORM`, the config aerich's own CLI reads (`aerich --app models ...`; see
    README), made when asked for: a bad SCRM_DATABASE_URL must not break importing this."""
    if name == "TORTOISE_ORM":
        return tortoise_config(os.environ.get("SCRM_DATABASE_URL", "sqlite://scrm.sqlite3"))
    raise AttributeError(name)


def private_sqlite_file(url: str) -> None:
    """The SQLite file holds names and chat text: created readable by its owner alone (its
    journal files take the same mode), and tightened if it was made readable by others."""
    if not url.startswith("sqlite://"):
        return
    raw = url.removeprefix("sqlite://").split("?", 1)[0]
    if raw in ("", ":memory:"):
        return
    path = Path(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
            log.warning("%s was readable by others (%o); it is now %o", path, mode, mode & 0o700)


async def init_db(url: str) -> None:
    private_sqlite_file(url)
    # The fallback makes the context visible to every task: aiohttp runs requests, and pytest
    # runs fixtures, in tasks other than the one that initialised the database.
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(url: str) -> list[str]:
    """Apply every migration not yet applied; returns their names."""
    private_sqlite_file(url)
    command = Command(
        tortoise_config=tortoise_config(url),
        app="models",
        location=str(MIGRATIONS / dialect(url)),
    )
    await command.init()
    try:
        return await command.upgrade(run_in_transaction=True)
    finally:
        await connections.close_all()


async def ping() -> bool:
    conn = connections.get("default")
    await conn.execute_query("SELECT 1")
    return True
