"""Benchmark of `/mp/reads` heartbeats against a bare aiohttp hello-world, in one run.

    python bench/reads.py [--database postgres://postgres@127.0.0.1:5432/scrm_bench_reads]
                          [--redis redis://127.0.0.1:6379/14] [--connections 50]
                          [--duration 10] [--warmup 2] [--readers 5000] [--tool auto|wrk|python]
                          [--profile]
    python bench/reads.py --database sqlite               # the embedded default

The run creates its own database (an existing one is refused), migrates it and puts in
`--readers` prospects, each with a session token and a read of a whitepaper opened; every request
is one reader's heartbeat (`POST /mp/reads` with their bearer token and a rising progress),
readers taken in turns. It starts `python -m bot serve` and `python -m bench.hello` in turn,
drives each with the same load, checks that every heartbeat was answered 200 and that the reads'
seconds grew, and reports the throughput as a ratio to hello-world's: targets (issue 5) >= 25 %
on PostgreSQL + Redis, p99 < 50 ms at 50 connections. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `bot` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import callbacks
from bench import load as loads
from bench.databases import Database
from bench.processes import ROOT, Server, free_port
from bench.report import RESULTS, Check, Result

SECRET = "bench-secret-key-0123456789abcdef"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python bench/reads.py", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/scrm_bench_reads")
    top.add_argument("--redis", default=None,
                     help="default redis://127.0.0.1:6379/14 on PostgreSQL, none on SQLite")
    top.add_argument("--connections", type=int, default=50)
    top.add_argument("--duration", type=int, default=10)
    top.add_argument("--warmup", type=int, default=2)
    top.add_argument("--readers", type=int, default=5000)
    top.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    top.add_argument("--profile", action="store_true",
                     help="sample the service with py-spy during the measured run")
    top.add_argument("--hello-uvloop", action="store_true")
    return top


async def seed(database: Database, readers: int) -> list[tuple[int, int, str]]:
    """`readers` prospects with an mp identity and an open read each: (prospect, read, openid)."""
    from bot.db import close_db, init_db
    from models import Identity, Material, Prospect, Read

    await init_db(database.url)
    try:
        material = await Material.create(title="2026 制造业白皮书", kind="whitepaper")
        now = datetime.now(UTC)
        prospects = await Prospect.bulk_create([Prospect(tags=[]) for _ in range(readers)],
                                               batch_size=1000)
        ids = [p.id for p in await Prospect.all().order_by("id").only("id")]
        openids = [f"oBenchReader{n:016d}" for n in range(readers)]
        await Identity.bulk_create([Identity(prospect_id=pid, kind="mp_openid", value=openid)
                                    for pid, openid in zip(ids, openids, strict=True)],
                                   batch_size=1000)
        await Read.bulk_create([Read(prospect_id=pid, material_id=material.id, opened_at=now,
                                     seen_at=now) for pid in ids], batch_size=1000)
        reads = dict(await Read.all().values_list("prospect_id", "id"))
        del prospects
        return [(pid, reads[pid], openid) for pid, openid in zip(ids, openids, strict=True)]
    finally:
        await close_db()


def heartbeats(path: Path, readers: list[tuple[int, int, str]], rounds: int = 20) -> Path:
    """One line per heartbeat, readers in turns, each round a little further."""
    from miniprogram_api.sessions import SessionSigner

    signer = SessionSigner(SECRET)
    tokens = {pid: signer.issue(pid, openid) for pid, _, openid in readers}
    with path.open("w") as out:
        for n in range(1, rounds + 1):
            for pid, read_id, _ in readers:
                body = json.dumps({"action": "heartbeat", "read_id": read_id,
                                   "progress": round(n / rounds, 3)}, separators=(",", ":"))
                out.write(f"/mp/reads\t{body}\tBearer {tokens[pid]}\n")
    return path


def environment(database: Database, redis_url: str | None) -> dict[str, str]:
    env = callbacks.environment(database, redis_url)
    env["SCRM_SECRET_KEY"] = SECRET
    return env


def phase(server: Server, tool: str, file: Path, args: argparse.Namespace,
          profile: Path | None = None) -> callbacks.Phase:
    class Lines:  # the interface callbacks.measure expects of a push file
        path = file

        @staticmethod
        def offset(first: int) -> int:
            return 0

    return callbacks.measure(server, tool, Lines, args, wrap=True,  # type: ignore[arg-type]
                             postgres=server.name == "service" and not args.sqlite,
                             profile=profile)


def bench(args: argparse.Namespace, scratch: Path, servers: list[Server], stamp: str) -> Result:
    tool = loads.pick_tool(args.tool)
    database = Database.parse(args.database, scratch)
    args.sqlite = database.is_sqlite
    redis_url = args.redis or (None if database.is_sqlite else "redis://127.0.0.1:6379/14")
    redis_url = None if redis_url == "none" else redis_url
    env = environment(database, redis_url)
    profile = RESULTS / f"reads-{stamp}.profile.txt" if args.profile else None
    if profile:
        RESULTS.mkdir(exist_ok=True)
    database.create()
    try:
        callbacks.flush(redis_url)
        migrate = callbacks.subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT,
                                           env=env, capture_output=True, text=True,
                                           timeout=120, check=False)
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")
        print(f"seeding {args.readers} readers ...", flush=True)
        readers = asyncio.run(seed(database, args.readers))
        file = heartbeats(scratch / "heartbeats.txt", readers)
        port = free_port()
        service = Server("service", [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                         port, env, scratch / "service.log")
        servers.append(service)
        service.wait_ready("/healthz")
        measured = phase(service, tool, file, args, profile)
        service.stop()
        seconds = database.scalar("SELECT CAST(COALESCE(SUM(seconds), 0) AS INTEGER) FROM read")
        problems = service.problems()
    finally:
        for server in servers:
            server.stop()
        database.drop()
        callbacks.flush(redis_url)
    hello_port = free_port()
    argv = [sys.executable, "-m", "bench.hello", "--port", str(hello_port)]
    hello = Server("hello-world", argv + (["--uvloop"] if args.hello_uvloop else []),
                   hello_port, env, scratch / "hello.log")
    servers.append(hello)
    hello.wait_ready("/")
    baseline = phase(hello, tool, file, args)
    hello.stop()
    settings = {"database": "sqlite" if database.is_sqlite else "postgres", "redis": redis_url,
                "tool": tool, "connections": args.connections, "duration_s": args.duration,
                "warmup_s": args.warmup, "readers": args.readers,
                "python": sys.version.split()[0], "started_at": time.strftime("%FT%T%z")}
    result = Result(settings, measured, baseline, {"read_seconds": seconds,
                                                   "log_problems": problems[:20]})
    load = measured.load
    errors = load.socket_errors + load.timeouts
    result.checks += [
        Check("every heartbeat answered 200", load.non200 + measured.warmup.non200 + errors == 0,
              f"{load.non200 + measured.warmup.non200} non-200, {errors} errors"),
        Check("the reads' seconds grew (the server counted)", seconds > 0, f"{seconds} s"),
        Check("no warnings or errors in the service log", not problems,
              f"{len(problems)} lines" if problems else "ok"),
    ]
    result.judge(not database.is_sqlite, args.connections)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return callbacks.run("reads", lambda scratch, servers, stamp: bench(args, scratch, servers,
                                                                        stamp), args.profile)


if __name__ == "__main__":
    sys.exit(main())
