"""Where the service's time goes: py-spy sampling it during the measured run (`--profile`).

The samples are kept as py-spy's raw collapsed stacks (one `frame;frame;... count` per line; open
them in speedscope or flamegraph.pl) and summarised as the functions with the largest inclusive
and self shares of the samples. On PostgreSQL with pg_stat_statements loaded, the statements
that took most of the database's time are reported beside them.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import asyncpg


def start(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    if not shutil.which("py-spy"):
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(spy: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    try:
        spy.wait(timeout)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def _name(frame: str) -> str:
    """`handler (bot/callbacks.py:120)` → `bot/callbacks.py:handler`."""
    function, _, where = frame.partition(" (")
    return f"{where.rstrip(')').rsplit(':', 1)[0]}:{function}" if where else function


def summarise(raw: Path, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return "no samples"
    rows = [f"{total} samples of the service"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        rows.append(f"  top {title}:")
        rows += [f"    {count / total:6.1%}  {name}" for name, count in counter.most_common(top)]
    return "\n".join(rows)


# --- PostgreSQL's own statistics (pg_stat_statements) -------------------------------------------

def statements_start(admin_url: str) -> bool:
    """Resets pg_stat_statements when the server has it loaded (shared_preload_libraries);
    False, and the profile goes without, when it does not."""

    async def reset() -> bool:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
            return True
        except asyncpg.PostgresError:
            return False
        finally:
            await conn.close()

    return asyncio.run(reset())


def statements_report(admin_url: str, database: str, output: Path, top: int = 15) -> str:
    """The statements of `database` that took most of PostgreSQL's time since the reset, with
    their calls and rows; written to `output` and returned."""

    async def read() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(admin_url)
        try:
            return await conn.fetch(
                "SELECT s.calls, s.rows, s.total_exec_time, s.mean_exec_time, s.query "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = $1 ORDER BY s.total_exec_time DESC", database)
        finally:
            await conn.close()

    rows = asyncio.run(read())
    total = sum(row["total_exec_time"] for row in rows) or 1.0
    lines = [f"PostgreSQL: {total / 1000:.1f} s of execution in {sum(r['calls'] for r in rows)} "
             f"calls of {len(rows)} statements"]
    for row in rows[:top]:
        query = " ".join(row["query"].split())
        lines.append(f"  {row['total_exec_time'] / total:6.1%} {row['calls']:>7} calls "
                     f"{row['rows']:>8} rows {row['mean_exec_time']:7.2f} ms  {query[:110]}")
    text = "\n".join(lines)
    output.write_text(text + "\n")
    return text
