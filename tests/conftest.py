"""Shared fixtures.

The suite runs on one backend per run, chosen by SCRM_TEST_BACKEND:
- `embedded` (default): SQLite files + the in-process store;
- `production`: PostgreSQL (SCRM_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres)
  + Redis (SCRM_TEST_REDIS, default redis://127.0.0.1:6379/13). The suite creates and drops its own
  database and flushes only its own Redis DB number.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from bot.app import create_app
from bot.db import close_db, init_db, migrate
from bot.sandbox import Sandbox
from bot.settings import Secret, Settings
from bot.store import MemoryStore, RedisStore, Store

pytest_plugins = ["tests.sandbox_fixtures"]  # the `wechat` fixture: the sandbox

BACKEND = os.environ.get("SCRM_TEST_BACKEND", "embedded")
POSTGRES_ADMIN = os.environ.get("SCRM_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SCRM_TEST_REDIS", "redis://127.0.0.1:6379/13")

# Credentials of the test accounts; the sandbox accepts exactly these.
OA_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ADMIN_TOKEN = "test-admin-token"

production = pytest.mark.skipif(BACKEND != "production", reason="needs PostgreSQL + Redis")


def pytest_report_header(config: pytest.Config) -> str:
    return f"scrm backend: {BACKEND}"


def base_settings(**overrides: object) -> Settings:
    values: dict[str, object] = dict(
        oa_appid="wx2c2769f8efd9abc2",
        oa_secret=Secret("oa-test-secret"),
        oa_token=Secret("spamtest"),
        oa_aes_key=Secret(OA_AES_KEY),
        oa_opportunity_template_id="tpl-opportunity-0001",
        mp_appid="wx4f4bc4dec97d474b",
        mp_secret=Secret("mp-test-secret"),
        wecom_corpid="wx5823bf96d3bd56c7",
        wecom_token=Secret("QDG6eK"),
        wecom_aes_key=Secret(WECOM_AES_KEY),
        wecom_secret=Secret("wecom-test-secret"),
        wecom_agent_id=1000002,
        admin_token=Secret(ADMIN_TOKEN),
        secret_key=Secret("test-secret-key-0123456789abcdef"),
        public_url="http://scrm.test",
        completion_linger=0.005,  # tests wait for processed marks: keep them prompt
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


# --- database ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database made once per run: a SQLite file to copy, or a PostgreSQL database."""
    if BACKEND == "production":
        name = f"scrm_test_{uuid.uuid4().hex[:12]}"
        admin = POSTGRES_ADMIN

        async def create() -> None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        async def drop() -> None:
            conn = await asyncpg.connect(admin)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(create())
        url = admin.rsplit("/", 1)[0] + "/" + name
        try:
            asyncio.run(migrate(url))
            yield url
        finally:
            asyncio.run(drop())
    else:
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        asyncio.run(migrate(f"sqlite://{path}"))
        yield str(path)


TABLES = ("read", "share", "prospect_merge", "code_artwork", "outbound_message", "opportunity",
          "interaction", "identity",
          "prospect", "code", "material", "partner", "salesperson")


@pytest.fixture
async def database_url(database_template: str, tmp_path: Path) -> str:
    """A fresh, migrated, empty database for one test."""
    if BACKEND == "production":
        conn = await asyncpg.connect(database_template.replace("asyncpg://", "postgres://"))
        try:
            await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in TABLES)
                               + " RESTART IDENTITY CASCADE")
        finally:
            await conn.close()
        return database_template
    path = tmp_path / "scrm.sqlite3"
    shutil.copyfile(database_template, path)
    path.chmod(0o600)  # as the service makes its database file
    return f"sqlite://{path}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """Tortoise initialised on an empty database (for tests below the HTTP layer)."""
    await init_db(database_url)
    try:
        yield database_url
    finally:
        await close_db()


# --- store ------------------------------------------------------------------------------------

@pytest.fixture
def redis_url() -> str | None:
    return REDIS_URL if BACKEND == "production" else None


@pytest.fixture
async def store(redis_url: str | None) -> AsyncIterator[Store]:
    if redis_url is None:
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    shared = RedisStore(redis_url)
    yield shared
    await shared.close()


# --- settings and the app ---------------------------------------------------------------------

@pytest.fixture
def settings(database_url: str, redis_url: str | None) -> Settings:
    """Settings of a service whose WeChat roots point at nothing (use `wechat` for the sandbox)."""
    return base_settings(database_url=database_url, redis_url=redis_url,
                         wechat_api_base="http://127.0.0.1:9", wechat_mp_base="http://127.0.0.1:9",
                         wecom_api_base="http://127.0.0.1:9")


@pytest.fixture
def app_settings(settings: Settings, wechat: Sandbox) -> Settings:  # noqa: F811
    """The service's settings with every WeChat root at the sandbox."""
    return wechat.settings_for(settings)


@pytest.fixture
async def client(aiohttp_client: Any, app_settings: Settings, store: Store) -> Any:
    """The whole service (no background worker: tests run recovery by hand); `store` is asked
    for so that its Redis DB number starts empty."""
    return await aiohttp_client(create_app(app_settings, worker=False))
