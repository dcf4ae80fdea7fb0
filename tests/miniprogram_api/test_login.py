"""POST /mp/login and the session tokens that guard the rest of /mp."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest

from bot import keys
from miniprogram_api.sessions import TTL, SessionSigner
from models import Identity, IdentityKind, Interaction, Prospect
from tests.bot.kit import eventually

MP_OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
UNIONID = "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
PROTECTED = "/mp/materials/999999"


async def login(client, code: str, **extra: object):
    return await client.post("/mp/login", json={"code": code, **extra})


async def test_login_creates_the_prospect_and_a_token(client, wechat):
    response = await login(client, wechat.issue_login_code(MP_OPENID, UNIONID), scene="booth1")
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"token", "prospect_id"}
    prospect = await Prospect.get(id=body["prospect_id"])
    identities = {(i.kind, i.value) for i in await Identity.filter(prospect_id=prospect.id)}
    assert identities == {(IdentityKind.MP_OPENID, MP_OPENID), (IdentityKind.UNIONID, UNIONID)}
    row = await Interaction.get(source="mp")
    assert (row.kind, row.actor, row.scene) == ("mp.login", MP_OPENID, "booth1")

    async def attributed():
        return await Interaction.filter(id=row.id, prospect_id=prospect.id,
                                        processed_at__isnull=False).exists()

    await eventually(attributed)
    session = client.app[keys.STORE]
    assert await session.get(f"scrm:mp:session_key:{MP_OPENID}")  # kept server-side


async def test_the_same_openid_logs_in_as_the_same_prospect(client, wechat):
    first = await (await login(client, wechat.issue_login_code(MP_OPENID))).json()
    second = await (await login(client, wechat.issue_login_code(MP_OPENID))).json()
    assert first["prospect_id"] == second["prospect_id"]
    assert await Prospect.all().count() == 1
    assert await Interaction.filter(source="mp").count() == 2  # each login is a signal


async def test_a_known_unionid_joins_the_oa_follower(client, wechat):
    prospects = client.app[keys.PROSPECTS]
    follower = await prospects.resolve(IdentityKind.OA_OPENID, "oia2TjjewbmiOUlr6X-1crbLOvLw")
    await prospects.link(follower, IdentityKind.UNIONID, UNIONID)
    body = await (await login(client, wechat.issue_login_code(MP_OPENID, UNIONID))).json()
    assert body["prospect_id"] == follower
    assert await Identity.filter(prospect_id=follower, kind=IdentityKind.MP_OPENID).exists()


@pytest.mark.parametrize("reuse", [True, False])
async def test_a_used_or_unknown_code_is_a_4xx(client, wechat, reuse):
    code = wechat.issue_login_code(MP_OPENID)
    if reuse:
        assert (await login(client, code)).status == 200
    else:
        code = "0" * 32
    response = await login(client, code)
    assert response.status == 422
    body = await response.json()
    assert body["error"]["code"] == "wechat_invalid_argument"
    assert ("40163" if reuse else "40029") in body["error"]["message"]
    assert await Prospect.all().count() == (1 if reuse else 0)


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": "  "}, {"code": 5},
                                  {"code": "x" * 129}, {"code": "c", "scene": 5},
                                  {"code": "c", "scene": "s" * 129}])
async def test_bad_login_bodies_are_400(client, wechat, body):
    response = await client.post("/mp/login", json=body)
    assert response.status == 400
    assert wechat.count("/sns/jscode2session") == 0


async def test_malformed_json_is_400(client):
    response = await client.post("/mp/login", data=b"{code")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"


async def test_session_key_never_leaves_the_server(client, wechat, caplog):
    caplog.set_level(logging.DEBUG)
    response = await login(client, wechat.issue_login_code(MP_OPENID, UNIONID))
    text = await response.text()
    session_key = await client.app[keys.STORE].get(f"scrm:mp:session_key:{MP_OPENID}")
    assert session_key and session_key not in text
    token = (await response.json())["token"]
    assert session_key not in base64.urlsafe_b64decode(
        token.split(".")[0] + "==").decode()
    assert not any(session_key in record.getMessage() for record in caplog.records)
    assert not any(session_key in json.dumps(row) for row in
                   await Interaction.all().values_list("payload", flat=True))


# --- session tokens on a protected route ---------------------------------------------------------

async def test_protected_routes_need_a_valid_token(client, wechat):
    token = (await (await login(client, wechat.issue_login_code(MP_OPENID))).json())["token"]
    body, _, signature = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered_body = base64.urlsafe_b64encode(
        json.dumps({**data, "p": data["p"] + 1}).encode()).rstrip(b"=").decode()
    other_key = SessionSigner("another-secret-key").issue(data["p"], MP_OPENID)
    signer = SessionSigner(str(client.app[keys.SETTINGS].secret_key))
    expired = signer.issue(data["p"], MP_OPENID, now=time.time() - TTL - 60)
    refused = {
        "none": {},
        "not bearer": {"Authorization": f"Token {token}"},
        "forged": {"Authorization": "Bearer eyJwIjoxfQ.AAAA"},
        "garbage": {"Authorization": "Bearer ..."},
        "tampered body": {"Authorization": f"Bearer {tampered_body}.{signature}"},
        "tampered signature": {"Authorization": f"Bearer {body}.{signature[:-2]}xx"},
        "another key": {"Authorization": f"Bearer {other_key}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "admin token": {"Authorization": "Bearer test-admin-token"},
    }
    for name, headers in refused.items():
        response = await client.get(PROTECTED, headers=headers)
        assert response.status == 401, name
        code = (await response.json())["error"]["code"]
        assert code == ("expired_token" if name == "expired" else
                        "unauthorized" if name in ("none", "not bearer") else "invalid_token"), name
    response = await client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status != 401


def test_session_signer_round_trip_and_refusals() -> None:
    signer = SessionSigner("k1")
    session = signer.verify(signer.issue(7, "o1", now=1000.0), now=1000.0 + TTL - 1)
    assert (session.prospect_id, session.openid) == (7, "o1")
    from bot.errors import Unauthorized

    for token in ("", ".", "a.", ".b", "a.b", "a.b.c", "é.ü", signer.issue(7, "o1") + "x"):
        with pytest.raises(Unauthorized):
            signer.verify(token)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(signer.issue(7, "o1", now=1000.0), now=1001.0 + TTL)
