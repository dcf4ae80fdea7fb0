"""Several processes give the same outcomes as one: `python -m bot serve --no-worker` twice (two
ports) and one `python -m bot worker`, all on one PostgreSQL database and one Redis DB (the
production set-up), against the WeChat sandbox.

A booth burst as the booth sees it: marketing ops set up a team of three and an OA booth code
through one server's admin API; dozens of visitors follow through the code at once, WeChat's
pushes landing on either server, and some pushes come again — byte for byte — on the other
server (WeChat retrying, the retry reaching the other process), one after the first was
answered or both at the same moment. Each push is stored once and welcomed once (the copy that
finds it stored is answered `success`, as one process answers a retry: docs/wechat.md §2.1,
tests/bot/test_callbacks_oa.py); each visitor is one prospect attributed to the code, owned by
a team member in fair turns, with one opportunity for the owner and one template message to
the owner's WeChat.

Only on the production backend (SCRM_TEST_BACKEND=production): the embedded default's SQLite
file and in-process store serve one process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import xmltodict

from bot.sandbox import Sandbox, events
from bot.sandbox.pushes import Delivery
from bot.sandbox.records import new_openid
from bot.settings import Settings
from domain import rules
from models import (
    Code,
    Identity,
    IdentityKind,
    Interaction,
    Opportunity,
    OutboundMessage,
    OutboundStatus,
    Prospect,
    ProspectMerge,
)
from tests.conftest import ADMIN_TOKEN, BACKEND, base_settings

pytestmark = pytest.mark.skipif(
    BACKEND != "production",
    reason="several processes share one database and one store: needs "
           "SCRM_TEST_BACKEND=production (PostgreSQL + Redis)")

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEAM = "展会A组"
TAGS = ["工博会2026", "展会"]
WELCOME = "欢迎来到 A馆 3号展台！"
VISITORS = 40
SEQUENTIAL_RETRY = range(1, VISITORS, 5)  # sent again to the other server once answered
RACING_RETRY = range(3, VISITORS, 5)  # sent to both servers at the same moment
START_TIMEOUT = 30.0  # seconds for a process to answer; generous, never asserted on
SETTLE_TIMEOUT = 25.0  # below the worker's recovery_after (30 s): the servers do the work
STOP_TIMEOUT = 20.0
TEMPLATE = str(base_settings().oa_opportunity_template_id)
PUSH_TIMEOUT = 10.0  # WeChat waits 5 s; a slow test machine is not what this test is about

# A follow through a booth code alone qualifies: 10 points of engagement, no fit needed.
RULES = """\
attribution: first_touch
thresholds: {fit: 0, engagement: 10}
profile: []
behavior:
  - {id: booth_scan, label: 展会扫码, on: scan, code_kind: booth, points: 10, cap: 10, per: code,
     window_hours: 24}
