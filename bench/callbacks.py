"""Benchmark of the OA callback path against a bare aiohttp hello-world, in one run.

    python bench/callbacks.py [--database postgres://postgres@127.0.0.1:5432/scrm_bench]
                              [--redis redis://127.0.0.1:6379/14] [--connections 50]
                              [--duration 10] [--warmup 2] [--tool auto|wrk|python]
                              [--mix location|booth] [--people 20000] [--history 20000]
                              [--pushes 200000] [--profile] [--hello-uvloop]
    python bench/callbacks.py --database sqlite          # the embedded default, for information
    python bench/callbacks.py --profile                  # + where the service's time goes (py-spy)

Each request is a distinct push, signed and encrypted in safe mode, plus ~5 % retries: byte-
identical copies of a push sent just before, which must be answered 200 and not stored again.
`--mix location` (the default) sends LOCATION reports, which no handler acts on: the callback
path alone (verify + decrypt + parse + dedup + durable store + reply), which issue 2's targets
are about. `--mix booth` sends ~60 % text messages, ~15 % SCAN and ~20 % subscribe through the
booth codes of bench/seed.py from `--people` openids (default 20000, so most senders are new):
the handlers bind and attribute prospects and build the encrypted welcome inside the request.

The run creates its own database (an existing one is refused), runs `python -m bot migrate` and
puts in the booth codes the pushes scan and a history of earlier followers (bench/seed.py);
flushes the Redis DB number it is given (`--redis none`: the in-process store; the default on
SQLite); starts `python -m bot serve` (one process, its access log on, WeChat roots at a closed
port) and `python -m bench.hello` (one process, no access log) in turn; drives each with the
same load generator and connection count: wrk with bench/pushes.lua when installed (one
thread), else `python -m bench.load`. Each takes the other core of a 2-core machine. Then it
checks that every distinct push was stored exactly once, prints a table with PASS/FAIL for the
targets of issue 2 (>= 25 % of hello-world's req/s on PostgreSQL, p99 < 50 ms at 50
connections, < 150 MB), writes bench/results/callbacks-<time>.json, drops the database and
stops every process, also on Ctrl-C. Exit status 0 only when every check passes. Traffic stays
on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a script: make `bench` and `bot` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench import load as loads
from bench import profiling
from bench.databases import Database
from bench.processes import ROOT, Server, free_port, machine_cpu_seconds, postgres_cpu_seconds
from bench.pushes import OA_AES_KEY, OA_APPID, OA_TOKEN, Mix, PushFile, generate
from bench.report import RESULTS, Check, Phase, Result
from bench.seed import seed

FRESH_FOR = 300  # seconds a signed push stays acceptable (the service's timestamp tolerance)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python bench/callbacks.py", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/scrm_bench")
    top.add_argument("--redis", default=None,
                     help="default redis://127.0.0.1:6379/14 on PostgreSQL, none on SQLite")
    top.add_argument("--connections", type=int, default=50)
    top.add_argument("--duration", type=int, default=10, help="seconds of measured load")
    top.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring")
    top.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    top.add_argument("--pushes", type=int, default=200_000, help="distinct pushes to prepare")
    top.add_argument("--seed", type=int, default=None)
    top.add_argument("--people", type=int, default=Mix.people, help="distinct openids")
    top.add_argument("--history", type=int, default=20_000,
                     help="earlier followers in the database before the run, with 5 processed "
                          "pushes each (0: start empty); see bench/seed.py")
    top.add_argument("--mix", choices=["location", "booth"], default="location",
                     help="location (the default): LOCATION reports, which no handler acts on — "
                          "the callback path alone, as issue 2 measures it; booth: text, SCAN "
                          "and subscribe through booth codes (handlers create and attribute "
                          "prospects inside the request)")
    top.add_argument("--hello-uvloop", action="store_true",
                     help="run the baseline on uvloop too (the service always is)")
    top.add_argument("--profile", action="store_true",
                     help="sample the service with py-spy during the measured run")
    return top


def environment(database: Database, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    closed = "http://127.0.0.1:9"  # pushes of text, SCAN and subscribe never call WeChat
    env.update(SCRM_DATABASE_URL=database.url, SCRM_OA_TOKEN=OA_TOKEN, SCRM_OA_AES_KEY=OA_AES_KEY,
               SCRM_OA_APPID=OA_APPID, SCRM_SECRET_KEY="bench-secret-key-0123456789abcdef",
               SCRM_ADMIN_TOKEN="bench-admin-token", SCRM_WECHAT_API_BASE=closed,
               SCRM_WECHAT_MP_BASE=closed, SCRM_WECOM_API_BASE=closed, PYTHONPATH=str(ROOT))
    if redis_url:
        env["SCRM_REDIS_URL"] = redis_url
    return env


def flush(redis_url: str | None) -> None:
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        try:
            client.flushdb()
        finally:
            client.close()


def measure(server: Server, tool: str, pushes: PushFile, args: argparse.Namespace,
            wrap: bool, postgres: bool, profile: Path | None = None) -> Phase:
    def run(first: int, seconds: int) -> loads.Load:
        return loads.run(tool, server.url, pushes.path, pushes.offset(first), args.connections,
                         seconds, wrap)

    print(f"  {server.name}: warm-up {args.warmup} s, then {args.duration} s at "
          f"{args.connections} connections", flush=True)
    warmup = run(0, args.warmup)
    spy = profiling.start(server.pid, args.duration, profile) if profile else None
    cpu, db_cpu, machine = server.cpu_seconds(), postgres_cpu_seconds(), machine_cpu_seconds()
    started = time.monotonic()
    load = run(warmup.issued, args.duration)
    wall = time.monotonic() - started
    if spy is not None:
        profiling.finish(spy)
    return Phase(server.name, warmup, load, (server.cpu_seconds() - cpu) / wall,
                 (postgres_cpu_seconds() - db_cpu) / wall if postgres else None,
                 server.peak_rss_mb(), (machine_cpu_seconds() - machine) / wall)


def run_service(args: argparse.Namespace, tool: str, pushes: PushFile, database: Database,
                env: dict[str, str], scratch: Path, servers: list[Server],
                profile: Path | None) -> tuple[Phase, dict[str, int], list[str]]:
    """The service's phase, then what it stored (counted once it has stopped gracefully)."""
    migrate = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    if migrate.returncode != 0:
        raise RuntimeError(f"python -m bot migrate failed:\n{migrate.stdout}{migrate.stderr}")
    seed(database, Mix.scenes, args.history)
    queries = (("stored", "SELECT count(*) FROM interaction"),
               ("processed", "SELECT count(*) FROM interaction WHERE processed_at IS NOT NULL"),
               ("prospects", "SELECT count(*) FROM prospect"))
    before = {name: database.scalar(sql) for name, sql in queries}
    port = free_port()
    service = Server("service", [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                     port, env, scratch / "service.log")
    servers.append(service)
    service.wait_ready("/healthz")
    if time.time() + args.warmup + args.duration + 10 > pushes.generated_at + FRESH_FOR:
        raise SystemExit("the pushes would go stale (5-minute window): shorten --duration")
    phase = measure(service, tool, pushes, args, wrap=False, postgres=not database.is_sqlite,
                    profile=profile)
    service.stop()  # graceful: in-flight requests finish, batches flush
    counts = {"sent": phase.issued, "distinct": pushes.distinct(0, phase.issued)}
    for name, sql in queries:  # what the run added
        counts[name] = database.scalar(sql) - before[name]
    return phase, counts, service.problems()


def run_hello(args: argparse.Namespace, tool: str, pushes: PushFile, env: dict[str, str],
              scratch: Path, servers: list[Server]) -> Phase:
    port = free_port()
    argv = [sys.executable, "-m", "bench.hello", "--port", str(port)]
    hello = Server("hello-world", argv + (["--uvloop"] if args.hello_uvloop else []),
                   port, env, scratch / "hello.log")
    servers.append(hello)
    hello.wait_ready("/")
    phase = measure(hello, tool, pushes, args, wrap=True, postgres=False)
    hello.stop()
    return phase


def check(result: Result, counts: dict[str, int], problems: list[str], postgres: bool,
          connections: int) -> None:
    service, hello = result.service, result.hello
    load = service.load
    errors = load.socket_errors + load.timeouts
    result.checks += [
        Check("every answer 200 (retries too)", load.non200 + service.warmup.non200 + errors == 0,
              f"{load.non200 + service.warmup.non200} non-200, {errors} errors"),
        Check("every distinct push stored exactly once", counts["stored"] == counts["distinct"],
              f"{counts['stored']} stored of {counts['distinct']} distinct"),
        Check("each request a new push (file not exhausted)", not load.exhausted,
              "exhausted: raise --pushes" if load.exhausted else "ok"),
        Check("no warnings or errors in the service log", not problems,
              f"{len(problems)} lines" if problems else "ok"),
    ]
    result.judge(postgres, connections)
    busiest, client = max(service.other_cpu, hello.other_cpu), hello.load.client_cpu
    result.checks += [
        Check("the machine had no other load (figures comparable)", busiest < 0.15,
              f"up to {busiest:.0%} of a core elsewhere", binding=False),
        Check("the load generator kept up with hello-world (else the ratio is overstated)",
              client < 0.9, f"it used {client:.0%} of a core", binding=False),
    ]


def bench(args: argparse.Namespace, scratch: Path, servers: list[Server], stamp: str) -> Result:
    tool = loads.pick_tool(args.tool)
    database = Database.parse(args.database, scratch)
    postgres = not database.is_sqlite
    redis_url = args.redis or ("redis://127.0.0.1:6379/14" if postgres else None)
    redis_url = None if redis_url == "none" else redis_url
    env = environment(database, redis_url)
    profile = RESULTS / f"callbacks-{stamp}.profile.txt" if args.profile else None
    if profile:
        RESULTS.mkdir(exist_ok=True)
    print(f"preparing {args.pushes} pushes ...", flush=True)
    mix = Mix(people=args.people, location_only=args.mix == "location")
    pushes = generate(scratch / "pushes.txt", args.pushes, mix, args.seed)
    database.create()
    try:
        flush(redis_url)
        service, counts, problems = run_service(args, tool, pushes, database, env, scratch,
                                                servers, profile)
    finally:
        for server in servers:
            server.stop()
        database.drop()
        flush(redis_url)
    hello = run_hello(args, tool, pushes, env, scratch, servers)
    settings = {"database": "postgres" if postgres else "sqlite", "redis": redis_url,
                "tool": tool, "connections": args.connections, "duration_s": args.duration,
                "warmup_s": args.warmup, "people": args.people, "pushes_prepared": len(pushes),
                "mix": pushes.kinds, "python": sys.version.split()[0],
                "started_at": time.strftime("%FT%T%z")}
    result = Result(settings, service, hello, {**counts, "log_problems": problems[:20]})
    check(result, counts, problems, postgres, args.connections)
    return result


def run(name: str, work: Callable[[Path, list[Server], str], Result], profiled: bool) -> int:
    """Runs a benchmark in a scratch folder, stopping every server it started (on Ctrl-C or
    SIGTERM too); prints the table, the profile summary and where the results went."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    servers: list[Server] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix=f"scrm-bench-{name}-") as scratch:
        try:
            result = work(Path(scratch), servers, stamp)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            for server in servers:
                server.stop()
    print(result.table())
    profile = RESULTS / f"{name}-{stamp}.profile.txt"
    if profiled and profile.exists():
        print(profiling.summarise(profile))
        print(f"profile: {profile.relative_to(ROOT)} (py-spy raw stacks)")
    print(f"results: {result.save(stamp, name).relative_to(ROOT)}")
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.warmup + args.duration > FRESH_FOR - 60:
        raise SystemExit(f"--warmup + --duration must stay under {FRESH_FOR - 60} s")
    return run("callbacks", lambda scratch, servers, stamp: bench(args, scratch, servers, stamp),
               args.profile)


if __name__ == "__main__":
    sys.exit(main())
