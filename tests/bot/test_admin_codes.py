"""POST /admin/codes and GET /admin/codes/{id}/image.png end to end, against the sandbox: every kind
on every channel, every refusal (a clear 4xx, nothing created), printing once, batches."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from bot.sandbox import Sandbox
from models import Code, CodeArtwork, CodeChannel, Material, Partner, Salesperson
from qr import issuing, render
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ISSUING = ("/cgi-bin/qrcode/create", "/wxa/getwxacodeunlimit",
           "/cgi-bin/externalcontact/add_contact_way")


async def people() -> dict[str, int]:
    """Two salespeople of one booth team (both on WeCom), a partner with tags, a material."""
    wang = await Salesperson.create(name="王芳", team="华东", wecom_userid="wangfang")
    li = await Salesperson.create(name="李强", team="华东", wecom_userid="liqiang")
    partner = await Partner.create(name="上海渠道", tags=["渠道:上海", "经销"])
    material = await Material.create(title="智能制造白皮书", kind="whitepaper", tags=["白皮书"])
    return {"wang": wang.id, "li": li.id, "partner": partner.id, "material": material.id}


def kinds(ids: dict[str, int]) -> dict[str, dict[str, Any]]:
    """A request body for each kind (without the channel)."""
    return {
        "booth": {"kind": "booth", "campaign": "2026 工博会", "team": "华东", "tags": ["展会"],
                  "welcome": "欢迎光临我们的展台！"},
        "material": {"kind": "material", "material_id": ids["material"],
                     "salesperson_id": ids["wang"], "tags": ["资料:白皮书"]},
        "salesperson": {"kind": "salesperson", "salesperson_id": ids["li"], "tags": ["名片"],
                        "welcome": "您好，我是李强。"},
        "partner": {"kind": "partner", "partner_id": ids["partner"],
                    "salesperson_id": ids["wang"], "tags": ["渠道客户"]},
    }


async def issue(client: Any, **data: Any) -> dict[str, Any]:
    """A code issued through the admin API (201 expected)."""
    response = await client.post("/admin/codes", json=data, headers=AUTH)
    body = await response.json()
    assert response.status == 201, body
    return body


def error(body: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of the contract's error envelope."""
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return body["error"]["code"], body["error"]["message"]


def answered(wechat: Sandbox, path: str) -> list[Any]:
    """The calls of `path` WeChat granted (a stale cached token's refused first try left out)."""
    return [call for call in wechat.calls_to(path) if call.errcode == 0]


async def nothing_created(wechat: Sandbox | None = None) -> None:
    assert await Code.all().count() == 0
    assert await CodeArtwork.all().count() == 0
    if wechat is not None:
        assert sum(len(answered(wechat, path)) for path in ISSUING) == 0


# --- every kind on every channel ------------------------------------------------------------

@pytest.mark.parametrize("channel", ["oa", "mp", "wecom"])
@pytest.mark.parametrize("kind", ["booth", "material", "salesperson", "partner"])
async def test_every_kind_on_every_channel(client, wechat, kind, channel):
    ids = await people()
    data = {**kinds(ids)[kind], "channel": channel}
    body = await issue(client, **data)
    code = await Code.get(id=body["id"])
    assert (body["scene"], body["channel"], body["kind"]) == (code.scene, channel, kind)
    assert len(body["scene"]) <= 30 and body["scene"].isalnum()
    assert body["tags"] == data["tags"] and code.tags == data["tags"]
    for field in ("campaign", "salesperson_id", "partner_id", "material_id", "team"):
        assert body[field] == data.get(field), field
    assert code.welcome_text == data.get("welcome")
    assert body["image"] == f"/admin/codes/{code.id}/image.png"
    if channel == "oa":
        assert body["ticket"] and body["url"].startswith("http://weixin.qq.com/q/")
        assert body["ticket"] in wechat.qrcodes
        [call] = answered(wechat, "/cgi-bin/qrcode/create")
        assert call.json["action_name"] == "QR_STR_SCENE"
        assert call.json["action_info"] == {"scene": {"scene_str": code.scene}}
        assert call.json["expire_seconds"] == 30 * 86400  # the longest a temporary code lives
        expires = datetime.fromisoformat(body["expires_at"])
        assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    elif channel == "mp":
        assert body["page"] == "pages/index/index"
        assert wechat.wxacodes[-1]["scene"] == code.scene
        assert body["expires_at"] is None
    else:
        assert body["config_id"] in wechat.contact_ways and body["qr_code"]
        way = wechat.contact_ways[body["config_id"]]
        assert way.state == code.scene
        team = kind == "booth"
        assert way.users == (["wangfang", "liqiang"] if team else
                             ["liqiang" if kind == "salesperson" else "wangfang"])
        assert way.type == (2 if team else 1)
    assert body.keys() >= {"id", "scene", "channel"}
    assert not ({"ticket", "url"} & body.keys()) or channel == "oa"
    assert "page" not in body or channel == "mp"
    assert not ({"config_id", "qr_code"} & body.keys()) or channel == "wecom"


