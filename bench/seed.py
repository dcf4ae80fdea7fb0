"""What the benchmark's database holds before the load.

- The booth codes the pushes scan (`booth000`, `booth001`, ...), each with its salesperson, tags
  and welcome text, so that a SCAN or a follow through one is attributed as at a real booth.
- A history (`--history`, default 20,000 earlier followers with 100,000 processed pushes): three
  in four followed through a booth code (attributed, owned, tagged), the rest from a search (no
  owner), and each wrote four messages since; then their scores are rebuilt from that log
  (`python -m bot scores rebuild`), and ANALYZE. The database is measured at a working size,
  with a ledger, and with planner statistics, as in a service that has been running. (On a
  database created empty and filled within seconds, the planner has no statistics until
  autovacuum's first ANALYZE, up to a minute later, and may scan whole tables meanwhile;
  `--history 0` shows that first minute. A ledger analyzed while empty made every prepared
  statement's first, custom plans on `score_entry` cost milliseconds.)

The history's openids are not the pushes' senders, whose first follow still creates a prospect.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from contextlib import closing

import asyncpg

from bench.databases import Database
from bench.processes import ROOT

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
        code = f"(((id - 1) % {scenes}) + 1)"  # the booth code a person of the history came by
        their_code = f"((g - 1) % {history} % {scenes})"  # push g's person's code, less one
        their_pad = (f"lpad({their_code}::text, 3, '0')" if postgres
                     else f"substr('00' || {their_code}, -3, 3)")
        sql += [
            f"INSERT INTO prospect (tags, profile_score, behavior_score, created_at, updated_at) "
            f"SELECT '[]', 0, 0, {week_ago}, {week_ago} FROM {series(history)}",
            f"UPDATE prospect SET first_code_id = {code}, "
            f"owner_id = ({code} % {SALESPEOPLE}) + 1, owner_assigned_at = created_at, "
            f"tags = '[\"展会\", \"expo-2026\"]' WHERE id % 4 <> 0",
            "INSERT INTO identity (kind, value, prospect_id, created_at) "
            "SELECT 'oa_openid', 'oHistory' || id, id, created_at FROM prospect",
            # each person's first push their follow (through their code; every fourth person's
            # from a search, as in the booth mix: no code, no owner), four messages after it
            f"INSERT INTO interaction (source, kind, dedup_key, actor, scene, payload, "
            f"received_at, processed_at, attempts, prospect_id, code_id) "
            f"SELECT 'oa', CASE WHEN g <= {history} THEN 'event.subscribe' ELSE 'message.text' END,"
            f" 'msg:history' || g, 'oHistory' || ((g - 1) % {history} + 1), "
            f"CASE WHEN g <= {history} AND g % 4 <> 0 THEN 'booth' || {their_pad} END, "
            f"'{{\"Content\": \"价格\"}}', {week_ago}, {week_ago}, 0, (g - 1) % {history} + 1, "
            f"CASE WHEN g <= {history} AND g % 4 <> 0 THEN {their_code} + 1 END "
            f"FROM {series(history * 5)}",
        ]
    return sql


def seed(database: Database, scenes: int, history: int, env: dict[str, str]) -> None:
    """Puts in the codes and the history; `env` the service's environment, for the rebuild of
    the history's scores by the service's own command."""
    execute(database, statements(scenes, history, postgres=not database.is_sqlite))
    if history:
        rebuild = subprocess.run([sys.executable, "-m", "bot", "scores", "rebuild"], cwd=ROOT,
                                 env=env, capture_output=True, text=True, timeout=600,
                                 check=False)
        if rebuild.returncode != 0:
            raise RuntimeError(f"scores rebuild failed:\n{rebuild.stdout}{rebuild.stderr}")
    execute(database, ["ANALYZE"])


def execute(database: Database, sql: list[str]) -> None:
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
