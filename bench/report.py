"""The benchmarks' figures: a phase per server, the targets (a share of hello-world's throughput,
p99, memory), a table, a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import Load

RESULTS = Path(__file__).resolve().parent / "results"
MIN_RATIO = 0.25
MAX_P99_MS = 50.0
MAX_RSS_MB = 150.0


@dataclass
class Phase:
    """A server measured under load: the warm-up, then the measured run."""

    server: str
    warmup: Load
    load: Load
    server_cpu: float  # share of one core, during the measured run
    database_cpu: float | None  # PostgreSQL's processes, in cores
    peak_rss_mb: float
    machine_cpu: float = 0.0  # all cores together, in cores

    @property
    def other_cpu(self) -> float:
        """What else kept the machine busy: a noisy neighbour makes the figures unreliable."""
        return max(0.0, self.machine_cpu - self.server_cpu - (self.database_cpu or 0.0)
                   - self.load.client_cpu)

    @property
    def issued(self) -> int:
        return self.warmup.issued + self.load.issued


@dataclass
class Check:
    name: str
    passed: bool
    value: str
    binding: bool = True  # False: shown for information (e.g. the PostgreSQL target on SQLite)


@dataclass
class Result:
    settings: dict[str, Any]
    service: Phase
    hello: Phase
    pushes: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    others: list[Phase] = field(default_factory=list)  # more baselines (WeRoBot), more setups

    @property
    def ratio(self) -> float:
        return self.service.load.rps / self.hello.load.rps if self.hello.load.rps else 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks if check.binding)

    def judge(self, postgres: bool, connections: int, min_ratio: float = MIN_RATIO) -> None:
        load, rss = self.service.load, self.service.peak_rss_mb
        where = "" if postgres else " (target is for PostgreSQL; information only)"
        at = "" if connections == 50 else f" (target is at 50 connections; run at {connections})"
        self.checks += [
            Check(f"throughput >= {min_ratio:.0%} of hello-world, one process{where}",
                  self.ratio >= min_ratio, f"{self.ratio:.1%}", binding=postgres),
            Check(f"p99 < {MAX_P99_MS:.0f} ms{at}", load.p99_ms < MAX_P99_MS,
                  f"{load.p99_ms:.1f} ms", binding=postgres and connections == 50),
            Check(f"server memory < {MAX_RSS_MB:.0f} MB", rss < MAX_RSS_MB, f"{rss:.1f} MB"),
        ]

    def table(self) -> str:
        rows = [f"{'server':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
                f"{'non-200':>9}{'errors':>8}{'srv CPU':>9}{'db CPU':>8}{'load CPU':>10}"
                f"{'other':>7}{'peak RSS':>10}"]
        for phase in (self.hello, *self.others, self.service):
            load = phase.load
            db = "-" if phase.database_cpu is None else f"{phase.database_cpu:.0%}"
            rows.append(f"{phase.server:<12}{load.rps:>10.0f}{load.p50_ms:>9.1f}"
                        f"{load.p99_ms:>9.1f}{load.max_ms:>9.1f}{load.non200:>9}"
                        f"{load.socket_errors + load.timeouts:>8}{phase.server_cpu:>9.0%}"
                        f"{db:>8}{load.client_cpu:>10.0%}{phase.other_cpu:>7.0%}"
                        f"{phase.peak_rss_mb:>7.1f} MB")
        runs = self.settings.get("hello_world_runs_rps") or []
        if len(runs) > 1:
            rows.append(f"hello-world measured {len(runs)} times: "
                        + " / ".join(f"{rps:,} req/s" for rps in runs) + " (the faster is the "
                        "baseline)")
        rows.append(f"ratio service / hello-world: {self.ratio:.1%}")
        for other in self.others:
            if other.load.rps:
                rows.append(f"ratio service / {other.server}: "
                            f"{self.service.load.rps / other.load.rps:.2f}x; {other.server} / "
                            f"hello-world: {other.load.rps / self.hello.load.rps:.1%}")
        pushes = self.pushes
        if "sent" in pushes:
            rows.append(f"pushes sent {pushes['sent']} ({pushes['distinct']} distinct, "
                        f"{pushes['sent'] - pushes['distinct']} retries); stored "
                        f"{pushes['stored']}, processed {pushes['processed']}, prospects "
                        f"{pushes['prospects']}")
        for check in self.checks:
            verdict = ("PASS" if check.passed else "FAIL") if check.binding else (
                "info" if check.passed else "info-FAIL")
            rows.append(f"  {verdict:<9} {check.name}: {check.value}")
        rows.append("RESULT: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(rows)

    def save(self, stamp: str, name: str = "callbacks") -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}-{stamp}.json"
        data = {"settings": self.settings, "ratio": self.ratio, "passed": self.passed,
                "hello_world": self._phase(self.hello), "service": self._phase(self.service),
                "pushes": self.pushes, "checks": [asdict(check) for check in self.checks],
                "others": [self._phase(other) for other in self.others]}
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return path

    @staticmethod
    def _phase(phase: Phase) -> dict[str, Any]:
        data = asdict(phase)
        data["load"]["rps"] = phase.load.rps
        data["warmup"]["rps"] = phase.warmup.rps
        data["other_cpu"] = phase.other_cpu
        return data
