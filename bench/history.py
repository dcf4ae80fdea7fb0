"""A working database for `scores rebuild`: prospects with a realistic log, put in fast.

`fill(url, interactions)` writes, through asyncpg's COPY, about `interactions / 10` prospects
(a few of them merged tombstones whose late signals still count for their survivor, a third
with a profile and consent, some with a bound phone), their identities, the booth, material,
salesperson and partner codes they came through, the materials they read, and
`interactions` rows of log over the last 90 days:

    message.text 30 %   mp.read 22 %   event.scan 10 %   event.location 5 % (no prospect)
    event.click 4 %     mp.action 4 %  event.subscribe 3 % + one entry per person
    mp.login 5 %        event.unsubscribe 2 %   mp.forward 2 %   WeCom contact added 2 %
    mp.profile 2 % (people with a profile)   mp.phone 1 % (people with a phone)

Each person's first signal is a follow (60 % through a code) or a mini-program login (30 %
through a code); counts per person are skewed (most have a few, some many). Reads carry a
material id, progress 0-1 and seconds as the server counted them; actions name what was done
(demo, pricing, webinar, form). Payloads look like the service's own (the push's fields, the
finished read). Then sequences are moved past the ids written and the tables analysed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

DAYS = 90
SALESPEOPLE = 12
MATERIALS = (("whitepaper", 4), ("article", 3), ("case", 2), ("video", 1), ("webinar", 2))
CODES = (("booth", "oa", 40), ("material", "mp", 20), ("salesperson", "wecom", 8),
         ("partner", "oa", 4))
KINDS = (  # (kind, share of the log after each person's first signal)
    ("message.text", 0.30), ("mp.read", 0.22), ("event.scan", 0.10),
    ("event.location", 0.05), ("event.click", 0.04), ("mp.action", 0.04),
    ("event.subscribe", 0.03), ("mp.login", 0.05), ("event.unsubscribe", 0.02),
    ("mp.forward", 0.02), ("event.change_external_contact.add_external_contact", 0.02),
    ("mp.profile", 0.02), ("mp.phone", 0.01))
ACTIONS = ("demo_request", "pricing_request", "webinar_signup", "webinar_attend", "form_submit")
TITLES = ("市场总监", "采购经理", "IT主管", "总经理", "工程师", "销售代表", "CTO", "运营专员",
          "Marketing Director", "项目经理", "助理", None)
SIZES = ("1-49", "50-99", "100-499", "500-999", "1000-4999", "10000+", None)
DEPARTMENTS = ("市场部", "采购部", "信息中心", "研发部", "生产部", "财务部", None)
INDUSTRIES = ("制造业", "汽车", "医疗器械", "能源", "互联网", "零售", "教育", None)
TEXTS = ("你好，想了解一下你们的产品报价", "请问展会上的样品什么时候可以寄出？", "价格",
         "合作方式有哪些", "Can you send me the datasheet?", "资料")
BATCH = 50_000


@dataclass
class Filled:
    prospects: int
    merged: int
    identities: int
    interactions: int
    seconds: float


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class Log:
    """Generates the rows; everything derives from one seeded random source."""

    def __init__(self, interactions: int, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.total = interactions
        self.people = max(10, interactions // 10)
        self.now = now
        self.start = now - timedelta(days=DAYS)
        self.n = 0  # interactions written
        self.materials: list[tuple[int, str]] = []
        self.codes: list[tuple[int, str, str, str, int | None]] = []  # id, kind, channel, scene
        self.booth_codes: list[int] = []
        self.mp_codes: list[int] = []
        kinds, weights = zip(*KINDS, strict=True)
        self.kinds, self.cum = list(kinds), []
        acc = 0.0
        for weight in weights:
            acc += weight
            self.cum.append(acc)

    # --- the company's side ----------------------------------------------------------------------

    def salespeople(self) -> list[tuple[Any, ...]]:
        return [(n, f"顾问{n}", f"oBenchSales{n:017d}", f"sales{n}", f"展会{n % 3}组", 1000,
                 True, self.start) for n in range(1, SALESPEOPLE + 1)]

    def material_rows(self) -> list[tuple[Any, ...]]:
        rows, n = [], 0
        for kind, count in MATERIALS:
            for k in range(count):
                n += 1
                self.materials.append((n, kind))
                rows.append((n, f"{kind} {k + 1}: 2026 制造业数字化", kind,
                             f"https://example.com/{kind}-{k}.pdf", _json([f"资料:{kind}"]),
                             self.start))
        return rows

    def code_rows(self) -> list[tuple[Any, ...]]:
        rows, n = [], 0
        for kind, channel, count in CODES:
            for k in range(count):
                n += 1
                scene = f"h{kind[:2]}{k:04d}"
                salesperson = (n % SALESPEOPLE) + 1
                material = self.materials[k % len(self.materials)][0] if kind == "material" \
                    else None
                rows.append((n, kind, channel, scene, "expo-2026", salesperson, material,
                             _json(["展会", "expo-2026"]), kind == "booth", True, self.start))
                self.codes.append((n, kind, channel, scene, material))
                (self.booth_codes if kind == "booth" else self.mp_codes
                 if channel == "mp" else []).append(n)
        return rows

    # --- people ----------------------------------------------------------------------------------

    def when(self) -> datetime:
        return self.start + timedelta(seconds=self.rng.random() * DAYS * 86400 * 0.95)

    def prospect_rows(self) -> tuple[list[tuple[Any, ...]], list[int], dict[int, bool]]:
        """Prospects (survivors and tombstones), their counts of log, who has a phone."""
        rng = self.rng
        rows: list[tuple[Any, ...]] = []
        merged_into: dict[int, int] = {}
        for pid in range(1, self.people + 1):
            if pid > 100 and rng.random() < 0.02:  # found later to be someone seen before
                survivor = rng.randrange(1, pid)
                merged_into[pid] = merged_into.get(survivor, survivor)
        self.created = {pid: self.when() for pid in range(1, self.people + 1)}
        for survivor in set(merged_into.values()):  # a survivor is the one seen first
            self.created[survivor] = min(self.created[survivor], self.start)
        phones: dict[int, bool] = {}
        for pid in range(1, self.people + 1):
            created = self.created[pid]
            if pid in merged_into:
                rows.append((pid, None, None, None, None, None, None, None, "[]", None, None,
                             None, None, 0, 0, None, None, None, None,
                             merged_into[pid], created, created))
                phones[pid] = False
                continue
            profiled = rng.random() < 0.35
            phones[pid] = profiled and rng.random() < 0.45
            booth = rng.choice(self.booth_codes)
            owner = (booth % SALESPEOPLE) + 1
            profile = ((f"访客{pid}", f"公司{pid % 5000}", rng.choice(TITLES),
                        rng.choice(DEPARTMENTS), rng.choice(INDUSTRIES), rng.choice(SIZES),
                        f"p{pid}@example.com") if profiled else (None,) * 7)
            rows.append((pid, *profile, _json(["展会", "expo-2026"]), owner, created, booth,
                         None, 0, 0, None, None, "2026-01" if profiled else None,
                         created if profiled else None, None, created, created))
        self.merged_into = merged_into
        # log per person: skewed, at least one each, `total` in all
        counts = [1 + int(rng.expovariate(1 / 9.0)) for _ in range(self.people)]
        scale = self.total / sum(counts)
        counts = [max(1, round(c * scale)) for c in counts]
        diff = self.total - sum(counts)
        step = 1 if diff > 0 else -1
        i = 0
        while diff:
            j = i % self.people
            if step > 0 or counts[j] > 1:
                counts[j] += step
                diff -= step
            i += 1
        return rows, counts, phones

    def identity_rows(self, phones: dict[int, bool]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        n = 0
        for pid in range(1, self.people + 1):
            at = self.created[pid]
            kinds = []
            if self.rng.random() < 0.75:
                kinds.append(("oa_openid", f"oH{pid:026d}"[:28]))
            if self.rng.random() < 0.45 or not kinds:
                kinds.append(("mp_openid", f"oM{pid:026d}"[:28]))
            if self.rng.random() < 0.3:
                kinds.append(("unionid", f"oU{pid:026d}"[:28]))
            if phones.get(pid):
                kinds.append(("phone", f"{pid:064x}"))
            for kind, value in kinds:
                n += 1
                rows.append((n, kind, value, None, at, pid))
        return rows

    # --- the log ---------------------------------------------------------------------------------

    def kind(self) -> str:
        roll = self.rng.random() * self.cum[-1]
        for kind, edge in zip(self.kinds, self.cum, strict=True):
            if roll < edge:
                return kind
        return self.kinds[-1]

    def interaction(self, pid: int, kind: str, at: datetime,
                    has_profile: bool) -> tuple[Any, ...]:
        rng, n = self.rng, self.n + 1
        self.n = n
        openid = f"oH{pid:026d}"[:28]
        code_id: int | None = None
        scene: str | None = None
        source = "oa"
        ts = int(at.timestamp())
        head = {"ToUserName": "gh_3b1f2a6c9d07", "FromUserName": openid, "CreateTime": ts}
        payload: dict[str, Any]
        actor: str | None = openid
        prospect: int | None = pid
        if kind == "message.text":
            payload = {**head, "MsgType": "text", "Content": rng.choice(TEXTS),
                       "MsgId": str(24_000_000_000_000_000 + n)}
            dedup = f"msg:{24_000_000_000_000_000 + n}"
        elif kind in ("event.subscribe", "event.scan"):
            through = kind == "event.scan" or rng.random() < 0.6
            payload = {**head, "MsgType": "event", "Event": "subscribe" if kind ==
                       "event.subscribe" else "SCAN", "EventKey": ""}
            if through:
                code = self.codes[rng.choice(self.booth_codes) - 1 if rng.random() < 0.8
                                  else rng.randrange(len(self.codes))]
                code_id, scene = code[0], code[3]
                payload["EventKey"] = ("qrscene_" if kind == "event.subscribe" else "") + scene
                payload["Ticket"] = f"gQH47joAAAAAAAAAASxodHRwOi8v{scene}"
            dedup = f"ev:{openid}:{ts}:{n}"
        elif kind == "event.unsubscribe":
            payload = {**head, "MsgType": "event", "Event": "unsubscribe", "EventKey": ""}
            dedup = f"ev:{openid}:{ts}:{n}"
        elif kind == "event.click":
            payload = {**head, "MsgType": "event", "Event": "CLICK", "EventKey": "MENU_CASES"}
            dedup = f"ev:{openid}:{ts}:{n}"
        elif kind == "event.location":
            payload = {**head, "MsgType": "event", "Event": "LOCATION",
                       "Latitude": "31.230416", "Longitude": "121.473701",
                       "Precision": "65.000000"}
            dedup, prospect = f"ev:{openid}:{ts}:{n}", None
        elif kind == "event.change_external_contact.add_external_contact":
            source, actor = "wecom", f"wm{pid:030d}"
            code = self.codes[rng.randrange(len(self.codes))]
            code_id, scene = code[0], code[3]
            payload = {"ToUserName": "wwbench", "FromUserName": "sys", "CreateTime": ts,
                       "MsgType": "event", "Event": "change_external_contact",
                       "ChangeType": "add_external_contact", "UserID": f"sales{pid % 12 + 1}",
                       "ExternalUserID": actor, "State": scene, "WelcomeCode": "x" * 43}
            dedup = f"wecom:{actor}:{ts}:{n}"
        else:  # the mini-program
            source, actor = "mp", f"oM{pid:026d}"[:28]
            dedup = f"{kind}:{n:032x}"
            if kind == "mp.login":
                if rng.random() < 0.3:
                    code = self.codes[rng.choice(self.mp_codes) - 1]
                    code_id, scene = code[0], code[3]
                payload = {"openid": actor, "unionid": None, "scene": scene}
            elif kind == "mp.read":
                material, _ = self.materials[rng.randrange(len(self.materials))]
                progress = round(min(1.0, rng.betavariate(2, 1.2)), 3)
                seconds = round(rng.expovariate(1 / 40.0) * progress, 1)
                shared = rng.random() < 0.3
                payload = {"prospect_id": pid, "read_id": n, "material_id": material,
                           "seconds": seconds, "progress": progress,
                           "share_id": n % 997 if shared else None,
                           "salesperson_id": (pid % SALESPEOPLE) + 1 if shared else None,
                           "chain": [n % 997] if shared else [],
                           "shared_by_prospect_id": None}
                dedup = f"read:{n}"
            elif kind == "mp.action":
                action = rng.choice(ACTIONS)
                material = (self.materials[-1][0] if action.startswith("webinar") else None)
                payload = {"prospect_id": pid, "action": action, "material_id": material,
                           "fields": {"company": "某某科技"} if action == "form_submit" else None}
            elif kind == "mp.profile":
                payload = {"prospect_id": pid, "title": "市场总监", "company_size": "500-999",
                           "consent_version": "2026-01",
                           "fields": ["company", "company_size", "name", "title"],
                           "at": at.isoformat(), "sealed": "s" * 120}
            elif kind == "mp.phone":
                payload = {"prospect_id": pid, "phone": "138****8000", "sealed": "s" * 90,
                           "via": "button"}
            else:  # mp.forward
                payload = {"prospect_id": pid, "material_id": self.materials[0][0],
                           "share_id": n % 997, "to_prospect_id": (pid * 7) % self.people + 1}
        return (n, source, kind, dedup, actor, scene, _json(payload), at, at, None, 0,
                code_id, prospect)

    def interactions(self, counts: list[int], profiled: set[int],
                     phones: dict[int, bool]) -> Iterator[list[tuple[Any, ...]]]:
        rng = self.rng
        batch: list[tuple[Any, ...]] = []
        for index, count in enumerate(counts):
            pid = index + 1
            # a tombstone's own log is mostly what came after it was merged (late writes):
            # a merged record's rows were moved to its survivor at the merge
            at = self.created[pid]
            span = max(60.0, (self.now - at).total_seconds() * 0.98)
            times = sorted(at + timedelta(seconds=rng.random() * span) for _ in range(count))
            first = "event.subscribe" if rng.random() < 0.7 else "mp.login"
            for k, when in enumerate(times):
                kind = first if k == 0 else self.kind()
                if kind == "mp.profile" and pid not in profiled:
                    kind = "mp.read"
                if kind == "mp.phone" and not phones.get(pid):
                    kind = "message.text"
                batch.append(self.interaction(pid, kind, when, pid in profiled))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch


PROSPECT_COLUMNS = ("id", "name", "company", "title", "department", "industry", "company_size",
                    "email", "tags", "owner_id", "owner_assigned_at", "first_code_id",
                    "partner_id", "profile_score", "behavior_score", "quadrant", "scored_at",
                    "consent_version", "consent_at", "merged_into_id", "created_at",
                    "updated_at")
INTERACTION_COLUMNS = ("id", "source", "kind", "dedup_key", "actor", "scene", "payload",
                       "received_at", "processed_at", "claimed_until", "attempts", "code_id",
                       "prospect_id")


async def fill(url: str, interactions: int, seed: int = 2026,
               progress: Callable[[str], None] | None = None) -> Filled:
    """Writes the history into the (migrated, empty) database at `url`."""
    say = progress or (lambda _: None)
    started = time.perf_counter()
    log = Log(interactions, seed, datetime.now(UTC))
    conn = await asyncpg.connect(url)
    try:
        # the rows are consistent by construction: no per-row foreign-key triggers (a
        # superuser's session setting; the constraints stay, and hold for what is written)
        await conn.execute("SET session_replication_role = replica")

        async def copy(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))

        await copy("salesperson", ("id", "name", "oa_openid", "wecom_userid", "team",
                                   "daily_cap", "active", "created_at"), log.salespeople())
        await copy("material", ("id", "title", "kind", "url", "tags", "created_at"),
                   log.material_rows())
        await copy("code", ("id", "kind", "channel", "scene", "campaign", "salesperson_id",
                            "material_id", "tags", "permanent", "ready", "created_at"),
                   log.code_rows())
        prospects, counts, phones = log.prospect_rows()
        await copy("prospect", PROSPECT_COLUMNS, prospects)
        profiled = {row[0] for row in prospects if row[17] is not None}
        identities = log.identity_rows(phones)
        await copy("identity", ("id", "kind", "value", "sealed", "created_at", "prospect_id"),
                   identities)
        say(f"{len(prospects):,} prospects ({len(log.merged_into):,} merged), "
            f"{len(identities):,} identities")
        # the log's secondary indexes are built once at the end, not row by row
        unique = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE conrelid = 'interaction'::regclass AND contype = 'u'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'interaction' "
            "AND indexname <> 'interaction_pkey' AND indexname <> ALL($1::text[])",
            [row["conname"] for row in unique])
        for row in unique:
            await conn.execute(f'ALTER TABLE interaction DROP CONSTRAINT "{row["conname"]}"')
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        for batch in log.interactions(counts, profiled, phones):
            await copy("interaction", INTERACTION_COLUMNS, batch)
            if log.n % 200_000 < BATCH:
                say(f"{log.n:,} interactions")
        say("indexing")
        for row in unique:
            await conn.execute(f'ALTER TABLE interaction ADD CONSTRAINT "{row["conname"]}" '
                               f'{row["definition"]}')
        for row in indexes:
            await conn.execute(row["indexdef"])
        for table in ("salesperson", "material", "code", "prospect", "identity", "interaction"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM \"{table}\"))")
        await conn.execute("RESET session_replication_role")
        say("analysing")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return Filled(len(prospects), len(log.merged_into), len(identities), log.n,
                  time.perf_counter() - started)