async def test_a_permanent_oa_code(client, wechat):
    ids = await people()
    body = await issue(client, kind="salesperson", channel="oa", salesperson_id=ids["wang"],
                       permanent=True)
    assert body["permanent"] is True and body["expires_at"] is None
    [call] = answered(wechat, "/cgi-bin/qrcode/create")
    assert call.json["action_name"] == "QR_LIMIT_STR_SCENE" and "expire_seconds" not in call.json


async def test_scenes_are_opaque_and_distinct(client):
    ids = await people()
    scenes = {(await issue(client, kind="salesperson", channel="mp",
                           salesperson_id=ids["wang"]))["scene"] for _ in range(5)}
    assert len(scenes) == 5
    assert not any(str(ids["wang"]) == s or "wang" in s.lower() for s in scenes)


async def test_a_batch_of_material_codes(client, wechat):
    ids = await people()
    body = await issue(client, kind="material", channel="mp", material_id=ids["material"],
                       count=7, tags=["宣传册"])
    assert body["count"] == 7 and body["batch"] and len(body["codes"]) == 7
    assert sorted(c["serial"] for c in body["codes"]) == list(range(1, 8))
    assert len({c["scene"] for c in body["codes"]}) == 7
    assert all(c["batch"] == body["batch"] and c["channel"] == "mp" for c in body["codes"])
    assert await Code.filter(batch=body["batch"], ready=True).count() == 7
    assert len(wechat.wxacodes) == 7


# --- bad input: a clear 4xx naming the problem, nothing created -----------------------------

BAD = [
    ({"kind": "poster", "channel": "oa"}, 400, "invalid_kind", "kind"),
    ({"channel": "oa"}, 400, "invalid_kind", "kind"),
    ({"kind": "booth", "channel": "fax", "campaign": "x", "team": "华东"}, 400,
     "invalid_channel", "channel"),
    ({"kind": "salesperson"}, 400, "invalid_channel", "channel"),
    ({"kind": "salesperson", "channel": "oa"}, 400, "missing_field", "salesperson_id"),
    ({"kind": "partner", "channel": "mp"}, 400, "missing_field", "partner_id"),
    ({"kind": "material", "channel": "wecom"}, 400, "missing_field", "material_id"),
    ({"kind": "booth", "channel": "oa"}, 400, "missing_field", "campaign"),
    ({"kind": "booth", "channel": "oa", "campaign": "x"}, 400, "missing_field", "team"),
    ({"kind": "salesperson", "channel": "oa", "salesperson_id": "1"}, 400, "invalid_field",
     "salesperson_id"),
    ({"kind": "salesperson", "channel": "mp", "salesperson_id": 1, "permanent": True}, 400,
     "invalid_field", "permanent"),
    ({"kind": "salesperson", "channel": "oa", "salesperson_id": 1, "count": 3}, 400,
     "invalid_field", "count"),
    ({"kind": "salesperson", "channel": "oa", "salesperson_id": 1, "tags": "vip"}, 400,
     "invalid_field", "tags"),
    ({"kind": "salesperson", "channel": "oa", "salesperson_id": 999}, 404,
     "unknown_salesperson", "999"),
    ({"kind": "partner", "channel": "oa", "partner_id": 999}, 404, "unknown_partner", "999"),
    ({"kind": "material", "channel": "mp", "material_id": 999}, 404, "unknown_material", "999"),
    ({"kind": "booth", "channel": "mp", "campaign": "x", "team": "无人团队"}, 404,
     "unknown_team", "无人团队"),
    ({"kind": "booth", "channel": "oa", "campaign": "x", "salesperson_id": 1,
      "backup_salesperson_id": 999}, 404, "unknown_salesperson", "999"),
]


