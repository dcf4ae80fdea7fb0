"""Benchmark of the OA callback path against a bare aiohttp hello-world, in one run.

    python bench/callbacks.py [--database postgres://postgres@127.0.0.1:5432/scrm_bench]
                              [--redis redis://127.0.0.1:6379/14] [--connections 50]
                              [--duration 10] [--warmup 2] [--tool auto|wrk|python]
                              [--mix location|booth|follow|unknown] [--people 20000]
                              [--history 20000] [--pushes 200000] [--processes 2]
                              [--profile] [--hello-once] [--hello-uvloop]
    python bench/callbacks.py --database sqlite          # the embedded default, for information
    python bench/callbacks.py --profile                  # + where the service's time goes (py-spy)

Each request is a distinct push, signed and encrypted in safe mode, plus ~5 % retries: byte-
identical copies of a push sent just before, which must be answered 200 and not stored again.
`--mix location` (the default) sends LOCATION reports, which no handler acts on: the callback
path alone (verify + decrypt + parse + dedup + durable store + reply), which issue 2's targets
are about. `--mix booth` sends ~60 % text messages, ~15 % SCAN and ~20 % subscribe through the
booth codes of bench/seed.py from `--people` openids (default 20000, so most senders are new):
the welcome is answered from the code, then the handlers bind, attribute and score prospects.
`--mix follow` sends nothing but new followers subscribing through the booth codes (issue 10's
measure; `--mix unknown`: through scenes no code has) and also measures a WeRoBot app that
stores nothing on the same pushes (bench/werobot_app.py); it checks that each follower became one
prospect, attributed and owned.

The run creates its own database (an existing one is refused), runs `python -m bot migrate` and
puts in the booth codes the pushes scan and a history of earlier followers (bench/seed.py);
flushes the Redis DB number it is given (`--redis none`: the in-process store; the default on
SQLite); starts `python -m bot serve` (one process, its access log on, WeChat roots at a closed
port) and `python -m bench.hello` (one process, no access log; before the service and after
it, the faster of the two the baseline, as this machine's speed drifts) in turn; drives each
with the same load generator and connection count: wrk with bench/pushes.lua when installed (one
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
from concurrent.futures import ThreadPoolExecutor
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
from bot.sandbox.pushes import sign

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
    top.add_argument("--mix", choices=["location", "booth", "follow", "unknown"],
                     default="location",
                     help="location (the default): LOCATION reports, which no handler acts on — "
                          "the callback path alone, as issue 2 measures it; booth: text, SCAN "
                          "and subscribe through booth codes (handlers create and attribute "
                          "prospects); follow: every push a new follower's subscribe through a "
                          "booth code (issue 10's target), measured beside a WeRoBot app too; "
                          "unknown: the same through scenes no code has")
    top.add_argument("--processes", type=int, default=2,
                     help="on PostgreSQL, also measure this many `serve --no-worker` beside one "
                          "`worker`, the load split between them (1: skip)")
    top.add_argument("--hello-once", dest="hello_twice", action="store_false",
                     help="measure hello-world once, after the service (default: before and "
                          "after, the faster one the baseline)")
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
            wrap: bool, postgres: bool, profile: Path | None = None,
            database: Database | None = None) -> Phase:
    def run(first: int, seconds: int) -> loads.Load:
        return loads.run(tool, server.url, pushes.path, pushes.offset(first), args.connections,
                         seconds, wrap)

    print(f"  {server.name}: warm-up {args.warmup} s, then {args.duration} s at "
          f"{args.connections} connections", flush=True)
    warmup = run(0, args.warmup)
    spy = profiling.start(server.pid, args.duration, profile) if profile else None
    statements = bool(profile and database and profiling.statements_start(database.admin_url))
    cpu, db_cpu, machine = server.cpu_seconds(), postgres_cpu_seconds(), machine_cpu_seconds()
    started = time.monotonic()
    load = run(warmup.issued, args.duration)
    wall = time.monotonic() - started
    if spy is not None:
        profiling.finish(spy)
    if statements and profile and database:
        print(profiling.statements_report(database.admin_url, database.name,
                                          profile.with_suffix(".statements.txt")))
    return Phase(server.name, warmup, load, (server.cpu_seconds() - cpu) / wall,
                 (postgres_cpu_seconds() - db_cpu) / wall if postgres else None,
                 server.peak_rss_mb(), (machine_cpu_seconds() - machine) / wall)


QUERIES = (("stored", "SELECT count(*) FROM interaction"),
           ("processed", "SELECT count(*) FROM interaction WHERE processed_at IS NOT NULL"),
           ("prospects", "SELECT count(*) FROM prospect"),
           ("attributed", "SELECT count(*) FROM prospect WHERE first_code_id IS NOT NULL"),
           ("owned", "SELECT count(*) FROM prospect WHERE owner_id IS NOT NULL"))


def run_service(args: argparse.Namespace, tool: str, pushes: PushFile, database: Database,
                env: dict[str, str], scratch: Path, servers: list[Server],
                profile: Path | None) -> tuple[Phase, dict[str, int], list[str]]:
    """The service's phase, then what it stored (counted once it has stopped gracefully)."""
    migrate = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    if migrate.returncode != 0:
        raise RuntimeError(f"python -m bot migrate failed:\n{migrate.stdout}{migrate.stderr}")
    seed(database, Mix.scenes, args.history, env)
    before = {name: database.scalar(sql) for name, sql in QUERIES}
    port = free_port()
    service = Server("service", [sys.executable, "-m", "bot", "serve", "--port", str(port)],
                     port, env, scratch / "service.log")
    servers.append(service)
    service.wait_ready("/healthz")
    if time.time() + args.warmup + args.duration + 10 > pushes.generated_at + FRESH_FOR:
        raise SystemExit("the pushes would go stale (5-minute window): shorten --duration")
    phase = measure(service, tool, pushes, args, wrap=False, postgres=not database.is_sqlite,
                    profile=profile, database=None if database.is_sqlite else database)
    service.stop()  # graceful: in-flight requests finish, batches flush
    counts = {"sent": phase.issued, "distinct": pushes.distinct(0, phase.issued)}
    for name, sql in QUERIES:  # what the run added
        counts[name] = database.scalar(sql) - before[name]
    return phase, counts, service.problems()


