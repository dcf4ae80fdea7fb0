"""What the benchmark's database holds before the load.

- The booth codes the pushes scan (`booth000`, `booth001`, ...), each with its salesperson, tags
  and welcome text, so that a SCAN or a follow through one is attributed as at a real booth.
- A history (`--history`, default 20,000 earlier followers with 100,000 processed pushes), then
  ANALYZE: the database is measured at a working size and with planner statistics, as in a
  service that has been running. (On a database created empty and filled within seconds, the
  planner has no statistics until autovacuum's first ANALYZE, up to a minute later, and may scan
  whole tables meanwhile; `--history 0` shows that first minute.)

The history's openids are not the pushes' senders, whose first follow still creates a prospect.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing

import asyncpg

from bench.databases import Database

SALESPEOPLE = 8
WELCOME = "欢迎来到我们的展位！扫码关注后，顾问会尽快与您联系。"


def statements(scenes: int, history: int, postgres: bool) -> list[str]:
    def series(n: int) -> str:  # rows g = 1..n
        if postgres:
            return f"generate_series(1, {n}) AS s(g)"
        return (f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) "
                f"SELECT g FROM s) AS s")

    now = "now()" if postgres else "datetime('now')"
    week_ago = "now() - interval '7 days'" if postgres else "datetime('now', '-7 days')"
    true = "true" if postgres else "1"
    pad = "lpad((g - 1)::text, 3, '0')" if postgres else "substr('00' || (g - 1), -3, 3)"
    sql = [
        f"INSERT INTO salesperson (name, daily_cap, active, created_at) "
        f"SELECT '展会顾问' || g, 1000000, {true}, {now} FROM {series(SALESPEOPLE)}",
        f"INSERT INTO code (kind, channel, scene, campaign, salesperson_id, tags, permanent, "
        f"welcome_text, ready, created_at) "
        f"SELECT 'booth', 'oa', 'booth' || {pad}, 'expo-2026', (g % {SALESPEOPLE}) + 1, "
        f"'[\"展会\", \"expo-2026\"]', {true}, '{WELCOME}', {true}, {now} FROM {series(scenes)}",
    ]
    if history:
        sql += [
            f"INSERT INTO prospect (tags, profile_score, behavior_score, created_at, updated_at) "
            f"SELECT '[]', 0, 0, {week_ago}, {week_ago} FROM {series(history)}",
            "INSERT INTO identity (kind, value, prospect_id, created_at) "
            "SELECT 'oa_openid', 'oHistory' || id, id, created_at FROM prospect",
            f"INSERT INTO interaction (source, kind, dedup_key, actor, payload, received_at, "
            f"processed_at, attempts, prospect_id) "
            f"SELECT 'oa', 'message.text', 'msg:history' || g, "
            f"'oHistory' || ((g % {history}) + 1), "
            f"'{{\"Content\": \"价格\"}}', {week_ago}, {week_ago}, 0, (g % {history}) + 1 "
            f"FROM {series(history * 5)}",
        ]
    return [*sql, "ANALYZE"]


def seed(database: Database, scenes: int, history: int) -> None:
    sql = statements(scenes, history, postgres=not database.is_sqlite)
    if database.is_sqlite:
        with closing(sqlite3.connect(database.path)) as conn:
            for statement in sql:
                conn.execute(statement)
            conn.commit()
        return

    async def run() -> None:
        conn = await asyncpg.connect(database.url)
        try:
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())
