"""Scans of issued codes through real signed events, every kind on every channel: OA `subscribe`
with `qrscene_…` and `SCAN`, mini-program login with the code's scene, WeCom
`add_external_contact` with the contact way's `State`. Unknown and expired scenes are recorded,
answered and not attributed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmltodict

from bot import keys
from bot.sandbox import Sandbox, events
from bot.sandbox.records import new_openid
from domain.attribution import DEFAULT_CONTACT_WELCOME, DEFAULT_WELCOME
from handlers.oa import WELCOME_BACK
from models import Code, Identity, IdentityKind, Interaction, Prospect
from tests.bot.kit import eventually, service
from tests.bot.test_admin_codes import AUTH, issue, kinds, people

IDENTITY = {"oa": IdentityKind.OA_OPENID, "mp": IdentityKind.MP_OPENID,
            "wecom": IdentityKind.EXTERNAL_USERID}
CHANNELS = ["oa", "mp", "wecom"]


def new_external_userid() -> str:
    return "wm" + secrets.token_urlsafe(24)[:30]


async def settled(count: int, timeout: float = 5.0) -> list[Interaction]:
    """The interactions, once `count` of them are stored and every one is marked processed (the
    completion writer marks them in batches, after the reply)."""

    async def check() -> list[Interaction] | None:
        rows = await Interaction.all().order_by("id")
        if len(rows) >= count and all(r.processed_at is not None for r in rows):
            return rows
        return None

    rows: list[Interaction] = await eventually(check, timeout)
    return rows


def content(reply: str | None) -> str | None:
    """The text of a passive reply (already decrypted by the sandbox), or None for none."""
    return None if reply is None else xmltodict.parse(reply)["xml"]["Content"]


async def scan(client: Any, wechat: Sandbox, code: dict[str, Any], who: str | None = None,
               **options: Any) -> tuple[str, str | None]:
    """Scans `code` (as POST /admin/codes returned it) through its channel, as WeChat would
    tell the service; (the person's id on that channel, the OA passive reply's text)."""
    if code["channel"] == "oa":
        openid = who or new_openid()
        delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")),
                                        events.scan_code(wechat, code["ticket"], openid),
                                        **options)
        assert delivery.ok and all(a.error is None for a in delivery.attempts)
        # the reply comes first; the prospect and their attribution right after it
        await client.app[keys.DISPATCHER].drain(timeout=5)
        return openid, content(delivery.reply)
    if code["channel"] == "mp":
        openid = who or new_openid()
        response = await client.post("/mp/login", json={
            "code": wechat.issue_login_code(openid), "scene": code["scene"]})
        assert response.status == 200, await response.text()
        return openid, None
    external = who or new_external_userid()
    delivery = await wechat.push_wecom(
        str(client.make_url("/wechat/wecom")),
        events.contact_way_added(wechat, code["config_id"], external), **options)
    assert delivery.ok and delivery.reply is None
    return external, None


async def prospect_of(channel: str, actor: str) -> Prospect:
    identity = await Identity.get(kind=IDENTITY[channel], value=actor)
    return await Prospect.get(id=identity.prospect_id)


# --- every kind on every channel ------------------------------------------------------------

@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", ["booth", "material", "salesperson", "partner"])
async def test_a_scan_is_attributed_tagged_owned_and_welcomed(client, wechat, kind, channel):
    ids = await people()
    data = kinds(ids)[kind]
    code = await issue(client, **data, channel=channel)
    actor, reply = await scan(client, wechat, code)

    [row] = await settled(1)
    assert row.code_id == code["id"] and row.scene == code["scene"]
    prospect = await prospect_of(channel, actor)
    assert row.prospect_id == prospect.id
    # through the code: its campaign, salesperson, partner and material
    issued = await Code.get(id=row.code_id)
    assert issued.campaign == data.get("campaign")
    assert issued.salesperson_id == data.get("salesperson_id")
    assert issued.partner_id == data.get("partner_id")
    assert issued.material_id == data.get("material_id")
    # the code's tags (a partner's or a material's code also carries theirs), first touch,
    # owner, partner
    expected_tags = data["tags"] + {"partner": ["渠道:上海", "经销"],
                                    "material": ["白皮书"]}.get(kind, [])
    owner = {"booth": ids["wang"], "material": ids["wang"], "salesperson": ids["li"],
             "partner": ids["wang"]}[kind]  # booth: the team's first turn is wang's
    shown = await (await client.get(f"/admin/prospects/{prospect.id}", headers=AUTH)).json()
    assert shown["tags"] == expected_tags
    owner_name = {ids["wang"]: "王芳", ids["li"]: "李强"}[owner]
    assert shown["owner"] == {"salesperson_id": owner, "salesperson": owner_name,
                              "partner_id": ids["partner"] if kind == "partner" else None,
                              "partner": "上海渠道" if kind == "partner" else None}
    assert prospect.first_code_id == code["id"]
    # welcomed: a passive reply on the OA, the welcome message on WeCom, once
    if channel == "oa":
        assert row.kind == "event.subscribe"
        assert reply == data.get("welcome", DEFAULT_WELCOME)
    elif channel == "wecom":
        assert row.kind == "event.change_external_contact.add_external_contact"
        [welcome] = wechat.welcome_messages
        assert welcome["text"] == {"content": data.get("welcome", DEFAULT_CONTACT_WELCOME)}
        assert welcome["external_userid"] == actor
        assert welcome["welcome_code"] == row.payload["WelcomeCode"]
    else:
        assert row.kind == "mp.login" and wechat.welcome_messages == []


@pytest.mark.parametrize("welcome", [None, "感谢再次扫码，资料已发送。"])
async def test_oa_scan_by_a_follower(client, wechat, welcome):
    """A follower scanning an OA code is a SCAN (no prefix): attributed, tagged, owned, and
    answered with the code's text or a welcome back."""
    ids = await people()
    extra = {"welcome": welcome} if welcome else {}
    code = await issue(client, kind="salesperson", channel="oa", salesperson_id=ids["li"],
                       tags=["名片"], **extra)
    openid = new_openid()
    wechat.add_follower(openid)  # followed before the service knew them
    actor, reply = await scan(client, wechat, code, openid)
    [row] = await settled(1)
    assert (row.kind, row.scene, row.code_id) == ("event.scan", code["scene"], code["id"])
    assert row.payload["EventKey"] == code["scene"]  # the bare scene, no qrscene_ prefix
    assert reply == (welcome or WELCOME_BACK)
    prospect = await prospect_of("oa", actor)
    assert (prospect.owner_id, prospect.tags) == (ids["li"], ["名片"])


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_oa_scan_in_every_mode(aiohttp_client, app_settings, wechat, mode):
    client = await service(aiohttp_client, app_settings,
                           **({"oa_aes_key": None} if mode == "plain" else {}))
    ids = await people()
    code = await issue(client, kind="booth", channel="oa", campaign="工博会",
                       salesperson_id=ids["wang"], welcome="欢迎！")
    _, reply = await scan(client, wechat, code, mode=mode)
    assert reply == "欢迎！"
    [row] = await settled(1)
    assert row.code_id == code["id"]