def run_scaled(args: argparse.Namespace, tool: str, pushes: PushFile, database: Database,
               env: dict[str, str], scratch: Path, servers: list[Server], first: int
               ) -> tuple[Phase, dict[str, int], list[str]]:
    """`--processes` × `serve --no-worker` and one `worker` on the same database, each server
    sent its share of the connections and its own run of the push file, at the same time."""
    count = args.processes
    before = {name: database.scalar(sql) for name, sql in QUERIES}
    group: list[Server] = []
    for n in range(count):
        port = free_port()
        group.append(Server(f"serve{n + 1}", [sys.executable, "-m", "bot", "serve", "--port",
                                              str(port), "--no-worker"],
                            port, env, scratch / f"serve{n + 1}.log"))
    worker = Server("worker", [sys.executable, "-m", "bot", "worker"], 0, env,
                    scratch / "worker.log")
    servers.extend([*group, worker])
    for server in group:
        server.wait_ready("/healthz")
    share = max(1, args.connections // count)
    span = (len(pushes) - first) // count  # lines each server may use
    starts = [first + n * span for n in range(count)]

    def run(offsets: list[int], seconds: int) -> list[loads.Load]:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda n: loads.run(tool, group[n].url, pushes.path,
                                                     pushes.offset(offsets[n]), share, seconds,
                                                     False), range(count)))

    print(f"  {count} × serve --no-worker + worker: warm-up {args.warmup} s, then "
          f"{args.duration} s at {share} connections each", flush=True)
    warm = run(starts, args.warmup)
    cpu = sum(server.cpu_seconds() for server in [*group, worker])
    db_cpu, machine = postgres_cpu_seconds(), machine_cpu_seconds()
    started = time.monotonic()
    measured = run([start + w.issued for start, w in zip(starts, warm, strict=True)],
                   args.duration)
    wall = time.monotonic() - started
    phase = Phase(f"{count} serve+wkr", combine(warm), combine(measured),
                  (sum(server.cpu_seconds() for server in [*group, worker]) - cpu) / wall,
                  (postgres_cpu_seconds() - db_cpu) / wall,
                  max(server.peak_rss_mb() for server in group),
                  (machine_cpu_seconds() - machine) / wall)
    for server in group:
        server.stop()
    # what the servers left after the reply is the worker's to finish; give it a moment
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and database.scalar(
            "SELECT count(*) FROM interaction WHERE processed_at IS NULL") > 0:
        time.sleep(0.5)
    worker.stop()
    counts = {"sent": sum(w.issued + m.issued for w, m in zip(warm, measured, strict=True)),
              # what was not stored by the one process before (a retry of its pushes is none)
              "distinct": len(pushes.pushes_of([
                  (start, w.issued + m.issued)
                  for start, w, m in zip(starts, warm, measured, strict=True)])
                  - pushes.pushes_of([(0, first)]))}
    for name, sql in QUERIES:
        counts[name] = database.scalar(sql) - before[name]
    counts["unprocessed"] = database.scalar(
        "SELECT count(*) FROM interaction WHERE processed_at IS NULL")
    problems = [line for server in [*group, worker] for line in server.problems()]
    return phase, counts, problems


