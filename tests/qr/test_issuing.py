"""Issuing codes through the sandbox: every kind on every channel, refusals, all or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.errors import BadRequest, Conflict, InvalidArgument, NotFound, QuotaExceeded
from bot.sandbox import Sandbox
from bot.settings import Settings
from bot.store import Store
from bot.wechat import WeChat
from models import Code, CodeArtwork, CodeChannel, Material, Partner, Salesperson
from qr import issuing
from qr.issuing import SCENE_ALPHABET, CodeIssuer, parse_request


@pytest.fixture
async def issuer(db: str, settings: Settings, store: Store,
                 wechat: Sandbox) -> AsyncIterator[CodeIssuer]:
    async with aiohttp.ClientSession() as session:
        yield CodeIssuer(WeChat(wechat.settings_for(settings), store, session))


@pytest.fixture
async def people(db: str) -> dict[str, int]:
    wang = await Salesperson.create(name="王芳", team="华东", wecom_userid="wangfang")
    li = await Salesperson.create(name="李强", team="华东", wecom_userid="liqiang")
    partner = await Partner.create(name="上海渠道", tags=["渠道:上海"])
    material = await Material.create(title="智能制造白皮书", kind="whitepaper")
    return {"wang": wang.id, "li": li.id, "partner": partner.id, "material": material.id}


KINDS = {
    "booth": {"kind": "booth", "campaign": "2026 工博会", "team": "华东"},
    "material": {"kind": "material", "material_id": "material", "salesperson_id": "wang"},
    "salesperson": {"kind": "salesperson", "salesperson_id": "wang"},
    "partner": {"kind": "partner", "partner_id": "partner", "salesperson_id": "li"},
}


@pytest.mark.parametrize("channel", ["oa", "mp", "wecom"])
@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_kind_on_every_channel(issuer: CodeIssuer, people: dict[str, int],
                                           wechat: Sandbox, kind: str, channel: str) -> None:
    data = {k: people.get(v, v) if isinstance(v, str) and k.endswith("_id") else v
            for k, v in KINDS[kind].items()}
    [code] = await issuer.issue(parse_request({**data, "channel": channel}))
    stored = await Code.get(id=code.id)
    assert stored.ready and len(stored.scene) == issuing.SCENE_LENGTH
    assert set(stored.scene) <= set(SCENE_ALPHABET)
    if channel == "oa":
        assert stored.ticket and stored.url and stored.expires_at is not None
        assert wechat.count("/cgi-bin/qrcode/create") == 1
    elif channel == "mp":
        artwork = await CodeArtwork.get(code_id=code.id)
        assert bytes(artwork.source or b"")[:2] == b"\xff\xd8"  # WeChat's JPEG
    else:
        assert stored.config_id and stored.qr_code
        body = wechat.calls_to("/cgi-bin/externalcontact/add_contact_way")[0].json
        assert body["state"] == stored.scene
        team = ["wangfang", "liqiang"] if kind == "booth" else None
        assert body["user"] == (team or [{"partner": "liqiang"}.get(kind, "wangfang")])


async def test_material_batch_has_distinct_serials(issuer: CodeIssuer, people: dict[str, int],
                                                   wechat: Sandbox) -> None:
    seen: list[int] = []
    codes = await issuer.issue(parse_request(
        {"kind": "material", "channel": "mp", "material_id": people["material"], "count": 230}),
        progress=seen.append)
    assert len({c.scene for c in codes}) == 230
    assert sorted(c.serial for c in codes) == list(range(1, 231))
    assert sum(seen) == 230 and await Code.filter(batch=codes[0].batch, ready=True).count() == 230


async def test_wechat_refusal_leaves_nothing(issuer: CodeIssuer, people: dict[str, int],
                                             wechat: Sandbox) -> None:
    wechat.fail("/wxa/getwxacodeunlimit", 45009, times=1)
    request = parse_request({"kind": "material", "channel": "mp",
                             "material_id": people["material"], "count": 450})
    with pytest.raises(QuotaExceeded):
        await issuer.issue(request)
    assert await Code.all().count() == 0 and await CodeArtwork.all().count() == 0


async def test_invalid_page_is_a_clear_refusal(issuer: CodeIssuer, people: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument):
        await issuer.issue(parse_request({"kind": "material", "channel": "mp", "page": "pages/nope",
                                          "material_id": people["material"]}))
    assert await Code.all().count() == 0


async def test_unknown_references_are_refused(issuer: CodeIssuer, people: dict[str, int]) -> None:
    for data in ({"kind": "salesperson", "channel": "oa", "salesperson_id": 999},
                 {"kind": "partner", "channel": "oa", "partner_id": 999},
                 {"kind": "material", "channel": "mp", "material_id": 999},
                 {"kind": "booth", "channel": "oa", "campaign": "x", "team": "nobody"}):
        with pytest.raises(NotFound):
            await issuer.issue(parse_request(data))
    assert await Code.all().count() == 0


@pytest.mark.parametrize("data", [
    {"kind": "poster", "channel": "oa"},
    {"kind": "booth", "channel": "fax", "campaign": "x"},
    {"kind": "booth", "channel": "oa"},
    {"kind": "booth", "channel": "oa", "campaign": "x"},
    {"kind": "salesperson", "channel": "oa"},
    {"kind": "salesperson", "channel": "mp", "salesperson_id": 1, "permanent": True},
    {"kind": "salesperson", "channel": "oa", "salesperson_id": 1, "count": 2},
    {"kind": "material", "channel": "mp", "material_id": 1, "count": 10_001},
    {"kind": "salesperson", "channel": "oa", "salesperson_id": 1, "expire_days": 31},
    {"kind": "salesperson", "channel": "oa", "salesperson_id": "1"},
    {"kind": "salesperson", "channel": "oa", "salesperson_id": 1, "tags": "vip"},
])
def test_bad_requests_name_the_problem(data: dict[str, object]) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_request(data)
    assert raised.value.status == 400 and raised.value.message


async def test_permanent_oa_codes_are_counted(issuer: CodeIssuer, people: dict[str, int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuing, "PERMANENT_OA_LIMIT", 2)
    request = parse_request({"kind": "salesperson", "channel": "oa", "permanent": True,
                             "salesperson_id": people["wang"]})
    await issuer.issue(request)
    await issuer.issue(request)
    with pytest.raises(Conflict) as raised:
        await issuer.issue(request)
    assert raised.value.code == "permanent_codes_exhausted"
    assert await Code.filter(channel=CodeChannel.OA, permanent=True).count() == 2


async def test_wecom_needs_a_wecom_user(issuer: CodeIssuer, db: str) -> None:
    person = await Salesperson.create(name="赵六")
    with pytest.raises(BadRequest):
        await issuer.issue(parse_request({"kind": "salesperson", "channel": "wecom",
                                          "salesperson_id": person.id}))