async def test_a_wecom_add_without_welcome_code_is_attributed_and_not_welcomed(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["wang"])
    way = wechat.contact_ways[code["config_id"]]
    external = new_external_userid()
    event = events.external_contact("add_external_contact", way.users[0], external,
                                    state=way.state, welcome_code="")
    delivery = await wechat.push_wecom(str(client.make_url("/wechat/wecom")), event)
    assert delivery.ok
    [row] = await settled(1)
    assert row.code_id == code["id"]
    assert wechat.count("/cgi-bin/externalcontact/send_welcome_msg") == 0
    assert (await prospect_of("wecom", external)).owner_id == ids["wang"]


async def test_a_half_added_contact_is_a_scan_too(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="wecom", salesperson_id=ids["li"],
                       tags=["名片"])
    way = wechat.contact_ways[code["config_id"]]
    external = new_external_userid()
    event = events.external_contact("add_half_external_contact", way.users[0], external,
                                    state=way.state)
    assert (await wechat.push_wecom(str(client.make_url("/wechat/wecom")), event)).ok
    [row] = await settled(1)
    assert row.code_id == code["id"]
    assert (await prospect_of("wecom", external)).tags == ["名片"]
    assert len(wechat.welcome_messages) == 1


# --- unknown and expired scenes: stored, answered, not attributed ---------------------------

