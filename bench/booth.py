"""Speed to lead at a booth: qualifying prospects played through the service and the WeChat
sandbox while a booth crowd keeps both busy at a steady rate (bench/leads.py, part a).

Everything goes the way it would at a fair. The team is set up through /admin (salespeople who
follow the OA in the sandbox, one booth code each issued through the sandbox's qrcode/create,
whitepapers and articles); every OA push is the sandbox's own (`POST /sandbox/push/oa`: signed,
encrypted, delivered to /wechat/oa and the reply read, as WeChat does), every mini-program call
goes to /mp with a session from a sandbox login code.

The crowd, at `rate` actions a second on a fixed schedule (open loop: an action is started on
time whether or not earlier ones have finished): text messages from followers, follows of new
visitors through the booth codes, SCANs by followers, and mini-program reads of articles (open,
heartbeat, close: short reads that never qualify). Nobody in it qualifies (no profile).

A qualifying prospect: follows through a booth code (with their UnionID), logs in to the
mini-program with the same UnionID, gives a profile (市场总监, 500-999, with consent), binds a
phone, and reads three whitepapers to the end: open, a heartbeat at 50 %, then their last
heartbeat is moved 12 s into the past in the database (the way the tests make time pass for a
read: the server counts reading time from the heartbeats it sees, at most 30 s a gap) and the
read is closed at 100 %, so it counts 12 s ≥ 10 s at progress 1.0 ≥ 0.9. With the default rules
that is fit 24 (director 8, 500+ 6, phone 10) ≥ 20 and engagement 5 (booth scan) + 5 (follow) +
15 per whitepaper ≥ 40: the second read qualifies them, and the third is scored again without a
second opportunity. The salesperson who owns the booth code (first touch) gets the push.
Between two steps a prospect pauses `think` seconds (±50 %): without a pause a whole visit
lands within ~80 ms, before the follow's own scoring has run, and the opportunity is then
credited to whichever signal's scoring runs first (see bench/leads.py --think).

Speed to lead is read from the rows afterwards: Opportunity.reached_at - qualified_at (when the
sandbox accepted the template message - when the qualifying signal was stored).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

TEXTS = ("你好，想了解一下你们的产品报价", "请问展会上的样品什么时候可以寄出？", "价格",
         "合作方式有哪些", "Can you send me the datasheet?", "资料")
MIX = (("text", 0.40), ("follow", 0.15), ("scan", 0.15), ("read", 0.30))
TEAM = "展会A组"
CAMPAIGN = "2026 工博会"
BACKDATE_S = 12.0  # reading time a qualifying read is given (the rules need >= 10 s)


class Failed(Exception):
    """A call that did not answer as it should."""


@dataclass
class Call:
    what: str
    seconds: float
    ok: bool
    error: str = ""


@dataclass
class Crowd:
    """What the background crowd did."""

    planned: int = 0
    started: int = 0
    finished: int = 0
    skipped: int = 0  # not started: too many still in flight (the service fell behind)
    seconds: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    calls: list[Call] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.finished / self.seconds if self.seconds else 0.0

    @property
    def request_rate(self) -> float:
        return len(self.calls) / self.seconds if self.seconds else 0.0


@dataclass
class Played:
    """One qualifying prospect as the driver played them."""

    index: int
    unionid: str
    started: float = 0.0
    finished: float = 0.0
    error: str = ""
    steps: dict[str, float] = field(default_factory=dict)


class Driver:
    def __init__(self, http: aiohttp.ClientSession, service: str, sandbox: str, admin_token: str,
                 database: str, think: float = 1.0) -> None:
        self.http = http
        self.think = think  # seconds a prospect takes between two steps
        self.service = service
        self.sandbox = sandbox
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.database = database
        self.db: asyncpg.Pool | None = None
        self.codes: list[dict[str, Any]] = []
        self.salespeople: list[dict[str, Any]] = []
        self.whitepapers: list[int] = []
        self.articles: list[int] = []
        self.readers: list[dict[str, str]] = []  # background mini-program users
        self.followers: list[str] = []  # background OA followers
        self.run = secrets.token_hex(3)
        self.crowd_serial = 0
        self.push_retries = 0  # pushes the sandbox sent again (the callback was too slow)

    # --- calls -----------------------------------------------------------------------------------

    async def call(self, method: str, url: str, *, expect: tuple[int, ...] = (200, 201),
                   **kwargs: Any) -> Any:
        async with self.http.request(method, url, **kwargs) as response:
            text = await response.text()
            if response.status not in expect:
                raise Failed(f"{method} {url.split('?')[0]} → {response.status}: {text[:300]}")
            return await response.json(content_type=None) if text else None

    async def admin_post(self, path: str, body: dict[str, Any]) -> Any:
        return await self.call("POST", f"{self.service}/admin{path}", json=body,
                               headers=self.admin)

    async def control(self, path: str, body: dict[str, Any]) -> Any:
        return await self.call("POST", f"{self.sandbox}/sandbox/{path}", json=body)

    async def push(self, body: dict[str, Any]) -> None:
        """A push from the sandbox to the callback, retried as WeChat does (no answer within
        5 s, or not 200: up to 3 tries); fails unless one was answered 200."""
        delivery = await self.control("push/oa", {"callback": f"{self.service}/wechat/oa",
                                                  **body})
        statuses = [attempt.get("status") for attempt in delivery.get("attempts", [])]
        self.push_retries += max(0, len(statuses) - 1)
        if not statuses or statuses[-1] != 200:
            raise Failed(f"push answered {statuses}: {delivery.get('attempts')}"[:400])

    async def mp(self, path: str, token: str, body: dict[str, Any]) -> Any:
        return await self.call("POST", f"{self.service}/mp{path}", json=body,
                               headers={"Authorization": f"Bearer {token}"})

    async def login(self, openid: str, unionid: str | None = None) -> str:
        code = (await self.control("login_code", {"openid": openid, "unionid": unionid}))["code"]
        answer = await self.call("POST", f"{self.service}/mp/login", json={"code": code})
        return str(answer["token"])

    # --- the team, the codes, the materials ------------------------------------------------------

    async def set_up(self, salespeople: int, followers: int, readers: int) -> None:
        self.db = await asyncpg.create_pool(self.database, min_size=1, max_size=4)
        for n in range(salespeople):
            openid = f"oLeadSales{self.run}{n:012d}"
            await self.control("follower", {"openid": openid})  # they follow the OA
            person = await self.admin_post("/salespeople", {
                "name": f"展会顾问{n + 1}", "team": TEAM, "oa_openid": openid,
                "daily_cap": 10_000})
            self.salespeople.append(person)
            code = await self.admin_post("/codes", {
                "kind": "booth", "channel": "oa", "campaign": CAMPAIGN,
                "salesperson_id": person["id"], "tags": ["工博会2026"],
                "welcome": "欢迎来到 A馆 3号展台！"})
            if not code.get("ticket"):
                raise Failed(f"the booth code has no ticket: {code}")
            self.codes.append(code)
        for n in range(3):
            paper = await self.admin_post("/materials", {
                "title": f"2026 制造业数字化白皮书（{n + 1}）", "kind": "whitepaper",
                "url": f"https://example.com/whitepaper-{n + 1}.pdf", "tags": ["白皮书"]})
            self.whitepapers.append(int(paper["id"]))
        for n in range(2):
            article = await self.admin_post("/materials", {
                "title": f"展会快讯 {n + 1}", "kind": "article"})
            self.articles.append(int(article["id"]))
        sem = asyncio.Semaphore(20)

        async def follower(n: int) -> None:
            async with sem:
                openid = self.crowd_openid()
                await self.push({"ticket": random.choice(self.codes)["ticket"],
                                 "openid": openid})
                self.followers.append(openid)

        async def reader(n: int) -> None:
            async with sem:
                openid = f"oLeadReader{self.run}{n:011d}"
                self.readers.append({"openid": openid, "token": await self.login(openid)})

        await asyncio.gather(*(follower(n) for n in range(followers)),
                             *(reader(n) for n in range(readers)))

    def crowd_openid(self) -> str:
        self.crowd_serial += 1
        return f"oLeadCrowd{self.run}{self.crowd_serial:012d}"

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()

    # --- the crowd -------------------------------------------------------------------------------

    async def timed(self, crowd: Crowd, what: str, work: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        try:
            result = await work
        except (Failed, aiohttp.ClientError, TimeoutError) as exc:
            crowd.calls.append(Call(what, time.perf_counter() - started, False,
                                    f"{type(exc).__name__}: {exc}"[:300]))
            raise
        crowd.calls.append(Call(what, time.perf_counter() - started, True))
        return result

    async def crowd_action(self, crowd: Crowd, kind: str) -> None:
        try:
            if kind == "text":
                openid = random.choice(self.followers)
                await self.timed(crowd, "text", self.push({"event": {
                    "FromUserName": openid, "MsgType": "text",
                    "Content": random.choice(TEXTS)}}))
            elif kind == "follow":
                openid = self.crowd_openid()
                await self.timed(crowd, "follow", self.push({
                    "ticket": random.choice(self.codes)["ticket"], "openid": openid}))
                self.followers.append(openid)
            elif kind == "scan":
                await self.timed(crowd, "scan", self.push({
                    "ticket": random.choice(self.codes)["ticket"],
                    "openid": random.choice(self.followers)}))
            else:
                reader = random.choice(self.readers)
                token = reader["token"]
                opened = await self.timed(crowd, "read open", self.mp("/reads", token, {
                    "material_id": random.choice(self.articles), "action": "open"}))
                read_id = opened["read_id"]
                await self.timed(crowd, "read heartbeat", self.mp("/reads", token, {
                    "action": "heartbeat", "read_id": read_id, "progress": 0.3}))
                await self.timed(crowd, "read close", self.mp("/reads", token, {
                    "action": "close", "read_id": read_id, "progress": 0.4}))
        except (Failed, aiohttp.ClientError, TimeoutError):
            return
        crowd.finished += 1

    async def crowd(self, rate: float, seconds: float, in_flight: int = 400) -> Crowd:
        """Starts `rate` actions a second for `seconds`, on schedule."""
        crowd = Crowd()
        kinds, weights = zip(*MIX, strict=True)
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        started = loop.time()
        due = started
        while due < started + seconds:
            crowd.planned += 1
            if len(running) >= in_flight:
                crowd.skipped += 1
            else:
                kind = random.choices(kinds, weights)[0]
                crowd.kinds[kind] += 1
                crowd.started += 1
                task = asyncio.create_task(self.crowd_action(crowd, kind))
                running.add(task)
                task.add_done_callback(running.discard)
            due += 1.0 / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
        if running:
            await asyncio.wait(set(running), timeout=30)
        crowd.seconds = loop.time() - started
        return crowd

    # --- the baseline ---------------------------------------------------------------------------

    async def bare_sends(self, seconds: float, every: float, appid: str, secret: str,
                         template_id: str) -> list[float]:
        """The floor of speed to lead: a bare template message to a salesperson, straight to
        the sandbox (no service), one every `every` seconds for `seconds`; their round trips."""
        token = (await self.call("POST", f"{self.sandbox}/cgi-bin/stable_token", json={
            "grant_type": "client_credential", "appid": appid, "secret": secret}))["access_token"]
        url = f"{self.sandbox}/cgi-bin/message/template/send?access_token={token}"
        touser = self.salespeople[0]["oa_openid"]
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        rounds: list[float] = []
        n = 0
        while loop.time() < end:
            n += 1
            began = time.perf_counter()
            answer = await self.call("POST", url, json={
                "touser": touser, "template_id": template_id,
                "client_msg_id": f"bench-bare-{self.run}-{n}",
                "data": {"thing1": {"value": "基准"}, "thing2": {"value": "直接发送"}}})
            if answer.get("errcode"):
                raise Failed(f"template/send answered {answer}")
            rounds.append(time.perf_counter() - began)
            await asyncio.sleep(every)
        return rounds

    # --- qualifying prospects --------------------------------------------------------------------

    async def backdate(self, read_id: int, seconds: float) -> None:
        """Time passing for a read: its last heartbeat heard `seconds` earlier."""
        assert self.db is not None
        status = await self.db.execute(
            'UPDATE "read" SET seen_at = seen_at - make_interval(secs => $2) '
            "WHERE id = $1 AND closed_at IS NULL", read_id, seconds)
        if status != "UPDATE 1":
            raise Failed(f"read {read_id} could not be moved back: {status}")

    async def prospect(self, played: Played) -> None:
        n, run = played.index, self.run
        openid = f"oLeadVisitor{run}{n:010d}"
        mini = f"oLeadMini{run}{n:013d}"
        code = self.codes[n % len(self.codes)]
        played.started = time.time()

        async def step(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
            if played.steps:  # a person takes a moment between two things they do
                await asyncio.sleep(self.think * random.uniform(0.5, 1.5))
            began = time.perf_counter()
            result = await work()
            played.steps[name] = time.perf_counter() - began
            return result

        try:
            await step("follow", lambda: self.push({
                "ticket": code["ticket"], "openid": openid, "unionid": played.unionid}))
            token = await step("login", lambda: self.login(mini, played.unionid))
            await step("profile", lambda: self.mp("/profile", token, {
                "consent_version": "2026-01", "name": f"张伟{n}", "company": f"华东精密{n}",
                "title": "市场总监", "company_size": "500-999"}))

            async def phone() -> Any:
                number = f"139{random.randrange(10**8):08d}"
                code = (await self.control("phone_code", {"phone": number}))["code"]
                return await self.mp("/phone", token, {"code": code})

            await step("phone", phone)
            for k, material in enumerate(self.whitepapers):
                async def read(material: int = material) -> None:
                    opened = await self.mp("/reads", token, {"material_id": material,
                                                              "action": "open"})
                    read_id = int(opened["read_id"])
                    await self.mp("/reads", token, {"action": "heartbeat", "read_id": read_id,
                                                    "progress": 0.5})
                    await self.backdate(read_id, BACKDATE_S)
                    await self.mp("/reads", token, {"action": "close", "read_id": read_id,
                                                    "progress": 1.0})

                await step(f"read {k + 1}", read)
        except (Failed, aiohttp.ClientError, TimeoutError, KeyError) as exc:
            played.error = f"{type(exc).__name__}: {exc}"[:400]
        played.finished = time.time()

    async def prospects(self, count: int, over: float) -> list[Played]:
        """`count` qualifying prospects, one starting every `over / count` seconds."""
        played = [Played(n, f"oLeadUnion{self.run}{n:012d}") for n in range(count)]
        tasks = []
        for one in played:
            tasks.append(asyncio.create_task(self.prospect(one)))
            await asyncio.sleep(over / max(count, 1))
        await asyncio.gather(*tasks)
        return played

    # --- what the database says ------------------------------------------------------------------

    async def reached(self, unionids: list[str], timeout: float) -> list[dict[str, Any]]:
        """The opportunities of the people with these UnionIDs once each was reached (or the
        timeout passed): times in ms since qualified_at, and what qualified them."""
        assert self.db is not None
        sql = """
            SELECT o.id, o.prospect_id, o.status, o.attribution, o.salesperson_id,
                   i.kind AS trigger,
                   EXTRACT(EPOCH FROM o.reached_at - o.qualified_at) * 1000 AS speed_ms,
                   EXTRACT(EPOCH FROM o.created_at - o.qualified_at) * 1000 AS routed_ms,
                   EXTRACT(EPOCH FROM o.reached_at - o.created_at) * 1000 AS sent_ms,
                   o.reached_at IS NOT NULL AS reached
            FROM opportunity o
            LEFT JOIN interaction i ON i.id = o.qualified_by
            WHERE o.prospect_id IN (SELECT prospect_id FROM identity
                                    WHERE kind = 'unionid' AND value = ANY($1::text[]))
            ORDER BY o.id"""
        deadline = time.monotonic() + timeout
        while True:
            rows = [dict(row) for row in await self.db.fetch(sql, unionids)]
            done = sum(row["reached"] for row in rows)
            if done >= len(unionids) or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.5)

    async def counts(self, settle: float = 0.0) -> dict[str, Any]:
        """What the database holds, once every signal is processed (or `settle` s passed)."""
        assert self.db is not None
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and await self.db.fetchval(
                "SELECT count(*) FROM interaction WHERE processed_at IS NULL"):
            await asyncio.sleep(0.2)
        row = await self.db.fetchrow("""
            SELECT (SELECT count(*) FROM interaction) AS interactions,
                   (SELECT count(*) FROM interaction WHERE processed_at IS NULL) AS unprocessed,
                   (SELECT count(*) FROM prospect WHERE merged_into_id IS NULL) AS prospects,
                   (SELECT count(*) FROM prospect WHERE merged_into_id IS NOT NULL) AS merged,
                   (SELECT count(*) FROM opportunity) AS opportunities,
                   (SELECT count(*) FROM score_entry) AS score_entries""")
        outbox = await self.db.fetch("SELECT status, count(*) AS n FROM outbound_message "
                                     "GROUP BY status")
        kinds = await self.db.fetch("SELECT kind, count(*) AS n FROM interaction GROUP BY kind "
                                    "ORDER BY n DESC")
        failed = await self.db.fetch("SELECT id, purpose, last_error FROM outbound_message "
                                     "WHERE status = 'failed' LIMIT 5")
        return {**dict(row), "outbox": {r["status"]: r["n"] for r in outbox},
                "kinds": {r["kind"]: r["n"] for r in kinds},
                "failed_messages": [dict(r) for r in failed]}


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the value below which `share` of them fall)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def call_stats(calls: list[Call]) -> dict[str, dict[str, Any]]:
    by: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        by[call.what].append(call)
    out = {}
    for what, some in sorted(by.items()):
        ok = [c.seconds * 1000 for c in some if c.ok]
        out[what] = {"n": len(some), "errors": sum(not c.ok for c in some),
                     "p50_ms": percentile(ok, 0.5), "p99_ms": percentile(ok, 0.99),
                     "first_error": next((c.error for c in some if not c.ok), "")}
    return out