"""


# --- the processes ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The SCRM_* variables of `settings` (the test accounts, the sandbox's roots), nothing
    inherited from the caller's SCRM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    names = ("database_url", "redis_url", "wechat_api_base", "wechat_mp_base", "wecom_api_base",
             "oa_appid", "oa_secret", "oa_token", "oa_aes_key", "oa_opportunity_template_id",
             "mp_appid", "mp_secret", "wecom_corpid", "wecom_token", "wecom_aes_key",
             "wecom_secret", "wecom_agent_id", "admin_token", "secret_key", "public_url",
             "scoring_rules")
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            env[f"SCRM_{name.upper()}"] = str(value)
    env.update(extra, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


@dataclass
class Process:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    out: IO[bytes]

    def output(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def exited(self) -> bool:
        return self.process.returncode is not None

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not end; its exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        self.out.close()
        return int(self.process.returncode or 0)


async def start(name: str, env: dict[str, str], tmp_path: Path, *args: str) -> Process:
    log = tmp_path / f"{name}.log"
    out = log.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=out, stderr=asyncio.subprocess.STDOUT)
    return Process(name, process, log, out)


async def until(check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float,
                what: str) -> Any:
    """Polls `check` (done, state) until done; fails naming `what` and the last state."""
    deadline = time.monotonic() + timeout
    while True:
        done, state = await check()
        if done:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f}s; last seen {state!r}")
        await asyncio.sleep(0.1)


@dataclass
class Cluster:
    servers: list[str]  # roots of the two `serve --no-worker` processes
    processes: list[Process]

    def check_running(self) -> None:
        for process in self.processes:
            if process.exited():
                pytest.fail(f"{process.name} exited ({process.process.returncode}):\n"
                            f"{process.output()}")

    async def stop(self) -> dict[str, int]:
        codes = await asyncio.gather(*(p.stop() for p in self.processes))
        return {p.name: code for p, code in zip(self.processes, codes, strict=True)}


async def healthy(session: aiohttp.ClientSession, process: Process, root: str) -> None:
    async def check() -> tuple[bool, Any]:
        if process.exited():
            pytest.fail(f"{process.name} exited ({process.process.returncode}) before answering "
                        f"/healthz:\n{process.output()}")
        try:
            async with session.get(f"{root}/healthz",
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                return response.status == 200, (response.status, await response.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return False, repr(exc)

    await until(check, START_TIMEOUT, f"{process.name} answering GET /healthz with 200")


async def working(process: Process) -> None:
    async def check() -> tuple[bool, Any]:
        if process.exited():
            pytest.fail(f"{process.name} exited ({process.process.returncode}):\n"
                        f"{process.output()}")
        return "worker running" in process.output(), process.output()[-500:]

    await until(check, START_TIMEOUT, f"{process.name} running")


@pytest.fixture
async def cluster(database_url: str, redis_url: str | None, store: Any, wechat: Sandbox,
                  tmp_path: Path) -> AsyncIterator[Cluster]:
    """`migrate`, then two `serve --no-worker` and one `worker` on the test database and the
    suite's Redis DB (`store` empties it first), with the sandbox as WeChat and the rules of
    RULES; stopped (SIGTERM, then SIGKILL) whatever happens, their logs shown on a failure."""
    assert redis_url is not None
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules.load(path)  # loads: the processes would refuse to start otherwise
    settings = wechat.settings_for(base_settings(database_url=database_url, redis_url=redis_url,
                                                 scoring_rules=str(path)))
    env = environment(settings)

    migrate = await start("migrate", env, tmp_path, "migrate")
    try:
        await asyncio.wait_for(migrate.process.wait(), START_TIMEOUT)
    finally:
        status = await migrate.stop()
    assert status == 0, migrate.output()

    processes: list[Process] = []
    ports = [free_port(), free_port()]
    try:
        for n, port in enumerate(ports):
            processes.append(await start(f"serve-{n + 1}", env, tmp_path, "serve", "--host",
                                         "127.0.0.1", "--port", str(port), "--no-worker"))
        processes.append(await start("worker", env, tmp_path, "worker"))
        servers = [f"http://127.0.0.1:{port}" for port in ports]
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(healthy(session, p, root)
                                   for p, root in zip(processes[:2], servers, strict=True)))
        await working(processes[2])
        yield Cluster(servers, processes)
    finally:
        await asyncio.gather(*(p.stop() for p in processes))
        for process in processes:  # shown by pytest when the test failed
            print(f"===== {process.name} (exit {process.process.returncode}) =====\n"
                  f"{process.output()}")
        client = aioredis.Redis.from_url(redis_url)  # what the processes kept in the store
        await client.flushdb()
        await client.aclose()


# --- the booth --------------------------------------------------------------------------------

async def admin(session: aiohttp.ClientSession, root: str, path: str,
                body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(f"{root}/admin{path}", json=body, headers=AUTH) as response:
        answer = await response.json()
        assert response.status == 201, answer
        return dict(answer)


@dataclass
class Visitor:
    openid: str
    unionid: str
    event: dict[str, Any]
    timestamp: str
    nonce: str
    prefix: str


def visitor(wechat: Sandbox, ticket: str) -> Visitor:
    """A newcomer following through the code, with everything of the push fixed (CreateTime,
    timestamp, nonce, the cipher's random prefix) so that it can be sent again byte for byte."""
    openid, unionid = new_openid(), new_openid()
    event = events.scan_code(wechat, ticket, openid, unionid)
    assert event["Event"] == "subscribe"
    event["CreateTime"] = int(time.time())
    return Visitor(openid, unionid, event, str(int(time.time())),
                   str(secrets.randbelow(10**10)), secrets.token_hex(8))


async def push(wechat: Sandbox, server: str, person: Visitor) -> Delivery:
    """The sandbox's signed, encrypted push of the visitor's follow to `server`, once."""
    return await wechat.push_oa(f"{server}/wechat/oa", person.event, timestamp=person.timestamp,
                                nonce=person.nonce, random_prefix=person.prefix, tries=1,
                                timeout=PUSH_TIMEOUT)


def welcomed(delivery: Delivery, person: Visitor) -> bool:
    """Answered 200 with the code's welcome as the passive reply (decrypted, its envelope's
    signature checked by the sandbox)."""
    [attempt] = delivery.attempts
    assert attempt.status == 200 and attempt.error is None, delivery.to_dict()
    if attempt.reply is None:
        return False
    reply = xmltodict.parse(attempt.reply)["xml"]
    assert (reply["MsgType"], reply["Content"]) == ("text", WELCOME), attempt.reply
    assert reply["ToUserName"] == person.openid, attempt.reply
    return True


def acknowledged(delivery: Delivery) -> bool:
    """Answered 200 with `success` and no reply: a retry of a push stored already."""
    [attempt] = delivery.attempts
    assert attempt.status == 200 and attempt.error is None, delivery.to_dict()
    return attempt.body == "success" and attempt.reply is None


def identical(first: Delivery, again: Delivery) -> None:
    assert (again.query, again.body) == (first.query, first.body)


async def visit(wechat: Sandbox, servers: list[str], n: int, person: Visitor) -> None:
    """Visitor `n` follows: their push on one server (alternating), and for some the same push
    on the other server too, after the answer or at the same moment."""
    here, there = servers[n % 2], servers[(n + 1) % 2]
    if n in RACING_RETRY:
        one, other = await asyncio.gather(push(wechat, here, person),
                                          push(wechat, there, person))
        identical(one, other)
        answers = [welcomed(one, person), welcomed(other, person)]
        assert sorted(answers) == [False, True], (n, one.to_dict(), other.to_dict())
        assert acknowledged(other if answers[0] else one), (n, one.to_dict(), other.to_dict())
        return
    first = await push(wechat, here, person)
    assert welcomed(first, person), (n, first.to_dict())
    if n in SEQUENTIAL_RETRY:
        again = await push(wechat, there, person)
        identical(first, again)
        assert acknowledged(again), (n, again.to_dict())


# --- the outcome ------------------------------------------------------------------------------

async def progress(wechat: Sandbox) -> tuple[bool, dict[str, int]]:
    """Whether every push is processed and every opportunity's message sent, and the counts."""
    state = {
        "interactions": await Interaction.all().count(),
        "unprocessed": await Interaction.filter(processed_at=None).count(),
        "prospects": await Prospect.all().count(),
        "opportunities": await Opportunity.all().count(),
        "unsent": await OutboundMessage.exclude(
            status__in=(OutboundStatus.SENT, OutboundStatus.DELIVERED)).count(),
        "template messages": len(wechat.template_messages),
    }
    done = (state["interactions"] == VISITORS and state["unprocessed"] == 0
            and state["opportunities"] >= VISITORS and state["unsent"] == 0
            and state["template messages"] >= state["opportunities"])
    return done, state


async def test_two_servers_and_a_worker_give_the_outcomes_of_one_process(cluster, db, wechat):
    """A booth burst over `serve --no-worker` ×2 + `worker` on one PostgreSQL database and one
    Redis DB: each push stored once however many servers it reached, one prospect per visitor
    attributed to the booth code, the team's turns fair across processes, one opportunity per
    prospect for its owner and exactly one template message per opportunity to the owner."""
    server = cluster.servers[0]
    async with aiohttp.ClientSession() as session:
        team = []
        for name in ("王芳", "陈杰", "李娜"):
            openid = new_openid()
            wechat.add_follower(openid)  # follows the OA: template messages reach them
            team.append(await admin(session, server, "/salespeople", {
                "name": name, "team": TEAM, "oa_openid": openid, "daily_cap": 1000}))
        booth = await admin(session, server, "/codes", {
            "kind": "booth", "channel": "oa", "campaign": "2026 工博会", "team": TEAM,
            "welcome": WELCOME, "tags": TAGS})
    assert booth["ticket"] in wechat.qrcodes and booth["welcome"] == WELCOME

    visitors = [visitor(wechat, booth["ticket"]) for _ in range(VISITORS)]
    await asyncio.gather(*(visit(wechat, cluster.servers, n, person)
                           for n, person in enumerate(visitors)))

    state = await until(lambda: progress(wechat), SETTLE_TIMEOUT,
                        "every push processed and every opportunity's message sent")
    cluster.check_running()
    # Stopped (gracefully) before looking: nothing can be stored or sent after this.
    assert await cluster.stop() == {"serve-1": 0, "serve-2": 0, "worker": 0}
    assert state["template messages"] == len(wechat.template_messages), state
    for process in cluster.processes:  # nothing went wrong on the way, even if made good
        failed = [line for line in process.output().splitlines()
                  if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
        assert failed == [], f"{process.name}:\n{process.output()}"

    # each distinct push stored once, processed by the servers (no worker recovery needed)
    rows = await Interaction.all().order_by("id")
    assert len(rows) == VISITORS
    assert Counter(row.actor for row in rows) == Counter(p.openid for p in visitors)
    assert {(row.source, row.kind) for row in rows} == {("oa", "event.subscribe")}
    assert all(row.processed_at is not None for row in rows)
    assert [row.id for row in rows if row.attempts] == []
    assert {row.code_id for row in rows} == {booth["id"]}  # type: ignore[attr-defined]

    # one prospect per openid, attributed to the booth code, with its tags
    code = await Code.get(id=booth["id"])
    assert code.tags == TAGS
    prospects = {p.id: p for p in await Prospect.all()}
    assert await ProspectMerge.all().count() == 0
    assert all(p.merged_into_id is None for p in prospects.values())  # type: ignore[attr-defined]
    of_openid = dict(await Identity.filter(kind=IdentityKind.OA_OPENID).values_list(
        "value", "prospect_id"))
    assert sorted(of_openid) == sorted(p.openid for p in visitors)
    assert sorted(of_openid.values()) == sorted(prospects), "one prospect per openid"
    of_unionid = dict(await Identity.filter(kind=IdentityKind.UNIONID).values_list(
        "value", "prospect_id"))
    assert of_unionid == {p.unionid: of_openid[p.openid] for p in visitors}
    assert {row.actor: row.prospect_id for row in rows} == of_openid  # type: ignore[attr-defined]
    for prospect in prospects.values():
        assert prospect.first_code_id == booth["id"], prospect.id  # type: ignore[attr-defined]
        assert prospect.tags == TAGS, (prospect.id, prospect.tags)

    # owned by the team, in fair turns
    members = {person["id"]: person for person in team}
    owners = Counter(p.owner_id for p in prospects.values())  # type: ignore[attr-defined]
    assert set(owners) <= set(members), owners
    counts = [owners.get(member, 0) for member in members]
    assert max(counts) - min(counts) <= 1, owners

    # one opportunity per prospect, for its owner
    opportunities = await Opportunity.all()
    assert Counter(o.prospect_id for o in opportunities) == Counter(  # type: ignore[attr-defined]
        {pid: 1 for pid in prospects})
    for opportunity in opportunities:
        prospect = prospects[opportunity.prospect_id]  # type: ignore[attr-defined]
        assert opportunity.salesperson_id == prospect.owner_id, (  # type: ignore[attr-defined]
            opportunity.id, opportunity.attribution, opportunity.touches)
        assert (opportunity.status, opportunity.attribution) == ("open", "first_touch")

    # exactly one template message per opportunity, to the owner's openid
    messages = await OutboundMessage.all()
    assert Counter(m.opportunity_id for m in messages) == Counter(  # type: ignore[attr-defined]
        {o.id: 1 for o in opportunities})
    assert {m.status for m in messages} == {OutboundStatus.SENT}
    sent = {str(m["msgid"]): m for m in wechat.template_messages}
    assert len(sent) == len(wechat.template_messages) == len(opportunities)
    assert sorted(m.wechat_msgid or "" for m in messages) == sorted(sent)
    by_opportunity = {o.id: o for o in opportunities}
    for message in messages:
        opportunity = by_opportunity[message.opportunity_id]  # type: ignore[attr-defined]
        owner = members[opportunity.salesperson_id]  # type: ignore[attr-defined]
        delivered = sent[str(message.wechat_msgid)]
        assert message.recipient == delivered["touser"] == owner["oa_openid"], message.id
        assert delivered["template_id"] == TEMPLATE
        assert delivered["data"]["thing1"]["value"] == f"访客{opportunity.prospect_id}"  # type: ignore[attr-defined]
    pushed_to = Counter(m["touser"] for m in wechat.template_messages)
    assert pushed_to == Counter({members[o]["oa_openid"]: n for o, n in owners.items()})
