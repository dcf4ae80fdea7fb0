"""Load generators: wrk with bench/pushes.lua, or a Python one on aiohttp (`python -m bench.load`).

Both send the lines of a push file (bench/pushes.py) in order over N keep-alive connections for a
fixed time, and end with one line `BENCH {json}`: completed requests, how many lines were issued,
non-200 answers, p50/p99 latency. They run in a process of their own, away from the server's core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "pushes.lua"


@dataclass
class Load:
    tool: str
    requests: int
    duration_s: float
    issued: int
    non200: int
    exhausted: bool
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    timeouts: int
    client_cpu: float  # share of one core the load generator used

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def pick_tool(tool: str) -> str:
    if tool == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if tool == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), use --tool python")
    return tool


def run(tool: str, url: str, file: Path, offset: int, connections: int, duration: int,
        wrap: bool) -> Load:
    """One load phase against the server at `url` (scheme, host and port: the paths are in the
    file), starting at byte `offset` of `file`."""
    tail = [str(file), str(offset)] + (["wrap"] if wrap else [])
    if tool == "wrk":
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
                   "-s", str(LUA), url + "/", "--", *tail]
    else:
        command = [sys.executable, "-m", "bench.load", url, *tail, "--connections",
                   str(connections), "--duration", str(duration)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=duration + 60, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")
    data: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Load(tool=tool, **{**data, "exhausted": bool(data["exhausted"])},
                client_cpu=cpu / wall)


# --- the Python load generator ----------------------------------------------------------------

class Lines:
    def __init__(self, path: str, offset: int, wrap: bool) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.file.seek(offset)
        self.wrap = wrap
        self.issued = 0
        self.exhausted = False

    def next(self) -> tuple[str, bytes, dict[str, str]]:
        """The next request: path, body and headers (see bench/pushes.lua for the format)."""
        line = self.file.readline()
        if not line:
            self.exhausted = self.exhausted or not self.wrap
            self.file.seek(0)
            line = self.file.readline()
        self.issued += 1
        path, body, *auth = line.rstrip(b"\n").split(b"\t", 2)
        if auth:
            return path.decode(), body, {"Content-Type": "application/json",
                                         "Authorization": auth[0].decode()}
        return path.decode(), body, {"Content-Type": "text/xml"}

    def close(self) -> None:
        self.file.close()


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def generate(url: str, lines: Lines, connections: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"non200": 0, "socket_errors": 0, "timeouts": 0}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=5)
    started = time.perf_counter()
    deadline = started + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            path, body, headers = lines.next()
            sent = time.perf_counter()
            try:
                async with session.post(URL(url + path, encoded=True), data=body,
                                        headers=headers) as response:
                    await response.read()
                    counts["non200"] += response.status != 200
            except TimeoutError:
                counts["timeouts"] += 1
                continue
            except aiohttp.ClientError:
                counts["socket_errors"] += 1
                continue
            latencies.append(time.perf_counter() - sent)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests": len(latencies), "duration_s": elapsed, "issued": lines.issued,
            "exhausted": int(lines.exhausted), "p50_ms": percentile(latencies, 0.50) * 1e3,
            "p99_ms": percentile(latencies, 0.99) * 1e3,
            "max_ms": (latencies[-1] if latencies else 0.0) * 1e3, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("url")
    parser.add_argument("file")
    parser.add_argument("offset", type=int)
    parser.add_argument("wrap", nargs="?", choices=["wrap"])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    lines = Lines(args.file, args.offset, args.wrap == "wrap")
    try:
        result = asyncio.run(generate(args.url, lines, args.connections, args.duration))
    finally:
        lines.close()
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