async def unattributed(row: Interaction, channel: str, actor: str) -> None:
    assert row.processed_at is not None and row.code_id is None
    prospect = await prospect_of(channel, actor)
    assert row.prospect_id == prospect.id
    assert (prospect.tags, prospect.owner_id, prospect.partner_id, prospect.first_code_id) == (
        [], None, None, None)


@pytest.mark.parametrize("channel", CHANNELS + ["oa-scan"])
async def test_an_unknown_scene_is_recorded_not_attributed(client, wechat, channel):
    ids = await people()
    await issue(client, kind="salesperson", channel="mp", salesperson_id=ids["wang"],
                tags=["名片"])  # a real code exists; the scene below is not its
    scene = "NoSuchScene123"
    if channel == "mp":
        actor = new_openid()
        response = await client.post("/mp/login", json={
            "code": wechat.issue_login_code(actor), "scene": scene})
        assert response.status == 200
    elif channel == "wecom":
        actor = new_external_userid()
        event = events.external_contact("add_external_contact", "wangfang", actor, state=scene)
        delivery = await wechat.push_wecom(str(client.make_url("/wechat/wecom")), event)
        assert delivery.statuses == [200]
        assert [m["text"]["content"] for m in wechat.welcome_messages] == [
            DEFAULT_CONTACT_WELCOME]
    else:
        actor = new_openid()
        if channel == "oa-scan":
            wechat.add_follower(actor)
            event = events.scan(actor, scene, "gQ-unknown-ticket")
        else:
            event = events.subscribe(actor, scene=scene, ticket="gQ-unknown-ticket")
        delivery = await wechat.push_oa(str(client.make_url("/wechat/oa")), event)
        assert delivery.statuses == [200]
        expected = WELCOME_BACK if channel == "oa-scan" else DEFAULT_WELCOME
        assert content(delivery.reply) == expected
    [row] = await settled(1)
    assert row.scene == scene
    await unattributed(row, channel.removesuffix("-scan"), actor)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_an_expired_code_is_recorded_not_attributed(client, wechat, channel):
    ids = await people()
    code = await issue(client, kind="partner", channel=channel, partner_id=ids["partner"],
                       salesperson_id=ids["wang"], tags=["渠道客户"], welcome="限时活动")
    await Code.filter(id=code["id"]).update(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    actor, reply = await scan(client, wechat, code)
    [row] = await settled(1)
    assert row.scene == code["scene"]
    await unattributed(row, channel, actor)
    if channel == "oa":
        assert reply == DEFAULT_WELCOME  # not the expired code's text
    if channel == "wecom":
        assert [m["text"]["content"] for m in wechat.welcome_messages] == [
            DEFAULT_CONTACT_WELCOME]


async def test_a_code_still_valid_is_attributed(client, wechat):
    ids = await people()
    code = await issue(client, kind="salesperson", channel="mp", salesperson_id=ids["wang"])
    await Code.filter(id=code["id"]).update(expires_at=datetime.now(UTC) + timedelta(minutes=5))
    await scan(client, wechat, code)
    [row] = await settled(1)
    assert row.code_id == code["id"]


async def test_a_scene_of_another_shape_is_harmless(client, wechat):
    """Numeric scenes (QR_SCENE codes made elsewhere), a scene over 32 characters, qrscene_0."""
    url = str(client.make_url("/wechat/oa"))
    people_ = [new_openid() for _ in range(3)]
    for openid, scene in zip(people_, ["123123", "x" * 64, "0"], strict=True):
        delivery = await wechat.push_oa(url, events.subscribe(openid, scene=scene))
        assert delivery.statuses == [200]
        assert content(delivery.reply) == DEFAULT_WELCOME
    rows = await settled(3)
    assert [r.code_id for r in rows] == [None] * 3 and all(r.prospect_id for r in rows)
    response = await client.post("/mp/login", json={
        "code": wechat.issue_login_code(), "scene": "%E4%B8%AD" * 10})
    assert response.status == 200
    await settled(4)
