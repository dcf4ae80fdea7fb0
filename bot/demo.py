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
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.logs import AccessLogger
from bot.sandbox import Sandbox, create_sandbox_app, events
from bot.settings import Secret, Settings
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
VISITOR = "oDemoVisitor000000000000Booth"
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


async def tour(http: aiohttp.ClientSession, sandbox: Sandbox, base: str,
               admin: dict[str, str], folder: Path) -> None:
    step(1, "Marketing registers the booth team and issues the booth's code")
    team = []
    for name, userid in (("王芳", "wangfang"), ("陈杰", "chenjie")):
        async with http.post(f"{base}/admin/salespeople", headers=admin,
                             json={"name": name, "team": "华东大区", "wecom_userid": userid}) as r:
            team.append(await r.json())
            show(f"POST /admin/salespeople → {r.status}", team[-1])
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

    step(3, "The visitor opens the mini-program from the booth and logs in")
    code = sandbox.issue_login_code(openid="oDemoVisitorMiniProgram000001")
    async with http.post(f"{base}/mp/login", json={"code": code, "scene": booth["scene"]}) as r:
        login = await r.json()
        show(f"POST /mp/login → {r.status}", {"prospect_id": login.get("prospect_id"),
                                                "token": "(a signed session token)"})

    step(4, "Another visitor adds a salesperson on WeCom through a 「联系我」 code")
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

    step(5, "Marketing looks the visitors up, and counts what the codes brought")
    for identity in (f"oa_openid:{VISITOR}", f"external_userid:{EXTERNAL}"):
        async with http.get(f"{base}/admin/prospects", headers=admin,
                            params={"identity": identity}) as r:
            for found in await r.json():
                show(f"GET /admin/prospects?identity={identity.split(':')[0]}:…",
                     {k: found[k] for k in ("id", "name", "company", "tags", "owner",
                                            "interactions")})
    async with http.get(f"{base}/admin/stats", headers=admin, params={"by": "campaign"}) as r:
        show(f"GET /admin/stats?by=campaign → {r.status}", await r.json())
