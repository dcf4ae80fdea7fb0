"""Benchmarks of scoring and opportunities on PostgreSQL + Redis, in one run.

    python bench/leads.py [--parts abc] [--postgres postgres://postgres@127.0.0.1:5432]
                          [--redis redis://127.0.0.1:6379/14]
                          [--prospects 100] [--rate 40] [--duration 60]      # (a)
                          [--interactions 1000000] [--profile]               # (b)
                          [--booth-duration 10] [--connections 50]           # (c)

(a) Speed to lead at a booth. The service (`python -m bot serve`, its worker and outbox sender
    inside) and the WeChat sandbox (`python -m bot sandbox`) run as processes; a driver plays
    `--prospects` qualifying prospects (bench/booth.py: follow through a salesperson's booth
    code, mini-program login with the same UnionID, profile 市场总监 / 500-999 with consent,
    phone, three whitepapers read to the end, each counted 12 s by moving its last heartbeat
    back in the database as the tests do; `--think` seconds between steps) while a crowd of
    text messages, follows and SCANs through the booth codes and mini-program reads runs at
    `--rate` actions a second on a fixed schedule. Reported: speed to lead from the
    Opportunity rows (reached_at - qualified_at: when the sandbox accepted the template
    message - when the qualifying signal was stored), p50/p95/p99/max and how many were
    reached, split into qualified → opportunity written and written → reached; the crowd's
    achieved rate and latencies. Target: p99 < 1 s.

(b) `scores rebuild` on `--interactions` rows (default 1,000,000). A fresh database is filled
    with COPY (bench/history.py: ~interactions/10 prospects, merged records among them,
    profiles, phones, follows and scans through codes, reads with material, progress and
    seconds, actions, profiles), then `domain.scoring.rebuild(rules)` is timed and, as the
    baseline, a plain streamed read of the same rows (`SELECT id, prospect_id, kind, code_id,
    received_at, payload FROM interaction`, payload parsed with the ORM's JSON decoder).
    Reported: interactions/s of both and their ratio, where the rebuild's time goes (its
    phases, and the SQL it sends by statement), and a check that scoring one person afterwards
    gives the ledger the rebuild wrote. Target: the rebuild within 60 s. `--profile` adds a
    py-spy profile of the rebuild.

(c) The booth mix of bench/callbacks.py (`--mix booth`: text, SCAN and follows through booth
    codes, signed and encrypted, ~5 % retries) against hello-world, reported as a ratio (no
    target here): the service as that benchmark runs it (WeChat roots at a closed port), the
    service with the sandbox as WeChat (so that follows complete and are scored), and the
    same with the scoring hook turned off (bench/unscored.py), which shows what scoring costs.

Every part makes its own database (scrm_bench_leads_a, _b, _c_*; an existing one is refused)
and drops it; Redis DB 14 is flushed before and after. Results: bench/results/leads-<time>.json.
Exit status 0 when every target of the parts run is met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and `bot` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench import callbacks, profiling
from bench import load as loads
from bench.booth import Driver, call_stats, percentile
from bench.databases import Database
from bench.history import fill
from bench.processes import (
    ROOT,
    Server,
    cpu_seconds,
    free_port,
    machine_cpu_seconds,
    postgres_cpu_seconds,
)
from bench.pushes import Mix, generate
from bench.report import RESULTS, Phase
from bench.seed import seed as seed_booth

TARGET_SPEED_P99_MS = 1000.0
TARGET_REBUILD_S = 60.0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python bench/leads.py", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--parts", default="abc",
                     help="which parts to run, e.g. `a`, `bc` (default: abc)")
    top.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432",
                     help="the PostgreSQL server (each part creates and drops its own database)")
    top.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                     help="the Redis DB the service uses (flushed before and after)")
    top.add_argument("--seed", type=int, default=None, help="random seed of the driver")
    top.add_argument("--keep", action="store_true",
                     help="leave part (a)'s database for inspection (drop it yourself: "
                          "DROP DATABASE scrm_bench_leads_a)")
    a = top.add_argument_group("(a) speed to lead")
    a.add_argument("--prospects", type=int, default=100,
                   help="qualifying prospects to play (default 100)")
    a.add_argument("--rate", type=float, default=40.0,
                   help="crowd actions a second in the background (default 40; a read is 3 "
                        "requests, a push 1)")
    a.add_argument("--duration", type=float, default=60.0,
                   help="seconds the crowd runs; the prospects start over its first 80 %%")
    a.add_argument("--salespeople", type=int, default=4,
                   help="salespeople, each following the OA and owning one booth code")
    a.add_argument("--readers", type=int, default=200,
                   help="mini-program users the crowd's reads come from")
    a.add_argument("--think", type=float, default=1.0,
                   help="seconds a prospect pauses between two steps, ±50 %% (default 1; 0 "
                        "sends a whole visit at once)")
    a.add_argument("--serve-with", default="bot", metavar="MODULE",
                   help="run (a)'s service as `python -m MODULE serve` (default bot; e.g. "
                        "bench.unscored to see the crowd without scoring)")
    a.add_argument("--service-db-options", default="", metavar="QUERY",
                   help="appended to the service's SCRM_DATABASE_URL in (a) and (c), e.g. "
                        "maxsize=20 (the ORM's pool holds 5 connections unless told)")
    a.add_argument("--settle", type=float, default=20.0,
                   help="seconds to wait after the run for the last pushes to be sent")
    b = top.add_argument_group("(b) scores rebuild")
    b.add_argument("--interactions", type=int, default=1_000_000,
                   help="rows of interaction log to rebuild from (default 1,000,000)")
    b.add_argument("--profile", action="store_true",
                   help="sample with py-spy the rebuild (b) and the scored service of (c)'s "
                        "sandbox mode (bench/results/leads-*.rebuild.txt, *.booth.txt)")
    b.add_argument("--check", type=int, default=200,
                   help="people whose ledger is scored again one by one and compared")
    c = top.add_argument_group("(c) booth mix against hello-world")
    c.add_argument("--booth-duration", type=int, default=10, help="seconds of measured load")
    c.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring")
    c.add_argument("--connections", type=int, default=50)
    c.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    c.add_argument("--history", type=int, default=20_000,
                   help="earlier followers in each database (bench/seed.py)")
    c.add_argument("--modes", default="as-is,sandbox,unscored",
                   help="service phases: as-is (WeChat at a closed port, as bench/callbacks.py "
                        "runs it), sandbox (the sandbox as WeChat), unscored (sandbox, scoring "
                        "hook off)")
    return top


# --- shared --------------------------------------------------------------------------------------

def say(text: str) -> None:
    print(text, flush=True)


def environment(database: Database, redis_url: str, wechat: str | None,
                public_url: str = "http://127.0.0.1:8080") -> dict[str, str]:
    """bench/callbacks.py's environment; with `wechat` (the sandbox's URL) every account the
    booth needs, pointing there."""
    env = callbacks.environment(database, redis_url)
    if wechat is not None:
        env.update(SCRM_OA_SECRET="bench-oa-secret", SCRM_MP_APPID="wxbenchminiprog0001",
                   SCRM_MP_SECRET="bench-mp-secret",
                   SCRM_OA_OPPORTUNITY_TEMPLATE_ID="bench-opportunity-template",
                   SCRM_WECHAT_API_BASE=wechat, SCRM_WECHAT_MP_BASE=wechat,
                   SCRM_WECOM_API_BASE=wechat, SCRM_PUBLIC_URL=public_url)
    return env


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"python -m bot migrate failed:\n{done.stdout}{done.stderr}")


def tracebacks(log: Path, limit: int = 2) -> list[str]:
    """The first distinct tracebacks of a server's log, each with the line that announced it."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found: list[str] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        block = [lines[i - 1]] if i else []
        for more in lines[i:]:
            if block and more[:4].isdigit() and more[4:5] == "-":  # the next log line
                break
            block.append(more)
        key = block[-1] if block else ""
        if key not in seen:
            seen.add(key)
            found.append("\n".join(block[:1] + block[-12:] if len(block) > 13 else block))
        if len(found) >= limit:
            break
    return found