async def test_bad_input_is_a_clear_4xx_and_nothing_is_created(client, wechat):
    await people()
    for data, status, code, named in BAD:
        response = await client.post("/admin/codes", json=data, headers=AUTH)
        assert response.status == status, data
        got, message = error(await response.json())
        assert got == code and named in message, (data, message)
    await nothing_created(wechat)


async def test_malformed_bodies_and_no_token(client, wechat):
    for body in (b"", b"{", b"[]", b'"booth"'):
        response = await client.post("/admin/codes", data=body, headers=AUTH)
        assert response.status == 400
        assert error(await response.json())[0] == "malformed_json"
    response = await client.post("/admin/codes", json={"kind": "booth", "channel": "oa"})
    assert response.status == 401
    await nothing_created(wechat)


async def test_wecom_needs_a_salesperson_on_wecom(client, wechat):
    person = await Salesperson.create(name="赵六")  # no wecom_userid
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "wecom", "salesperson_id": person.id})
    assert response.status == 400
    code, message = error(await response.json())
    assert code == "no_wecom_user" and "wecom_userid" in message
    await nothing_created(wechat)


WECHAT_REFUSALS = [
    # (channel, path, errcode, status, error code)
    ("mp", "/wxa/getwxacodeunlimit", 41030, 422, "wechat_invalid_argument"),  # invalid page
    ("mp", "/wxa/getwxacodeunlimit", 40129, 422, "wechat_invalid_argument"),  # invalid scene
    ("mp", "/wxa/getwxacodeunlimit", 40169, 422, "wechat_invalid_argument"),  # scene length
    ("mp", "/wxa/getwxacodeunlimit", 45009, 429, "wechat_quota_exceeded"),
    ("oa", "/cgi-bin/qrcode/create", 45009, 429, "wechat_quota_exceeded"),
    ("oa", "/cgi-bin/qrcode/create", 40053, 422, "wechat_invalid_argument"),
    ("wecom", "/cgi-bin/externalcontact/add_contact_way", 60011, 422,
     "wechat_invalid_argument"),
    ("wecom", "/cgi-bin/externalcontact/add_contact_way", 40058, 422,
     "wechat_invalid_argument"),
]


async def test_wechat_refusing_is_a_4xx_naming_it(client, wechat):
    ids = await people()
    for channel, path, errcode, status, code in WECHAT_REFUSALS:
        wechat.fail(path, errcode)
        response = await client.post("/admin/codes", headers=AUTH, json={
            "kind": "salesperson", "channel": channel, "salesperson_id": ids["wang"]})
        assert response.status == status, (path, errcode)
        got, message = error(await response.json())
        assert got == code and str(errcode) in message and path in message, message
    await nothing_created()


async def test_an_unpublished_page_is_refused(client, wechat):
    ids = await people()
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "material", "channel": "mp", "material_id": ids["material"],
        "page": "pages/not/published"})
    assert response.status == 422
    _, message = error(await response.json())
    assert "41030" in message
    await nothing_created()


