"""Where the service's time goes: py-spy sampling it during the measured run (`--profile`).

The samples are kept as py-spy's raw collapsed stacks (one `frame;frame;... count` per line; open
them in speedscope or flamegraph.pl) and summarised as the functions with the largest inclusive
and self shares of the samples.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path


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