PROJECT = ("bot/", "domain/", "handlers/", "miniprogram_api/", "models/", "qr/")


def project_summary(raw: Path, top: int = 15) -> str:
    """py-spy's raw stacks as the project's own functions with the largest inclusive share of
    the samples (the event loop's frames, which every sample has, left out), then the frames
    with the largest self share, whoever's they are."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [profiling._name(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1].split("site-packages/")[-1]] += count
        for name in {f for f in frames if f.startswith(PROJECT)}:
            inclusive[name] += count
    if not total:
        return "no samples"
    rows = [f"{total} samples; the project's functions, inclusive:"]
    rows += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    rows.append("self (where the CPU is spent):")
    rows += [f"  {count / total:6.1%}  {name}" for name, count in own.most_common(top)]
    return "\n".join(rows)


def ms(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:,.0f}"


# --- (a) speed to lead ----------------------------------------------------------------------------

def part_a(args: argparse.Namespace, scratch: Path, servers: list[Server]) -> dict[str, Any]:
    database = Database(f"{args.postgres}/scrm_bench_leads_a")
    sandbox_port, service_port = free_port(), free_port()
    sandbox_url, service_url = f"http://127.0.0.1:{sandbox_port}", \
        f"http://127.0.0.1:{service_port}"
    env = environment(database, args.redis, sandbox_url, service_url)
    service_env = dict(env)
    if args.service_db_options:
        service_env["SCRM_DATABASE_URL"] += "?" + args.service_db_options
    say(f"(a) speed to lead: {args.prospects} qualifying prospects while a crowd runs at "
        f"{args.rate:g}/s for {args.duration:g} s")
    database.create()
    try:
        callbacks.flush(args.redis)
        migrate(env)
        sandbox = Server("sandbox", [sys.executable, "-m", "bot", "sandbox", "--port",
                                     str(sandbox_port)], sandbox_port, env,
                         scratch / "a-sandbox.log")
        servers.append(sandbox)
        sandbox.wait_ready("/sandbox/")
        service = Server("service", [sys.executable, "-m", args.serve_with, "serve",
                                     "--port", str(service_port)], service_port,
                         service_env, scratch / "a-service.log")
        servers.append(service)
        service.wait_ready("/healthz")
        result = asyncio.run(drive(args, service, sandbox, database, env))
        service.stop()
        sandbox.stop()
        result["service_log_problems"] = service.problems()[:20]
        result["service_tracebacks"] = tracebacks(service.log)
        result["sandbox_log_problems"] = sandbox.problems()[:20]
        return result
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            database.drop()
        callbacks.flush(args.redis)


async def drive(args: argparse.Namespace, service: Server, sandbox: Server,
                database: Database, env: dict[str, str]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as http:
        driver = Driver(http, service.url, sandbox.url, env["SCRM_ADMIN_TOKEN"], database.url,
                        think=args.think)
        try:
            began = time.monotonic()
            await driver.set_up(args.salespeople, followers=100, readers=args.readers)
            say(f"  set up in {time.monotonic() - began:.1f} s: {len(driver.salespeople)} "
                f"salespeople with a booth code each, {len(driver.followers)} followers, "
                f"{len(driver.readers)} mini-program readers")
            before = await driver.counts()
            cpu = {"service": service.cpu_seconds(), "sandbox": sandbox.cpu_seconds(),
                   "postgres": postgres_cpu_seconds(), "machine": machine_cpu_seconds(),
                   "driver": _own_cpu()}
            started = time.monotonic()
            crowd_task = asyncio.create_task(driver.crowd(args.rate, args.duration))
            bare_task = asyncio.create_task(driver.bare_sends(
                args.duration * 0.9, 0.5, env["SCRM_OA_APPID"], env["SCRM_OA_SECRET"],
                env["SCRM_OA_OPPORTUNITY_TEMPLATE_ID"]))
            played = await driver.prospects(args.prospects, args.duration * 0.8)
            crowd = await crowd_task
            bare = [seconds * 1000 for seconds in await bare_task]
            wall = time.monotonic() - started
            used = {"service": service.cpu_seconds() - cpu["service"],
                    "sandbox": sandbox.cpu_seconds() - cpu["sandbox"],
                    "postgres": postgres_cpu_seconds() - cpu["postgres"],
                    "machine": machine_cpu_seconds() - cpu["machine"],
                    "driver": _own_cpu() - cpu["driver"]}
            say(f"  ran {wall:.1f} s; waiting up to {args.settle:g} s for the last pushes")
            unionids = [p.unionid for p in played]
            rows = await driver.reached(unionids, args.settle)
            after = await driver.counts(settle=10.0)
            peak = service.peak_rss_mb()
        finally:
            await driver.close()
    reached = [row for row in rows if row["reached"]]
    speeds = [float(row["speed_ms"]) for row in reached]
    routed = [float(row["routed_ms"]) for row in reached]
    sent = [float(row["sent_ms"]) for row in reached]
    cores = {name: seconds / wall for name, seconds in used.items()}
    cores["other"] = max(0.0, cores["machine"] - sum(v for k, v in cores.items()
                                                     if k != "machine"))
    return {
        "prospects": len(played), "played_ok": sum(not p.error for p in played),
        "play_errors": [f"prospect {p.index}: {p.error}" for p in played if p.error][:10],
        "opportunities": len(rows), "reached": len(reached),
        "per_person": Counter(Counter(row["prospect_id"] for row in rows).values()),
        "speed_ms": {"p50": percentile(speeds, .50), "p95": percentile(speeds, .95),
                     "p99": percentile(speeds, .99), "max": max(speeds, default=float("nan")),
                     "min": min(speeds, default=float("nan"))},
        "baseline_ms": {"n": len(bare), "p50": percentile(bare, .50),
                        "p99": percentile(bare, .99)},
        "routed_ms": {"p50": percentile(routed, .50), "p99": percentile(routed, .99),
                      "max": max(routed, default=float("nan"))},
        "sent_ms": {"p50": percentile(sent, .50), "p99": percentile(sent, .99),
                    "max": max(sent, default=float("nan"))},
        "slowest": sorted(rows, key=lambda r: -(r["speed_ms"] or 1e12))[:5],
        "triggers": dict(Counter(row["trigger"] for row in rows)),
        "attribution": dict(Counter(row["attribution"] for row in rows)),
        "steps_p50_ms": {name: percentile([p.steps[name] * 1000 for p in played
                                           if name in p.steps], .5)
                         for name in ("follow", "login", "profile", "phone", "read 1",
                                      "read 2", "read 3")},
        "crowd": {"target_rate": args.rate, "rate": crowd.rate, "planned": crowd.planned,
                  "started": crowd.started, "finished": crowd.finished,
                  "skipped": crowd.skipped, "seconds": crowd.seconds,
                  "requests_per_s": crowd.request_rate, "kinds": dict(crowd.kinds),
                  "calls": call_stats(crowd.calls)},
        "stored_per_s": (after["interactions"] - before["interactions"]) / wall,
        "push_retries": driver.push_retries,
        "wall_s": wall, "cores": cores, "peak_rss_mb": peak,
        "database": {k: v for k, v in after.items() if k != "kinds"},
        "kinds": after["kinds"],
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report_a(a: dict[str, Any]) -> tuple[str, bool]:
    speed = a["speed_ms"]
    p99 = speed["p99"]
    once = a["opportunities"] == a["prospects"] and set(a["per_person"]) == {1}
    passed = (a["reached"] == a["prospects"] and once and not math.isnan(p99)
              and p99 < TARGET_SPEED_P99_MS)
    base = a["baseline_ms"]
    crowd = a["crowd"]
    rows = ["(a) speed to lead (reached_at - qualified_at), PostgreSQL + Redis, service + sandbox",
            f"  prospects played {a['prospects']} ({a['played_ok']} without error); "
            f"opportunities {a['opportunities']}, reached {a['reached']}",
            f"  speed to lead ms: p50 {ms(speed['p50'])}  p95 {ms(speed['p95'])}  "
            f"p99 {ms(p99)}  max {ms(speed['max'])}  (min {ms(speed['min'])})",
            f"  baseline, same run and load: a bare template/send to the sandbox (the floor "
            f"of speed to lead), {base['n']} sent: p50 {base['p50']:.1f}  p99 "
            f"{base['p99']:.1f}; speed to lead / baseline: p50 "
            f"{speed['p50'] / base['p50']:.0f}x, p99 {p99 / base['p99']:.0f}x",
            f"    qualified → opportunity written: p50 {ms(a['routed_ms']['p50'])}  "
            f"p99 {ms(a['routed_ms']['p99'])}  max {ms(a['routed_ms']['max'])}",
            f"    written → reached (sender + WeChat): p50 {ms(a['sent_ms']['p50'])}  "
            f"p99 {ms(a['sent_ms']['p99'])}  max {ms(a['sent_ms']['max'])}",
            f"  qualified by: {a['triggers']}; attribution: {a['attribution']}",
            f"  crowd: {crowd['rate']:.1f} actions/s of {crowd['target_rate']:g} planned "
            f"({crowd['finished']} finished of {crowd['planned']} planned, {crowd['skipped']} "
            f"skipped), {crowd['requests_per_s']:.1f} requests/s; "
            f"signals stored {a['stored_per_s']:.1f}/s (crowd and prospects); pushes the "
            f"sandbox had to send again (no answer in 5 s): {a['push_retries']}",
            "  crowd calls (ms):"]
    for what, stats in crowd["calls"].items():
        rows.append(f"    {what:<15}{stats['n']:>7} calls  p50 {ms(stats['p50_ms']):>6}  "
                    f"p99 {ms(stats['p99_ms']):>6}  errors {stats['errors']}"
                    + (f"  first: {stats['first_error'][:160]}" if stats["errors"] else ""))
    rows.append("  prospect steps p50 ms: " + ", ".join(
        f"{name} {ms(v)}" for name, v in a["steps_p50_ms"].items()))
    cores = a["cores"]
    rows.append("  CPU (cores): " + ", ".join(f"{name} {value:.2f}" for name, value in
                                                cores.items()) + f"; service peak RSS "
                f"{a['peak_rss_mb']:.0f} MB")
    db = a["database"]
    rows.append(f"  database after: {db['interactions']} interactions ({db['unprocessed']} "
                f"unprocessed), {db['prospects']} prospects ({db['merged']} merged), "
                f"{db['opportunities']} opportunities, outbox {db['outbox']}, "
                f"{db['score_entries']} ledger rows")
    for error in a["play_errors"][:5]:
        rows.append(f"  play error: {error}")
    for failed in a["database"]["failed_messages"]:
        rows.append(f"  failed message: {failed}")
    rows.append(f"  service log: {len(a['service_log_problems'])} warning/error lines"
                + "".join(f"\n    {line[:200]}" for line in a["service_log_problems"][:6]))
    for block in a["service_tracebacks"]:
        rows.append("    " + block.replace("\n", "\n    "))
    if a["sandbox_log_problems"]:
        rows.append(f"  sandbox log: {len(a['sandbox_log_problems'])} warning/error lines")
    busy = cores["other"]
    rows.append(f"  {'PASS' if passed else 'FAIL':<9} p99 < {TARGET_SPEED_P99_MS:.0f} ms, every "
                f"prospect one opportunity and reached: p99 {ms(p99)} ms, {a['reached']}/"
                f"{a['prospects']} reached, opportunities per person {dict(a['per_person'])}")
    rows.append(f"  {'info' if busy < 0.15 else 'info-FAIL':<9} the machine had no other load: "
                f"{busy:.2f} cores elsewhere")
    return "\n".join(rows), passed


# --- (b) scores rebuild ---------------------------------------------------------------------------

def part_b(args: argparse.Namespace, scratch: Path, stamp: str) -> dict[str, Any]:
    database = Database(f"{args.postgres}/scrm_bench_leads_b")
    env = environment(database, args.redis, None)
    say(f"(b) scores rebuild on {args.interactions:,} interactions")
    database.create()
    try:
        migrate(env)
        filled = asyncio.run(fill(database.url, args.interactions,
                                  progress=lambda text: say(f"  seeding: {text}")))
        say(f"  seeded in {filled.seconds:.1f} s")
        result = asyncio.run(rebuild(args, database, stamp))
        result["seed"] = asdict(filled)
        return result
    finally:
        database.drop()


class Timers:
    """Wall time of the rebuild's steps and of the SQL it sends, by statement."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = defaultdict(float)
        self.sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._undo: list[Callable[[], None]] = []

    def patch(self, owner: Any, name: str, label: str, kind: str) -> None:
        original = getattr(owner, name)
        timers = self

        if kind == "sql":
            async def timed_sql(self: Any, query: str, *rest: Any, **kw: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await original(self, query, *rest, **kw)
                finally:
                    key = f"{label}: {_statement(query)}"
                    timers.sql[key][0] += 1
                    timers.sql[key][1] += time.perf_counter() - began
            setattr(owner, name, timed_sql)
        elif kind == "async":
            async def timed_async(*a: Any, **kw: Any) -> Any:
                began = time.perf_counter()
                try:
                    return await original(*a, **kw)
                finally:
                    timers.steps[label] += time.perf_counter() - began
            setattr(owner, name, timed_async)
        else:
            def timed(*a: Any, **kw: Any) -> Any:
                began = time.perf_counter()
                try:
                    return original(*a, **kw)
                finally:
                    timers.steps[label] += time.perf_counter() - began
            setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


def _statement(query: str) -> str:
    """`UPDATE "prospect"` / `SELECT … FROM "interaction"`: what a statement does to what."""
    words = query.replace("\n", " ").split()
    verb = words[0].upper() if words else "?"
    target = "?"
    key = {"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb)
    if key is not None:
        for i, word in enumerate(words[:-1]):
            if word.upper() == key:
                target = words[i + 1].strip('"')
                break
    return f"{verb} {target}"


async def rebuild(args: argparse.Namespace, database: Database, stamp: str) -> dict[str, Any]:
    import asyncpg
    from tortoise import connections
    from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
    from tortoise.fields.data import JSON_LOADS

    from bot.db import close_db, init_db
    from domain import rules as rules_module
    from domain import scoring
    from models import ScoreEntry

    conn = await asyncpg.connect(database.url)
    try:
        total = await conn.fetchval("SELECT count(*) FROM interaction")
        scored = await conn.fetchval(
            "SELECT count(*) FROM interaction WHERE prospect_id IS NOT NULL "
            "AND kind = ANY($1::text[])", list(scoring.SCORED_KINDS))
        people = await conn.fetchval("SELECT count(*) FROM prospect WHERE merged_into_id IS NULL")
        kinds = {row["kind"]: row["n"] for row in await conn.fetch(
            "SELECT kind, count(*) AS n FROM interaction GROUP BY kind ORDER BY n DESC")}
        # the baseline: the same rows streamed and their payloads parsed, nothing else
        say("  baseline: streaming the log ...")
        began = time.perf_counter()
        rows = 0
        async with conn.transaction():
            async for row in conn.cursor("SELECT id, prospect_id, kind, code_id, received_at, "
                                         "payload FROM interaction", prefetch=10_000):
                JSON_LOADS(row["payload"])
                rows += 1
        baseline_s = time.perf_counter() - began
    finally:
        await conn.close()

    await init_db(database.url)
    try:
        rules = rules_module.load(None)
        timers = Timers()
        for name in ("families_of", "logs_of", "write"):
            timers.patch(scoring, name, name, "async")
        timers.patch(scoring.Kinds, "load", "Kinds.load", "async")
        timers.patch(scoring, "compute", "compute", "sync")
        for client in (AsyncpgDBClient, TransactionWrapper):
            for method in ("execute_query", "execute_query_dict", "execute_many",
                           "execute_insert"):
                if method in vars(client):
                    timers.patch(client, method, "sql", "sql")
        spy = None
        raw = RESULTS / f"leads-{stamp}.rebuild.txt"
        if args.profile:
            RESULTS.mkdir(exist_ok=True)
            # --nonblocking: sampled without being paused, so the timing stays the rebuild's
            spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "--pid",
                                    str(os.getpid()), "--rate", "100", "--format", "raw",
                                    "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)  # attached
        done = 0
        began = time.perf_counter()
        last = began

        def progress(count: int) -> None:
            nonlocal done, last
            done += count
            if time.perf_counter() - last > 15:
                last = time.perf_counter()
                say(f"  rebuild: {done:,} of {people:,} people in {last - began:.0f} s")

        now = datetime.now(UTC)
        cpu = {"self": _own_cpu(), "postgres": postgres_cpu_seconds(),
               "machine": machine_cpu_seconds(),
               "spy": cpu_seconds(spy.pid) if spy is not None else 0.0}
        scored_people = await scoring.rebuild(rules, now=now, progress=progress)
        rebuild_s = time.perf_counter() - began
        cores = {"python": (_own_cpu() - cpu["self"]) / rebuild_s,
                 "postgres": (postgres_cpu_seconds() - cpu["postgres"]) / rebuild_s,
                 "machine": (machine_cpu_seconds() - cpu["machine"]) / rebuild_s}
        if spy is not None:
            cores["py-spy"] = (cpu_seconds(spy.pid) - cpu["spy"]) / rebuild_s
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        cores["other"] = max(0.0, cores["machine"] - cores["python"] - cores["postgres"]
                             - cores.get("py-spy", 0.0))
        timers.restore()
        say(f"  rebuilt {scored_people:,} people in {rebuild_s:.1f} s; checking ...")
        entries = await ScoreEntry.all().count()
        quadrants = {row["quadrant"]: row["n"] for row in await connections.get(
            "default").execute_query_dict("SELECT quadrant, count(*) AS n FROM prospect "
                                          "WHERE merged_into_id IS NULL GROUP BY quadrant")}
        mismatches = await check_ledgers(scoring, rules, now, args.check)
    finally:
        await close_db()
    sql = sorted(((k, int(v[0]), float(v[1])) for k, v in timers.sql.items()),
                 key=lambda item: -item[2])
    return {"interactions": total, "scored_rows": scored, "people": people, "kinds": kinds,
            "scored_people": scored_people, "baseline_rows": rows, "baseline_s": baseline_s,
            "rebuild_s": rebuild_s, "ledger_rows": entries, "quadrants": quadrants,
            "steps": dict(timers.steps), "sql": sql, "cores": cores,
            "checked": args.check, "mismatches": mismatches,
            "profile": str(raw.relative_to(ROOT)) if args.profile and raw.exists() else None,
            "profile_summary": project_summary(raw, top=20) if args.profile
            and raw.exists() else None}


async def check_ledgers(scoring: Any, rules: Any, now: datetime, sample: int) -> list[str]:
    """Scores `sample` people one by one (the after-hook's way) and compares each ledger with
    the one the rebuild wrote: they must be the same, row for row."""
    from models import Prospect, ScoreEntry

    ids = list(await Prospect.filter(merged_into_id=None).values_list("id", flat=True))
    chosen = random.Random(7).sample(ids, min(sample, len(ids)))

    async def ledger(pid: int) -> list[tuple[Any, ...]]:
        return sorted(await ScoreEntry.filter(prospect_id=pid).values_list(
            "rule", "kind", "points", "interaction_id", "at"), key=repr)

    wrong = []
    for pid in chosen:
        before = await ledger(pid)
        scores_before = await Prospect.filter(id=pid).values_list(
            "profile_score", "behavior_score", "quadrant")
        await scoring.score_one(rules, pid, now=now)
        after = await ledger(pid)
        scores_after = await Prospect.filter(id=pid).values_list(
            "profile_score", "behavior_score", "quadrant")
        if before != after or scores_before != scores_after:
            wrong.append(f"prospect {pid}: rebuild {scores_before} {len(before)} rows, "
                         f"score_one {scores_after} {len(after)} rows")
    return wrong


def report_b(b: dict[str, Any]) -> tuple[str, bool]:
    base_rate = b["baseline_rows"] / b["baseline_s"]
    rate = b["interactions"] / b["rebuild_s"]
    passed = b["rebuild_s"] < TARGET_REBUILD_S and not b["mismatches"]
    seed = b["seed"]
    rows = [f"(b) scores rebuild, PostgreSQL: {b['interactions']:,} interactions "
            f"({b['scored_rows']:,} of kinds a score depends on), {b['people']:,} people "
            f"({seed['merged']:,} merged records besides), seeded in {seed['seconds']:.1f} s",
            f"{'':<34}{'seconds':>9}{'interactions/s':>16}",
            f"  {'baseline: streamed SELECT + parse':<32}{b['baseline_s']:>9.1f}"
            f"{base_rate:>16,.0f}",
            f"  {'domain.scoring.rebuild(rules)':<32}{b['rebuild_s']:>9.1f}{rate:>16,.0f}",
            f"  ratio rebuild / baseline: {rate / base_rate:.1%} "
            f"({b['rebuild_s'] / b['baseline_s']:.0f}x the time)",
            f"  wrote {b['ledger_rows']:,} ledger rows for {b['scored_people']:,} people; "
            f"quadrants {b['quadrants']}",
            "  the log: " + ", ".join(f"{kind.removeprefix('event.change_external_contact.')}"
                                      f" {n / b['interactions']:.0%}"
                                      for kind, n in b["kinds"].items()),
            "  where the rebuild's time goes (wall time, nested: SQL is inside the steps):"]
    total = b["rebuild_s"]
    for name, seconds in sorted(b["steps"].items(), key=lambda item: -item[1]):
        rows.append(f"    {name:<28}{seconds:>8.1f} s {seconds / total:>6.1%}")
    rows.append("    SQL by statement (calls, wall time incl. the round trip):")
    for key, calls, seconds in b["sql"][:8]:
        rows.append(f"      {key:<40}{calls:>8,} {seconds:>8.1f} s {seconds / total:>6.1%}  "
                    f"({seconds / calls * 1000:.2f} ms each)")
    cores = b["cores"]
    rows.append(f"  CPU during the rebuild: python {cores['python']:.2f} cores "
                f"({cores['python'] * total:.1f} s), postgres {cores['postgres']:.2f} "
                f"({cores['postgres'] * total:.1f} s), other processes {cores['other']:.2f}"
                + (f", py-spy {cores['py-spy']:.2f}" if "py-spy" in cores else ""))
    rows.append(f"  {'PASS' if b['rebuild_s'] < TARGET_REBUILD_S else 'FAIL':<9} rebuild < "
                f"{TARGET_REBUILD_S:.0f} s: {b['rebuild_s']:.1f} s")
    rows.append(f"  {'PASS' if not b['mismatches'] else 'FAIL':<9} scoring {b['checked']} "
                f"people one by one gives the rebuild's ledgers: "
                f"{len(b['mismatches'])} differ" + "".join(f"\n    {m}"
                                                          for m in b["mismatches"][:5]))
    busy = cores["other"]
    rows.append(f"  {'info' if busy < 0.15 else 'info-FAIL':<9} the machine had no other load: "
                f"{busy:.2f} cores elsewhere")
    if b["profile_summary"]:
        rows.append("  py-spy (the benchmark's own process during the rebuild):")
        rows += ["  " + line for line in b["profile_summary"].splitlines()]
        rows.append(f"  profile: {b['profile']}")
    return "\n".join(rows), passed


# --- (c) booth mix against hello-world ------------------------------------------------------------

MODES = {
    "as-is": ("service as bench/callbacks.py runs it (WeChat at a closed port)", False,
              ["-m", "bot"]),
    "sandbox": ("service, WeChat = the sandbox (follows complete and are scored)", True,
                ["-m", "bot"]),
    "unscored": ("service, WeChat = the sandbox, scoring hook off (bench/unscored.py)", True,
                 ["-m", "bench.unscored"]),
}


def part_c(args: argparse.Namespace, scratch: Path, servers: list[Server],
           stamp: str) -> dict[str, Any]:
    tool = loads.pick_tool(args.tool)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"--modes: unknown mode {mode!r} (as-is, sandbox, unscored)")
    load_args = SimpleNamespace(warmup=args.warmup, duration=args.booth_duration,
                                connections=args.connections, hello_uvloop=False)
    say(f"(c) booth mix ({', '.join(modes)}) against hello-world, {args.booth_duration} s at "
        f"{args.connections} connections with {tool}")
    phases: dict[str, Any] = {}
    pushes = None
    count = max(20_000, int(args.booth_duration * 1500 + args.warmup * 1500))
    for mode in modes:
        title, with_sandbox, module = MODES[mode]
        database = Database(f"{args.postgres}/scrm_bench_leads_c_{mode.replace('-', '_')}")
        sandbox_port = free_port()
        env = environment(database, args.redis,
                          f"http://127.0.0.1:{sandbox_port}" if with_sandbox else None)
        database.create()
        try:
            callbacks.flush(args.redis)
            migrate(env)
            seed_booth(database, Mix.scenes, args.history, env)
            queries = (("stored", "SELECT count(*) FROM interaction"),
                       ("processed", "SELECT count(*) FROM interaction "
                                     "WHERE processed_at IS NOT NULL"),
                       ("scored", "SELECT count(*) FROM prospect WHERE scored_at IS NOT NULL"),
                       ("ledger", "SELECT count(*) FROM score_entry"))
            before = {name: database.scalar(sql) for name, sql in queries}
            sandbox = None
            if with_sandbox:
                sandbox = Server("sandbox", [sys.executable, "-m", "bot", "sandbox", "--port",
                                             str(sandbox_port)], sandbox_port, env,
                                 scratch / f"c-{mode}-sandbox.log")
                servers.append(sandbox)
                sandbox.wait_ready("/sandbox/")
            port = free_port()
            service_env = dict(env)
            if args.service_db_options:
                service_env["SCRM_DATABASE_URL"] += "?" + args.service_db_options
            service = Server("service", [sys.executable, *module, "serve", "--port", str(port)],
                             port, service_env, scratch / f"c-{mode}-service.log")
            servers.append(service)
            service.wait_ready("/healthz")
            pushes = generate(scratch / f"pushes-{mode}.txt", count, Mix(people=Mix.people),
                              args.seed)
            profile = (RESULTS / f"leads-{stamp}.booth.txt"
                       if args.profile and mode == "sandbox" else None)
            if profile is not None:
                RESULTS.mkdir(exist_ok=True)
            sandbox_cpu = sandbox.cpu_seconds() if sandbox is not None else 0.0
            phase = callbacks.measure(service, tool, pushes, load_args, wrap=False,
                                      postgres=True, profile=profile)
            if sandbox is not None:  # WeChat's share of the machine, not the service's
                sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
            phase.server = mode
            service.stop()
            if sandbox is not None:
                sandbox.stop()
            counts = {"sent": phase.issued, "distinct": pushes.distinct(0, phase.issued)}
            for name, sql in queries:
                counts[name] = database.scalar(sql) - before[name]
            phases[mode] = {"title": title, "phase": phase, "counts": counts,
                            "sandbox_cpu_s": sandbox_cpu,
                            "profile": str(profile.relative_to(ROOT)) if profile is not None
                            and profile.exists() else None,
                            "profile_summary": project_summary(profile, top=15)
                            if profile is not None and profile.exists() else None,
                            "kinds": pushes.kinds, "problems": service.problems(),
                            "tracebacks": tracebacks(service.log)}
        finally:
            for server in servers:
                server.stop()
            database.drop()
            callbacks.flush(args.redis)
    assert pushes is not None
    hello = callbacks.run_hello(load_args, tool, pushes, callbacks.environment(
        Database("sqlite://unused"), None), scratch, servers)  # type: ignore[arg-type]
    return {"tool": tool, "hello": hello, "phases": phases}


def report_c(c: dict[str, Any]) -> str:
    hello: Phase = c["hello"]
    rows = ["(c) booth mix (bench/callbacks.py --mix booth pushes) against hello-world, one "
            "process each, PostgreSQL + Redis",
            f"  {'server':<12}{'req/s':>8}{'ratio':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-200':>8}"
            f"{'errors':>7}{'srv CPU':>8}{'db CPU':>7}{'load':>6}{'other':>7}{'RSS MB':>8}"]

    def line(name: str, phase: Phase) -> str:
        load = phase.load
        ratio = load.rps / hello.load.rps if hello.load.rps else 0.0
        db = "-" if phase.database_cpu is None else f"{phase.database_cpu:.0%}"
        return (f"  {name:<12}{load.rps:>8.0f}{ratio:>8.1%}{load.p50_ms:>8.1f}"
                f"{load.p99_ms:>8.1f}{load.non200:>8}{load.socket_errors + load.timeouts:>7}"
                f"{phase.server_cpu:>8.0%}{db:>7}{load.client_cpu:>6.0%}{phase.other_cpu:>7.0%}"
                f"{phase.peak_rss_mb:>8.1f}")

    rows.append(line("hello-world", hello))
    for mode, data in c["phases"].items():
        rows.append(line(mode, data["phase"]))
    for mode, data in c["phases"].items():
        counts = data["counts"]
        rows.append(f"  {mode}: {data['title']}")
        once = " (exactly once)" if counts["stored"] == counts["distinct"] else " (NOT once)"
        rows.append(f"    pushes sent {counts['sent']} ({counts['distinct']} distinct); stored "
                    f"{counts['stored']}{once}, "
                    f"processed {counts['processed']}, people scored {counts['scored']}, "
                    f"ledger rows {counts['ledger']}; log: {len(data['problems'])} "
                    "warning/error lines"
                    + (f"; the sandbox used {data['sandbox_cpu_s']:.1f} s of CPU"
                       if data["sandbox_cpu_s"] else ""))
        for block in data["tracebacks"][:1]:
            rows.append("    " + block.replace("\n", "\n    "))
        if data.get("profile_summary"):
            rows.append("    py-spy of the service during the measured run:")
            rows += ["    " + line for line in data["profile_summary"].splitlines()]
            rows.append(f"    profile: {data['profile']}")
    if "sandbox" in c["phases"] and "unscored" in c["phases"]:
        on, off = c["phases"]["sandbox"]["phase"].load.rps, \
            c["phases"]["unscored"]["phase"].load.rps
        if off:
            rows.append(f"  scoring on / off (sandbox vs unscored): {on / off:.1%} of the "
                        f"throughput")
    client = hello.load.client_cpu
    rows.append(f"  {'info' if client < 0.9 else 'info-FAIL':<9} the load generator ({c['tool']}) "
                f"kept up with hello-world (else every ratio is overstated): it used "
                f"{client:.0%} of a core")
    busiest = max([hello.other_cpu] + [d["phase"].other_cpu for d in c["phases"].values()])
    rows.append(f"  {'info' if busiest < 0.15 else 'info-FAIL':<9} the machine had no other "
                f"load: up to {busiest:.0%} of a core elsewhere")
    return "\n".join(rows)


# --- the run --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    parts = set(args.parts.lower())
    if not parts or parts - set("abc"):
        raise SystemExit("--parts takes letters from abc")
    if not args.postgres.startswith(("postgres://", "postgresql://")):
        raise SystemExit("--postgres must be postgres://USER@HOST:PORT")
    args.postgres = "postgres://" + args.postgres.split("://", 1)[1].rstrip("/")
    if args.seed is not None:
        random.seed(args.seed)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    servers: list[Server] = []
    results: dict[str, Any] = {"settings": {**vars(args), "python": sys.version.split()[0],
                                            "started_at": time.strftime("%FT%T%z"),
                                            "cpus": os.cpu_count()}}
    texts: list[str] = []
    passed = True
    with tempfile.TemporaryDirectory(prefix="scrm-bench-leads-") as folder:
        scratch = Path(folder)
        try:
            if "a" in parts:
                results["a"] = part_a(args, scratch, servers)
                text, ok = report_a(results["a"])
                texts.append(text)
                passed &= ok
                say(text)
            if "b" in parts:
                results["b"] = part_b(args, scratch, stamp)
                text, ok = report_b(results["b"])
                texts.append(text)
                passed &= ok
                say(text)
            if "c" in parts:
                results["c"] = part_c(args, scratch, servers, stamp)
                text = report_c(results["c"])
                texts.append(text)
                say(text)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            for server in servers:
                server.stop()
    say("\n" + "=" * 100)
    say("\n\n".join(texts))
    say("RESULT: " + ("PASS" if passed else "FAIL"))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"leads-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=_plain) + "\n")
    say(f"results: {path.relative_to(ROOT)}")
    return 0 if passed else 1


def _plain(value: Any) -> Any:
    if isinstance(value, Phase):
        data = asdict(value)
        data["load"]["rps"] = value.load.rps
        return data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Counter):
        return dict(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
