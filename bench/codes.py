"""Issuing and printing a batch of material codes, against the sandbox, with memory watched.

    python bench/codes.py [--count 10000] [--channel oa|mp] [--database sqlite|postgres://...]

Runs the real command in a process of its own —
`python -m bot codes issue --kind material --material-id N --count C --sheet FILE` — against
`python -m bot sandbox` in another, once for a tenth of the batch and once for the whole batch.
The baseline, measured in the same run, is the cost of rendering one code's PNG
(`qr.render.code_png` of a fresh QR with its caption). Reports codes per second, the batch's
cost per code as a multiple of the baseline, and the command's peak memory for both sizes
("flat" when ten times the codes take well under ten times the memory). Targets of issue 3:
the whole batch in under 30 s, memory flat. Traffic stays on 127.0.0.1; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bot`, `qr` and `models` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "SCRM_OA_APPID": "wxbenchcodes00001", "SCRM_OA_SECRET": "bench-oa-secret",
    "SCRM_OA_TOKEN": "benchtoken", "SCRM_OA_AES_KEY": "B" * 43,
    "SCRM_MP_APPID": "wxbenchcodesmp001", "SCRM_MP_SECRET": "bench-mp-secret",
    "SCRM_SECRET_KEY": "bench-secret-key-0123456789abcdef",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def baseline(samples: int = 200) -> float:
    """Seconds to render one captioned code PNG (the unit the batch is measured in)."""
    from qr import render

    lines = ["智能制造白皮书 2026", "No. 0042"]
    render.code_png(render.qr_image("http://weixin.qq.com/q/warm-up"), lines)
    started = time.perf_counter()
    for n in range(samples):
        render.code_png(render.qr_image(f"http://weixin.qq.com/q/bench{n:08d}"), lines)
    return (time.perf_counter() - started) / samples


async def seed(database: str) -> int:
    from bot.db import close_db, init_db, migrate
    from models import Material

    await migrate(database)
    await init_db(database)
    try:
        material = await Material.create(title="智能制造白皮书", kind="whitepaper")
        return material.id
    finally:
        await close_db()


def run_batch(env: dict[str, str], material: int, count: int, channel: str,
              sheet: Path) -> dict[str, float]:
    argv = [sys.executable, "-m", "bot", "codes", "issue", "--kind", "material",
            "--channel", channel, "--material-id", str(material), "--count", str(count),
            "--sheet", str(sheet)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the command failed:\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"count": count, "seconds": seconds, "codes_per_s": count / seconds,
            "peak_rss_mb": max(peak, before) / 1024, "sheet_mb": sheet.stat().st_size / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--channel", choices=["oa", "mp"], default="oa")
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="scrm-bench-codes-"))
    database = (f"sqlite://{folder}/bench.sqlite3" if args.database == "sqlite"
                else args.database)
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}, **ENV,
           "SCRM_DATABASE_URL": database, "SCRM_WECHAT_API_BASE": f"http://127.0.0.1:{port}",
           "SCRM_WECHAT_MP_BASE": f"http://127.0.0.1:{port}",
           "SCRM_WECOM_API_BASE": f"http://127.0.0.1:{port}"}
    os.environ.update(env)
    unit = baseline()
    material = asyncio.run(seed(database))
    sandbox = subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "--port", str(port)],
                               env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        small = run_batch(env, material, max(args.count // 10, 1), args.channel,
                          folder / "small.pdf")
        full = run_batch(env, material, args.count, args.channel, folder / "full.pdf")
    finally:
        sandbox.terminate()
        sandbox.wait(10)
    per_code = full["seconds"] / full["count"]
    growth = full["peak_rss_mb"] / small["peak_rss_mb"]
    checks = {f"{args.count} codes in under 30 s": full["seconds"] < 30,
              "memory flat (10x the codes, < 2x the peak memory)": growth < 2}
    print(f"baseline: one captioned PNG renders in {unit * 1000:.2f} ms")
    for run in (small, full):
        print(f"{run['count']:>6} codes on {args.channel}: {run['seconds']:6.1f} s, "
              f"{run['codes_per_s']:7.0f} codes/s, peak {run['peak_rss_mb']:.0f} MB, "
              f"sheet {run['sheet_mb']:.1f} MB")
    print(f"cost per code: {per_code * 1000:.2f} ms = {per_code / unit:.2f}x one PNG render")
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"codes-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(
        {"baseline_png_ms": unit * 1000, "small": small, "full": full,
         "ratio_to_png": per_code / unit, "memory_growth": growth, "checks": checks},
        indent=2, ensure_ascii=False))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