def combine(parts: list[loads.Load]) -> loads.Load:
    """Loads run side by side as one: requests added, the worst latencies (an upper bound of
    the combined percentile)."""
    duration = max(part.duration_s for part in parts)
    return loads.Load(tool=parts[0].tool, requests=sum(p.requests for p in parts),
                      duration_s=duration, issued=sum(p.issued for p in parts),
                      non200=sum(p.non200 for p in parts),
                      exhausted=any(p.exhausted for p in parts),
                      p50_ms=max(p.p50_ms for p in parts), p99_ms=max(p.p99_ms for p in parts),
                      max_ms=max(p.max_ms for p in parts),
                      socket_errors=sum(p.socket_errors for p in parts),
                      timeouts=sum(p.timeouts for p in parts),
                      client_cpu=sum(p.client_cpu for p in parts))


def run_werobot(args: argparse.Namespace, tool: str, pushes: PushFile, env: dict[str, str],
                scratch: Path, servers: list[Server]) -> Phase:
    """The same pushes answered by a WeRoBot app that stores nothing (bench/werobot_app.py)."""
    port = free_port()
    robot = Server("WeRoBot", [sys.executable, "-m", "gunicorn", "-w", "1", "-b",
                               f"127.0.0.1:{port}", "bench.werobot_app:app"],
                   port, env, scratch / "werobot.log")
    servers.append(robot)
    stamp, nonce = str(int(time.time())), "12345"
    robot.wait_ready(f"/?signature={sign(OA_TOKEN, stamp, nonce)}&timestamp={stamp}"
                     f"&nonce={nonce}&echostr=ready")
    phase = measure(robot, tool, pushes, args, wrap=True, postgres=False)
    robot.stop()
    return phase


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


FOLLOW_RATIO = 0.20  # issue 10: new followers through a booth code


def check(result: Result, counts: dict[str, int], problems: list[str], postgres: bool,
          connections: int, min_ratio: float | None = None) -> None:
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
    if min_ratio is None:
        result.judge(postgres, connections)
    else:
        result.judge(postgres, connections, min_ratio)
    for other in result.others:  # the WeRoBot app that stores nothing
        result.checks.append(Check(
            f"at least as fast as {other.server} (which stores nothing)",
            load.rps >= other.load.rps,
            f"{load.rps / other.load.rps:.2f}x" if other.load.rps else "no figure",
            binding=postgres))
    busiest, client = max(service.other_cpu, hello.other_cpu), hello.load.client_cpu
    result.checks += [
        Check("the machine had no other load (figures comparable)", busiest < 0.15,
              f"up to {busiest:.0%} of a core elsewhere", binding=False),
        Check("the load generator kept up with hello-world (else the ratio is overstated)",
              client < 0.9, f"it used {client:.0%} of a core", binding=False),
    ]