async def test_a_refusal_midway_through_a_batch_leaves_nothing(client, wechat, monkeypatch):
    monkeypatch.setattr(issuing, "CHUNK", 4)
    ids = await people()
    calls = 0
    real = wechat.take_failure

    def fail_the_ninth(path: str) -> None:
        nonlocal calls
        if path == "/wxa/getwxacodeunlimit":
            calls += 1
            if calls == 9:
                wechat.fail(path, 45009)
        real(path)

    wechat.take_failure = fail_the_ninth  # type: ignore[method-assign]
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "material", "channel": "mp", "material_id": ids["material"], "count": 12})
    assert response.status == 429
    await nothing_created()


async def test_permanent_codes_exhausted_is_409(client, wechat, monkeypatch):
    monkeypatch.setattr(issuing, "PERMANENT_OA_LIMIT", 2)
    ids = await people()
    data = {"kind": "salesperson", "channel": "oa", "salesperson_id": ids["wang"],
            "permanent": True}
    await issue(client, **data)
    await issue(client, **data)
    response = await client.post("/admin/codes", json=data, headers=AUTH)
    assert response.status == 409
    code, message = error(await response.json())
    assert code == "permanent_codes_exhausted" and "temporary" in message
    assert len(answered(wechat, "/cgi-bin/qrcode/create")) == 2  # WeChat was not asked
    assert await Code.filter(channel=CodeChannel.OA, permanent=True).count() == 2
    # temporary codes are still fine
    await issue(client, **{**data, "permanent": False})


async def test_permanent_codes_exhausted_at_wechat_is_409_too(client, wechat):
    """Codes issued outside this service count at WeChat (45029): the same clear refusal."""
    ids = await people()
    wechat.permanent_qr_limit = 0
    response = await client.post("/admin/codes", headers=AUTH, json={
        "kind": "salesperson", "channel": "oa", "salesperson_id": ids["wang"],
        "permanent": True})
    assert response.status == 409
    assert error(await response.json())[0] == "permanent_codes_exhausted"
    await nothing_created()


# --- the printable image --------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["oa", "mp", "wecom"])
async def test_the_png_is_rendered_once(client, monkeypatch, channel):
    ids = await people()
    body = await issue(client, kind="booth", channel=channel, campaign="2026 工博会",
                       salesperson_id=ids["wang"])
    renders: list[list[str]] = []
    real = render.code_png

    def counting(qr: Any, lines: list[str], **kw: Any) -> bytes:
        renders.append(lines)
        return real(qr, lines, **kw)

    monkeypatch.setattr(render, "code_png", counting)
    first = await client.get(body["image"], headers=AUTH)
    assert first.status == 200 and first.content_type == "image/png"
    png = await first.read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and min(image.size) >= 300
    assert renders == [["2026 工博会", "王芳 · 华东"]]
    second = await client.get(body["image"], headers=AUTH)
    assert second.status == 200 and await second.read() == png
    assert len(renders) == 1  # kept, not rendered again
    artwork = await CodeArtwork.get(code_id=body["id"])
    assert bytes(artwork.png or b"") == png


async def test_a_batch_code_png_carries_its_serial(client, monkeypatch):
    ids = await people()
    body = await issue(client, kind="material", channel="oa", material_id=ids["material"],
                       count=2)
    seen: list[list[str]] = []
    real = render.code_png
    monkeypatch.setattr(render, "code_png",
                        lambda qr, lines, **kw: seen.append(lines) or real(qr, lines, **kw))
    second = next(c for c in body["codes"] if c["serial"] == 2)
    response = await client.get(second["image"], headers=AUTH)
    assert response.status == 200
    assert seen == [["智能制造白皮书", "No. 0002"]]


async def test_an_unknown_code_has_no_image(client):
    for path, status in (
        ("/admin/codes/999/image.png", 404),
        ("/admin/codes/0/image.png", 400),
        ("/admin/codes/abc/image.png", 400),
        ("/admin/codes/99999999999/image.png", 404),  # beyond the id column: no code, no 500
        ("/admin/codes/%C2%B2/image.png", 400),  # "²" is a digit to str.isdigit, not to int()
    ):
        response = await client.get(path, headers=AUTH)
        assert response.status == status, path
        error(await response.json())
    assert (await client.get("/admin/codes/1/image.png")).status == 401
