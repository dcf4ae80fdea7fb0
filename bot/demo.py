"""`python -m bot demo`: the service and the WeChat sandbox in one process, playing a booth story.

Everything runs on the embedded default (a SQLite file, the in-process store) and on loopback
ports; nothing reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.logs import AccessLogger
from bot.sandbox import Sandbox, create_sandbox_app, events
from bot.settings import Secret, Settings
from domain.attribution import CHINA
from models import Interaction

DEMO = dict(
    oa_appid="wxdemo0000000oa01", oa_secret=Secret("demo-oa-secret"), oa_token=Secret("demotoken"),
    oa_aes_key=Secret("DemoDemoDemoDemoDemoDemoDemoDemoDemoDemo123"),
    oa_opportunity_template_id="demo-opportunity-template",
    mp_appid="wxdemo0000000mp01", mp_secret=Secret("demo-mp-secret"),
    wecom_corpid="wwdemo00000corp01", wecom_token=Secret("demowecom"),
    wecom_aes_key=Secret("WecomDemoWecomDemoWecomDemoWecomDemoWecom12"),
    wecom_secret=Secret("demo-wecom-secret"), wecom_agent_id=1000002,
)
VISITOR = "oDemoVisitor00000000000Booth"
SALES_OPENID = "oDemoSalesWangfang0000000OA1"  # 王芳 follows the OA: pushes reach her there
UNIONID = "oDemoUnionid00000000000Booth"
EXTERNAL = "wmDemoExternalContact0000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step(number: int, title: str) -> None:
    print(f"\n[{number}] {title}")


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    print(f"    {label}: {text}")


async def start(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def run_demo(database: str | None = None) -> int:
    folder = Path(tempfile.mkdtemp(prefix="scrm-demo-"))
    db_path = Path(database) if database else folder / "demo.sqlite3"
    sandbox_port, port = free_port(), free_port()
    sandbox_url, base = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{port}"
    admin_token = secrets.token_urlsafe(16)
    settings = replace(Settings(), **DEMO, database_url=f"sqlite://{db_path}",  # type: ignore[arg-type]
                       admin_token=Secret(admin_token), public_url=base,
                       wechat_api_base=sandbox_url, wechat_mp_base=sandbox_url,
                       wecom_api_base=sandbox_url)
    sandbox = Sandbox(settings)
    sandbox.url = sandbox_url
    runners = [await start(create_sandbox_app(sandbox), sandbox_port)]
    runners.append(await start(create_app(settings), port))
    print(f"SCRM demo: service on {base}, WeChat sandbox on {sandbox_url}, database {db_path}")
    admin = {"Authorization": f"Bearer {admin_token}"}
    try:
        async with aiohttp.ClientSession() as http:
            await tour(http, sandbox, base, admin, folder)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    print("\nDone. Explore further with `python -m bot serve` and `python -m bot sandbox`.")
    return 0


async def settled(http: aiohttp.ClientSession, base: str, admin: dict[str, str],
                  identity: str, kind: str, tries: int = 50) -> dict[str, Any]:
    """The prospect of `identity` once it has an identity of `kind` (work after the reply)."""
    for _ in range(tries):
        async with http.get(f"{base}/admin/prospects", headers=admin,
                            params={"identity": identity}) as r:
            found = await r.json()
        if found and any(i["kind"] == kind for i in found[0]["identities"]):
            return dict(found[0])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{identity} never got a {kind}")


async def tour(http: aiohttp.ClientSession, sandbox: Sandbox, base: str,
               admin: dict[str, str], folder: Path) -> None:
    step(1, "Marketing registers the booth team and issues the booth's code")
    team = []
    sandbox.add_follower(SALES_OPENID)
    for name, userid, openid in (("王芳", "wangfang", SALES_OPENID), ("陈杰", "chenjie", None)):
        async with http.post(f"{base}/admin/salespeople", headers=admin, json={
                "name": name, "team": "华东大区", "wecom_userid": userid,
                "oa_openid": openid}) as r:
            team.append(await r.json())
            show(f"POST /admin/salespeople → {r.status}",
                 {k: team[-1][k] for k in ("id", "name", "team", "wecom_userid", "oa_openid")})
    async with http.post(f"{base}/admin/codes", headers=admin, json={
            "kind": "booth", "channel": "oa", "campaign": "2026 上海工博会 A馆 3号展台",
            "team": "华东大区", "tags": ["工博会2026", "智能制造"],
            "welcome": "欢迎莅临工博会 A馆 3号展台！回复“资料”获取智能制造白皮书。"}) as r:
        booth = await r.json()
        show(f"POST /admin/codes → {r.status}", {k: booth[k] for k in ("id", "kind", "channel",
                                                                     "scene", "url")})
    async with http.get(f"{base}/admin/codes/{booth['id']}/image.png", headers=admin) as r:
        png = folder / "booth-code.png"
        png.write_bytes(await r.read())
        show(f"GET /admin/codes/{booth['id']}/image.png → {r.status}", f"printable PNG at {png}")

    step(2, "A visitor scans the booth code and follows the Official Account; WeChat retries "
            "the push twice more (safe mode, signed and encrypted)")
    sandbox.add_follower(VISITOR, UNIONID, subscribed=False)  # their UnionID, as WeChat knows it
    delivery = await sandbox.push_oa(f"{base}/wechat/oa",
                                     events.subscribe(VISITOR, scene=booth["scene"]),
                                     mode="safe", duplicates=2)
    for number, attempt in enumerate(delivery.attempts, 1):
        show(f"delivery {number}", f"HTTP {attempt.status}, {len(attempt.body)} bytes "
             + ("(encrypted passive reply)" if attempt.reply else f"body {attempt.body!r}"))
    if delivery.reply:
        content = delivery.reply.split("<Content><![CDATA[", 1)[-1].split("]]>", 1)[0]
        show("the visitor reads", content)
    stored = await Interaction.filter(actor=VISITOR).count()
    show("interactions stored for the visitor", f"{stored} (three deliveries, one push)")
    follower = await settled(http, base, admin, f"oa_openid:{VISITOR}", "unionid")
    show("the follower's UnionID, fetched from user/info after the reply",
         f"prospect {follower['id']}, owner {follower['owner']['salesperson']} "
         "(the booth team's turn)")

    step(3, "The visitor opens the mini-program from the booth and logs in (same UnionID): "
            "the same prospect")
    code = sandbox.issue_login_code("oDemoVisitorMiniProgram00001", UNIONID)
    async with http.post(f"{base}/mp/login", json={"code": code, "scene": booth["scene"]}) as r:
        login = await r.json()
        show(f"POST /mp/login → {r.status}", {"prospect_id": login.get("prospect_id"),
                                                "token": "(a signed session token)"})
    me = {"Authorization": f"Bearer {login['token']}"}

    step(4, "They agree to the privacy terms, fill the profile and bind their phone")
    async with http.post(f"{base}/mp/profile", headers=me, json={
            "consent_version": "2026-01", "name": "张伟", "company": "华东精密制造",
            "title": "市场总监", "department": "市场部", "industry": "制造业",
            "company_size": "500-999", "email": "zhangwei@example.com"}) as r:
        profile = await r.json()
        show(f"POST /mp/profile → {r.status}", {k: profile[k] for k in (
            "name", "company", "title", "company_size", "consent_version")})
    async with http.post(f"{base}/mp/phone", headers=me,
                         json={"code": sandbox.issue_phone_code("13916880520")}) as r:
        show(f"POST /mp/phone → {r.status}", await r.json())

    step(5, "王芳 shares a whitepaper from her card; the visitor reads it and two more to the "
            "end (the demo reads them side by side, about 12 seconds)")
    papers = []
    for title in ("2026 制造业数字化白皮书", "智能工厂建设指南", "工业互联网安全白皮书"):
        async with http.post(f"{base}/admin/materials", headers=admin, json={
                "title": title, "kind": "whitepaper", "url": "https://example.com/paper.pdf",
                "tags": ["白皮书:数字化"]}) as r:
            papers.append(await r.json())
    async with http.post(f"{base}/admin/shares", headers=admin, json={
            "material_id": papers[0]["id"], "salesperson_id": team[0]["id"]}) as r:
        share = await r.json()
        show(f"POST /admin/shares → {r.status}", {"page": share["page"][:48] + "…"})
    async with http.get(f"{base}/mp/materials/{papers[0]['id']}", headers=me,
                        params={"share": share["share"]}) as r:
        seen = await r.json()
        show(f"GET /mp/materials/{papers[0]['id']} → {r.status}",
             {"title": seen["title"], "shared_by": seen["shared_by"]})
    reads = await asyncio.gather(*(
        read_to_the_end(http, base, me, paper["id"], share["share"] if n == 0 else None)
        for n, paper in enumerate(papers)))
    show("POST /mp/reads (open, heartbeats, close) ×3", reads)

    step(6, "Each signal rescored the visitor from their log: the score, every point explained")
    visitor = await settled(http, base, admin, f"oa_openid:{VISITOR}", "phone")
    score = await waited(http, f"{base}/admin/prospects/{visitor['id']}/score", admin,
                         lambda s: s["quadrant"] == "opportunity")
    for row in score["ledger"]:
        show(f"{row['kind']:8} {row['points']:+4}", f"{row['label']} ({row['rule']})")
    show("score", f"fit {score['profile']} (≥ {score['thresholds']['fit']}), engagement "
                  f"{score['behavior']} (≥ {score['thresholds']['engagement']}) → "
                  f"{score['quadrant']}")

    step(7, "Qualified: an opportunity for the owner, pushed to her WeChat by the worker")
    listed = await waited(http, f"{base}/admin/opportunities?prospect_id={visitor['id']}", admin,
                          lambda items: bool(items) and items[0]["push"] is not None
                          and items[0]["push"]["status"] != "pending")
    detail = await waited(http, f"{base}/admin/opportunities/{listed[0]['id']}", admin,
                          lambda d: True)
    show(f"GET /admin/opportunities/{detail['id']}",
         {k: detail[k] for k in ("salesperson", "score", "status", "attribution",
                                 "speed_to_lead_ms")})
    show("touches (the attribution record)", [
        f"{t['kind']} via code {t['code_id']} ({t['campaign']})" for t in detail["touches"]])
    link = None
    for sent in sandbox.template_messages:
        values = {k: v["value"] for k, v in sent["data"].items()}
        show(f"template message to {sent['touser'][:12]}…", values)
        link = link or sent.get("url")
    for sent in sandbox.app_messages:
        content = sent["content"]
        show(f"WeCom message to {'|'.join(sent['touser'])}",
             content.get("content") or content.get("title"))
        link = link or content.get("url")
    pushed = [m for m in sandbox.template_messages if link and m.get("url") == link]
    if pushed:
        msgid = pushed[0]["msgid"]
        await sandbox.push_oa(f"{base}/wechat/oa", events.template_finished(
            SALES_OPENID, msgid, "success"), mode="safe")
        report = await waited(http, f"{base}/admin/opportunities/{detail['id']}", admin,
                              lambda d: d["push"]["status"] == "delivered")
        show("WeChat's delivery report (TEMPLATESENDJOBFINISH)", report["push"])

    step(8, "The salesperson taps the message: the opportunity page, and she accepts it")
    if link:
        async with http.get(link) as r:
            page = await r.text()
            title = page.split("<title>", 1)[-1].split("</title>", 1)[0] if "<title>" in page \
                else page[:60]
            show(f"GET {link.removeprefix(base)[:24]}… → {r.status}", title.strip())
        async with http.post(link + "/accept", allow_redirects=False) as r:
            show(f"POST …/accept → {r.status}", r.headers.get("Location", "")[:30] + "…")
        accepted = await waited(http, f"{base}/admin/opportunities/{detail['id']}", admin,
                                lambda d: True)
        show("status", f"{accepted['status']} at {accepted['accepted_at']}")

    step(9, "Another visitor adds a salesperson on WeCom through a 「联系我」 code")
    async with http.post(f"{base}/admin/codes", headers=admin, json={
            "kind": "salesperson", "channel": "wecom", "salesperson_id": team[0]["id"]}) as r:
        card = await r.json()
        show(f"POST /admin/codes → {r.status}", {k: card[k] for k in ("id", "scene",
                                                                    "config_id")})
    sandbox.add_external_contact(EXTERNAL, name="李明", corp_name="华东精密制造",
                                 position="采购经理", userid="wangfang")
    added = await sandbox.push_wecom(f"{base}/wechat/wecom", events.external_contact(
        "add_external_contact", "wangfang", EXTERNAL, state=card["scene"]))
    show("delivery", f"HTTP {added.statuses}")
    await asyncio.sleep(0.5)  # the welcome and the contact's details are fetched after the reply
    for sent in sandbox.welcome_messages:
        show("welcome sent on WeCom", sent.get("text", {}).get("content", sent))

    step(10, "Marketing counts what the codes brought")
    async with http.get(f"{base}/admin/stats", headers=admin, params={"by": "campaign"}) as r:
        show(f"GET /admin/stats?by=campaign → {r.status}", await r.json())
    async with http.get(f"{base}/admin/stats", headers=admin,
                        params={"by": "salesperson"}) as r:
        show(f"GET /admin/stats?by=salesperson → {r.status}", await r.json())

    step(11, "The visitor's timeline, as their salesperson sees it: one person, every identity")
    show("identities", ", ".join(f"{i['kind']}" for i in visitor["identities"]))
    async with http.get(f"{base}/admin/prospects/{visitor['id']}/timeline",
                        headers=admin) as r:
        for item in (await r.json())["items"]:
            at = datetime.fromisoformat(item["at"]).astimezone(CHINA)
            print(f"      {at:%m-%d %H:%M:%S}  {item['text']}")


async def read_to_the_end(http: aiohttp.ClientSession, base: str, me: dict[str, str],
                          material_id: int, share: str | None) -> dict[str, Any]:
    """A read as the mini-program reports it: open, a heartbeat every 4 seconds, close."""
    async with http.post(f"{base}/mp/reads", headers=me, json={
            "material_id": material_id, "action": "open", "share": share}) as r:
        read_id = (await r.json())["read_id"]
    for progress in (0.3, 0.6, 0.9):
        await asyncio.sleep(4)
        await http.post(f"{base}/mp/reads", headers=me, json={
            "action": "heartbeat", "read_id": read_id, "progress": progress})
    async with http.post(f"{base}/mp/reads", headers=me, json={
            "action": "close", "read_id": read_id, "progress": 1.0}) as r:
        return {"read_id": (await r.json())["read_id"], "status": r.status}


async def waited(http: aiohttp.ClientSession, url: str, admin: dict[str, str],
                 ready: Any, tries: int = 100) -> Any:
    """An admin answer once `ready` holds of it (the work after a reply takes a moment)."""
    body: Any = None
    for _ in range(tries):
        async with http.get(url, headers=admin) as r:
            body = await r.json()
        if r.status == 200 and ready(body):
            return body
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never got ready: {body}")