def check_follows(result: Result, counts: dict[str, int], where: str) -> None:
    """Every new follower through a booth code: one prospect, attributed, owned."""
    distinct = counts["distinct"]
    result.checks += [
        Check(f"{where}: one new prospect per follower", counts["prospects"] == distinct,
              f"{counts['prospects']} of {distinct}"),
        Check(f"{where}: every follower attributed to their booth code and owned",
              counts["attributed"] == counts["owned"] == distinct,
              f"{counts['attributed']} attributed, {counts['owned']} owned of {distinct}"),
        Check(f"{where}: every push processed", counts["processed"] == counts["stored"],
              f"{counts['processed']} of {counts['stored']}"),
    ]


def check_scaled(result: Result, phase: Phase, counts: dict[str, int], problems: list[str],
                 follows: bool) -> None:
    errors = phase.load.socket_errors + phase.load.timeouts
    where = phase.server
    result.checks += [
        Check(f"{where}: every answer 200", phase.load.non200 + phase.warmup.non200 + errors == 0,
              f"{phase.load.non200 + phase.warmup.non200} non-200, {errors} errors"),
        Check(f"{where}: every distinct push stored exactly once",
              counts["stored"] == counts["distinct"],
              f"{counts['stored']} stored of {counts['distinct']} distinct"),
        Check(f"{where}: no warnings or errors in the logs", not problems,
              f"{len(problems)} lines" if problems else "ok"),
        Check(f"{where}: throughput beside one process's", True,
              f"{phase.load.rps:.0f} req/s = {phase.load.rps / result.service.load.rps:.2f}x "
              f"one process, p99 {phase.load.p99_ms:.1f} ms", binding=False),
    ]
    if follows:
        check_follows(result, counts, where)


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
    follows = args.mix in ("follow", "unknown")
    mix = Mix(people=args.people, location_only=args.mix == "location",
              follow={"follow": "booth", "unknown": "unknown"}.get(args.mix))
    pushes = generate(scratch / "pushes.txt", args.pushes, mix, args.seed)
    # hello-world before the service and after it: this machine's speed drifts within a run;
    # the faster of the two is the baseline (the ratio is never flattered by a slow moment)
    first = run_hello(args, tool, pushes, env, scratch, servers) if args.hello_twice else None
    database.create()
    scaled: tuple[Phase, dict[str, int], list[str]] | None = None
    try:
        flush(redis_url)
        service, counts, problems = run_service(args, tool, pushes, database, env, scratch,
                                                servers, profile)
        if postgres and args.processes > 1:
            scaled = run_scaled(args, tool, pushes, database, env, scratch, servers,
                                service.issued)
    finally:
        for server in servers:
            server.stop()
        database.drop()
        flush(redis_url)
    hello = run_hello(args, tool, pushes, env, scratch, servers)
    hellos = [phase.load.rps for phase in (first, hello) if phase is not None]
    if first is not None and first.load.rps > hello.load.rps:
        hello = first
    others = [run_werobot(args, tool, pushes, env, scratch, servers)] if follows else []
    settings = {"database": "postgres" if postgres else "sqlite", "redis": redis_url,
                "tool": tool, "connections": args.connections, "duration_s": args.duration,
                "warmup_s": args.warmup, "people": args.people, "pushes_prepared": len(pushes),
                "mix": pushes.kinds, "python": sys.version.split()[0],
                "processes": args.processes, "hello_world_runs_rps": [round(r) for r in hellos],
                "started_at": time.strftime("%FT%T%z")}
    result = Result(settings, service, hello, {**counts, "log_problems": problems[:20]},
                    others=others)
    check(result, counts, problems, postgres, args.connections,
          FOLLOW_RATIO if follows else None)
    if args.mix == "follow":
        check_follows(result, counts, "one process")
    if scaled is not None:
        phase, scaled_counts, scaled_problems = scaled
        result.others.append(phase)
        result.pushes["scaled"] = {**scaled_counts, "log_problems": scaled_problems[:20]}
        check_scaled(result, phase, scaled_counts, scaled_problems, args.mix == "follow")
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
