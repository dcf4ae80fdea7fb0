"""The person behind the mini-program: the phone (button code and legacy encryptedData), the
profile and its consent, erasure when the consent is withdrawn, one person for one phone, and
the session tokens that guard every /mp route."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from bot import keys
from bot.sandbox import Sandbox
from bot.sandbox.records import new_openid
from domain.merging import family
from miniprogram_api.sessions import TTL, SessionSigner
from models import Identity, IdentityKind, Interaction, Prospect, ProspectMerge
from tests.bot.kit import eventually, service
from tests.bot.test_admin_codes import AUTH, error

PHONE = "13800138000"
MASKED = "138****8000"
PHONE_PATH = "/wxa/business/getuserphonenumber"
OTHER_APPID = "wx00000000000000ff"
SERVICE_LOGGERS = ("bot", "domain", "handlers", "miniprogram_api", "models", "qr")
SHOWN = {"id", "name", "company", "title", "department", "industry", "company_size", "email",
         "phone", "consent_version", "consent_at"}
PERSONAL = ("name", "company", "title", "department", "industry", "company_size", "email")
FULL_PROFILE = {"consent_version": "2026-01", "name": "张伟", "company": "华东精密",
                "title": "市场总监", "department": "市场部", "industry": "制造业",
                "company_size": "500-999", "email": "zw@example.com"}


class Person:
    """A mini-program user logged in through the sandbox."""

    def __init__(self, openid: str, token: str, prospect_id: int) -> None:
        self.openid = openid
        self.token = token
        self.prospect_id = prospect_id
        self.headers = {"Authorization": f"Bearer {token}"}


async def log_in(client: Any, wechat: Sandbox, openid: str | None = None,
                 unionid: str | None = None) -> Person:
    openid = openid or new_openid()
    response = await client.post("/mp/login", json={
        "code": wechat.issue_login_code(openid, unionid)})
    body = await response.json()
    assert response.status == 200, body
    return Person(openid, body["token"], int(body["prospect_id"]))


async def consent(client: Any, person: Person, **profile: Any) -> dict[str, Any]:
    response = await client.post("/mp/profile", headers=person.headers,
                                 json={"consent_version": "2026-01", **profile})
    body = await response.json()
    assert response.status == 200, body
    return body


async def bind(client: Any, wechat: Sandbox, person: Person) -> None:
    response = await client.post("/mp/phone", headers=person.headers,
                                 json={"code": wechat.issue_phone_code(PHONE)})
    assert response.status == 200, await response.text()
    assert await response.json() == {"phone": MASKED}


async def legacy(wechat: Sandbox, openid: str, phone: str = PHONE,
                 appid: str | None = None) -> dict[str, str]:
    """What the legacy getPhoneNumber gave the mini-program, from the sandbox's control route."""
    body: dict[str, Any] = {"openid": openid, "phone": phone}
    if appid is not None:
        body["appid"] = appid
    async with aiohttp.ClientSession() as http, http.post(
            f"{wechat.url}/sandbox/encrypted_phone", json=body) as response:
        assert response.status == 200, await response.text()
        found: dict[str, str] = await response.json()
    assert set(found) == {"encrypted_data", "iv"}
    return found


async def all_processed() -> bool:
    """Every stored interaction processed and attributed (the marks are written in batches)."""
    return not await Interaction.filter(processed_at=None).exists()


async def phones() -> list[Identity]:
    return await Identity.filter(kind=IdentityKind.PHONE)


def payloads_text(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False)


# --- the phone ----------------------------------------------------------------------------------

async def test_a_phone_from_the_button_code(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me)
    response = await client.post("/mp/phone", headers=me.headers,
                                 json={"code": wechat.issue_phone_code(PHONE)})
    assert response.status == 200
    assert await response.json() == {"phone": MASKED}
    [identity] = await phones()
    assert identity.prospect_id == me.prospect_id  # type: ignore[attr-defined]
    [row] = await Interaction.filter(kind="mp.phone")
    assert row.payload["phone"] == MASKED and row.payload["via"] == "button"
    shown = await (await client.get("/mp/profile", headers=me.headers)).json()
    assert shown["phone"] == MASKED
    [call] = wechat.calls_to(PHONE_PATH)
    assert call.errcode == 0


async def test_a_phone_from_the_legacy_encrypted_data(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me)
    found = await legacy(wechat, me.openid)
    response = await client.post("/mp/phone", headers=me.headers, json=found)
    assert response.status == 200
    assert await response.json() == {"phone": MASKED}
    [identity] = await phones()
    assert identity.prospect_id == me.prospect_id  # type: ignore[attr-defined]
    [row] = await Interaction.filter(kind="mp.phone")
    assert row.payload["via"] == "legacy"
    assert wechat.count(PHONE_PATH) == 0  # decrypted here, with the session_key of the login


def _flip_first_byte(iv: str) -> str:
    raw = bytearray(base64.b64decode(iv))
    raw[0] ^= 0x01  # turns the plaintext's opening "{" into "z"
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("case", ["foreign appid", "wrong iv", "short iv", "iv not base64",
                                  "data not base64", "data garbage", "data truncated",
                                  "another session's data"])
async def test_bad_legacy_encrypted_data_is_a_400(client, wechat, case):
    me = await log_in(client, wechat)
    await consent(client, me)
    if case == "foreign appid":
        body = await legacy(wechat, me.openid, appid=OTHER_APPID)
    elif case == "another session's data":
        other = await log_in(client, wechat)
        body = await legacy(wechat, other.openid)
    else:
        body = await legacy(wechat, me.openid)
        if case == "wrong iv":
            body["iv"] = _flip_first_byte(body["iv"])
        elif case == "short iv":
            body["iv"] = base64.b64encode(b"12345678").decode()
        elif case == "iv not base64":
            body["iv"] = "!!!*not base64*!!!"
        elif case == "data not base64":
            body["encrypted_data"] = "%%%% not base64 at all %%%%"
        elif case == "data garbage":
            body["encrypted_data"] = base64.b64encode(b"x" * 64).decode()
        else:
            body["encrypted_data"] = body["encrypted_data"][:24]
    response = await client.post("/mp/phone", headers=me.headers, json=body)
    assert response.status == 400, case
    assert error(await response.json())[0] == "invalid_encrypted_data"
    assert await phones() == []
    assert not await Interaction.filter(kind="mp.phone").exists()


async def test_legacy_data_after_the_session_key_expired_is_refused(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me)
    body = await legacy(wechat, me.openid)
    await client.app[keys.STORE].delete(f"scrm:mp:session_key:{me.openid}")
    response = await client.post("/mp/phone", headers=me.headers, json=body)
    assert response.status == 401
    assert error(await response.json())[0] == "session_expired"
    assert await phones() == []
    assert not await Interaction.filter(kind="mp.phone").exists()
    # a new login brings a new session_key: the legacy flow works again
    again = await log_in(client, wechat, me.openid)
    response = await client.post("/mp/phone", headers=again.headers,
                                 json=await legacy(wechat, me.openid))
    assert response.status == 200 and await response.json() == {"phone": MASKED}


@pytest.mark.parametrize("reuse", [True, False])
async def test_a_phone_code_wechat_refuses_is_a_4xx_naming_it(client, wechat, reuse):
    me = await log_in(client, wechat)
    await consent(client, me)
    code = wechat.issue_phone_code(PHONE)
    if reuse:
        first = await client.post("/mp/phone", headers=me.headers, json={"code": code})
        assert first.status == 200
    else:
        code = "0" * 32
    response = await client.post("/mp/phone", headers=me.headers, json={"code": code})
    assert response.status == 422
    name, message = error(await response.json())
    assert name == "wechat_invalid_argument"
    assert "40029" in message  # the sandbox: a used or unknown phone code is 40029
    assert await Interaction.filter(kind="mp.phone").count() == (1 if reuse else 0)
    assert len(await phones()) == (1 if reuse else 0)


@pytest.mark.parametrize(("body", "code"), [
    ({}, "missing_field"), ({"code": None}, "missing_field"), ({"code": ""}, "invalid_field"),
    ({"code": 5}, "invalid_field"), ({"code": ["c"]}, "invalid_field"),
    ({"code": "c" * 129}, "invalid_field"), ({"encrypted_data": "abc"}, "missing_field"),
    ({"iv": "abc"}, "missing_field"), ({"encrypted_data": 5, "iv": "abc"}, "invalid_field"),
    ({"encrypted_data": "abc", "iv": ["x"]}, "invalid_field"),
    ({"encrypted_data": "a" * 4097, "iv": "abc"}, "invalid_field"),
    ({"code": "c", "phone": PHONE}, "unknown_field")])
async def test_bad_phone_bodies_are_400(client, wechat, body, code):
    me = await log_in(client, wechat)
    await consent(client, me)
    response = await client.post("/mp/phone", headers=me.headers, json=body)
    assert response.status == 400
    assert error(await response.json())[0] == code
    assert wechat.count(PHONE_PATH) == 0
    assert await phones() == []


async def test_malformed_phone_json_is_400(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me)
    for raw in (b'{"code": ', b"[1, 2]", b'"code"', b"\xff\xfe"):
        response = await client.post("/mp/phone", headers=me.headers, data=raw)
        assert response.status == 400
        assert error(await response.json())[0] == "malformed_json"
    assert wechat.count(PHONE_PATH) == 0


async def test_the_phone_needs_the_consent_first(client, wechat):
    me = await log_in(client, wechat)
    code = wechat.issue_phone_code(PHONE)
    response = await client.post("/mp/phone", headers=me.headers, json={"code": code})
    assert response.status == 409
    assert error(await response.json())[0] == "consent_required"
    legacy_body = await legacy(wechat, me.openid)
    response = await client.post("/mp/phone", headers=me.headers, json=legacy_body)
    assert response.status == 409
    assert wechat.count(PHONE_PATH) == 0  # WeChat was not even asked
    assert await phones() == []
    assert not await Interaction.filter(kind="mp.phone").exists()
    assert (await Prospect.get(id=me.prospect_id)).consent_version is None
    # the code was not spent: with the consent it works
    await consent(client, me)
    response = await client.post("/mp/phone", headers=me.headers, json={"code": code})
    assert response.status == 200 and await response.json() == {"phone": MASKED}


async def test_the_phone_is_kept_as_a_keyed_digest_and_sealed_never_in_clear(client, wechat,
                                                                           caplog):
    caplog.set_level(logging.DEBUG)
    me = await log_in(client, wechat)
    await consent(client, me, name="张伟")
    await bind(client, wechat, me)
    second = await log_in(client, wechat)
    await consent(client, second)
    response = await client.post("/mp/phone", headers=second.headers,
                                 json=await legacy(wechat, second.openid))
    assert response.status == 200
    await eventually(all_processed)

    [identity] = await phones()  # one number, one identity (the two records merged)
    sealer = client.app[keys.SEALER]
    assert identity.value == sealer.digest(PHONE)
    assert identity.value != hashlib.sha256(PHONE.encode()).hexdigest()  # keyed, not a hash
    assert PHONE not in identity.value
    assert identity.sealed and PHONE not in identity.sealed
    assert sealer.unseal(identity.sealed) == PHONE
    for value, sealed in await Identity.all().values_list("value", "sealed"):
        assert PHONE not in value and PHONE not in (sealed or "")
    payloads = await Interaction.all().values_list("payload", flat=True)
    assert PHONE not in payloads_text(payloads)
    phone_rows = await Interaction.filter(kind="mp.phone").values_list("payload", flat=True)
    assert len(phone_rows) == 2
    for payload in phone_rows:
        assert payload["phone"] == MASKED and sealer.unseal(payload["sealed"]) == PHONE
    shown = await client.get(f"/admin/prospects/{me.prospect_id}", headers=AUTH)
    assert PHONE not in await shown.text()
    assert {"kind": "phone", "value": MASKED} in (await shown.json())["identities"]
    lines = [record.getMessage() for record in caplog.records
             if record.name.split(".")[0] in SERVICE_LOGGERS]
    assert lines  # the service did log (the merge, the WeChat calls)
    assert not [line for line in lines if PHONE in line]


# --- the profile --------------------------------------------------------------------------------

LIMITS = {"name": 64, "company": 128, "title": 64, "department": 64, "industry": 64,
          "company_size": 32, "email": 254, "consent_version": 32}


def _too_long(field: str) -> str:
    limit = LIMITS[field]
    if field == "email":
        return "a" * (limit - len("@example.com") + 1) + "@example.com"
    return "字" * (limit + 1)


BAD_PROFILES: list[tuple[str, dict[str, Any], str]] = []
for _field in LIMITS:
    for _label, _value, _code in (("number", 5, "invalid_field"),
                                  ("boolean", True, "invalid_field"),
                                  ("list", ["x"], "invalid_field"),
                                  ("object", {"x": 1}, "invalid_field"),
                                  ("empty", "", "invalid_field"),
                                  ("blank", "   ", "invalid_field"),
                                  ("control", "a\nb", "invalid_field"),
                                  ("too long", _too_long(_field), "invalid_field")):
        BAD_PROFILES.append((f"{_field} {_label}",
                             {"consent_version": "2026-01", _field: _value}, _code))
BAD_PROFILES += [
    ("no consent_version", {"name": "张伟"}, "missing_field"),
    ("null consent_version", {"name": "张伟", "consent_version": None}, "missing_field"),
    ("empty body", {}, "missing_field"),
    ("unknown field", {"consent_version": "2026-01", "phone": PHONE}, "unknown_field"),
    ("unknown field too", {"consent_version": "2026-01", "nickname": "x"}, "unknown_field"),
]
for _email in ("not-an-email", "zw@", "@example.com", "zw@example", "zw @example.com",
               "zw@exa mple.com", "zw@@example.com"):
    BAD_PROFILES.append((f"email {_email!r}", {"consent_version": "2026-01", "email": _email},
                         "invalid_field"))


@pytest.mark.parametrize(("body", "code"), [(b, c) for _, b, c in BAD_PROFILES],
                         ids=[name for name, _, _ in BAD_PROFILES])
async def test_bad_profiles_are_400_and_store_nothing(client, wechat, body, code):
    me = await log_in(client, wechat)
    response = await client.post("/mp/profile", headers=me.headers, json=body)
    assert response.status == 400
    assert error(await response.json())[0] == code
    prospect = await Prospect.get(id=me.prospect_id)
    assert prospect.consent_version is None and prospect.consent_at is None
    assert all(getattr(prospect, name) is None for name in PERSONAL)
    assert not await Interaction.filter(kind="mp.profile").exists()


async def test_malformed_profile_json_is_400(client, wechat):
    me = await log_in(client, wechat)
    for raw in (b"{", b"[]", b"null", b'"consent_version"'):
        response = await client.post("/mp/profile", headers=me.headers, data=raw)
        assert response.status == 400
        assert error(await response.json())[0] == "malformed_json"
    assert not await Interaction.filter(kind="mp.profile").exists()


async def test_fields_at_their_limits_are_kept(client, wechat):
    me = await log_in(client, wechat)
    body = {name: "字" * limit for name, limit in LIMITS.items() if name != "email"}
    body["email"] = "a" * (254 - len("@example.com")) + "@example.com"
    shown = await consent(client, me, **body)
    for name, value in body.items():
        assert shown[name] == value, name


async def test_the_profile_answers_as_the_prospect_sees_it(client, wechat):
    me = await log_in(client, wechat)
    shown = await consent(client, me, **FULL_PROFILE)
    assert set(shown) == SHOWN  # no tags, owner, score, identities or notes of the sales side
    assert shown["id"] == me.prospect_id
    for name, value in FULL_PROFILE.items():
        assert shown[name] == value, name
    assert shown["phone"] is None and shown["consent_at"]
    await bind(client, wechat, me)
    again = await client.get("/mp/profile", headers=me.headers)
    assert again.status == 200
    seen = await again.json()
    assert seen == {**shown, "phone": MASKED}
    # a later save changes what it names and keeps the rest
    changed = await consent(client, me, title="副总裁", consent_version="2026-02")
    assert changed["title"] == "副总裁" and changed["consent_version"] == "2026-02"
    assert changed["name"] == "张伟" and changed["email"] == "zw@example.com"
    assert changed["phone"] == MASKED
    stored = await Prospect.get(id=me.prospect_id)
    assert (stored.title, stored.company) == ("副总裁", "华东精密")
    # the name, company and email travel sealed in the signal, the rest as the fit
    [first, _] = await Interaction.filter(kind="mp.profile").order_by("id")
    assert first.payload["title"] == "市场总监" and "sealed" in first.payload
    assert not {"name", "company", "email"} & set(first.payload)
    assert "张伟" not in payloads_text([first.payload])


async def test_an_empty_profile_before_any_save(client, wechat):
    me = await log_in(client, wechat)
    response = await client.get("/mp/profile", headers=me.headers)
    assert response.status == 200
    shown = await response.json()
    assert set(shown) == SHOWN and shown["id"] == me.prospect_id
    assert all(shown[name] is None for name in SHOWN - {"id"})


# --- consent withdrawn --------------------------------------------------------------------------

async def _withdraw(client: Any, person: Person) -> None:
    response = await client.delete("/mp/profile", headers=person.headers)
    assert response.status == 204
    assert await response.read() == b""


async def test_withdrawing_the_consent_erases_the_person_and_keeps_the_interactions(client,
                                                                                  wechat):
    me = await log_in(client, wechat)
    await consent(client, me, **FULL_PROFILE)
    await bind(client, wechat, me)
    await eventually(all_processed)
    before = await Interaction.all().count()

    await _withdraw(client, me)
    prospect = await Prospect.get(id=me.prospect_id)
    for name in (*PERSONAL, "consent_version", "consent_at"):
        assert getattr(prospect, name) is None, name
    assert await phones() == []
    kinds = {i.kind for i in await Identity.filter(prospect_id=me.prospect_id)}
    assert kinds == {IdentityKind.MP_OPENID}  # the person stays, anonymous
    await eventually(all_processed)
    assert await Interaction.all().count() == before + 1
    assert await Interaction.filter(kind="mp.consent_withdrawn",
                                    prospect_id=me.prospect_id).exists()
    erased = await Interaction.filter(kind__in=("mp.phone", "mp.profile")).order_by("id")
    assert [row.kind for row in erased] == ["mp.profile", "mp.phone"]
    for row in erased:
        assert row.payload.get("erased") is True
        assert not {"sealed", "phone", *PERSONAL} & set(row.payload), row.payload
        assert row.prospect_id == me.prospect_id  # type: ignore[attr-defined]
    text = payloads_text(await Interaction.all().values_list("payload", flat=True))
    for value in ("138****8000", "张伟", "华东精密", "市场总监", "zw@example.com"):
        assert value not in text, value

    shown = await (await client.get("/mp/profile", headers=me.headers)).json()
    assert all(shown[name] is None for name in SHOWN - {"id"})
    detail = await (await client.get(f"/admin/prospects/{me.prospect_id}", headers=AUTH)).json()
    assert detail["name"] is None and detail["consent"] is None
    assert [i["kind"] for i in detail["identities"]] == ["mp_openid"]
    assert detail["interactions"] == before + 1

    # the phone needs the consent again
    response = await client.post("/mp/phone", headers=me.headers,
                                 json={"code": wechat.issue_phone_code(PHONE)})
    assert response.status == 409
    assert error(await response.json())[0] == "consent_required"
    assert await phones() == []


async def _erased(client: Any, wechat: Sandbox) -> Person:
    me = await log_in(client, wechat)
    await consent(client, me, name="张伟")
    await bind(client, wechat, me)
    await eventually(all_processed)
    await _withdraw(client, me)
    assert await phones() == []
    return me


async def test_after_the_erasure_the_phone_finds_nobody(client, wechat):
    await _erased(client, wechat)
    response = await client.get("/admin/prospects", params={"identity": f"phone:{PHONE}"},
                                headers=AUTH)
    assert response.status == 200
    assert await response.json() == []


async def test_after_the_erasure_the_phone_can_be_bound_again(client, wechat):
    me = await _erased(client, wechat)
    await consent(client, me)
    await bind(client, wechat, me)
    [identity] = await phones()
    assert identity.prospect_id == me.prospect_id  # type: ignore[attr-defined]
    shown = await (await client.get("/mp/profile", headers=me.headers)).json()
    assert shown["phone"] == MASKED


async def test_after_the_erasure_someone_else_with_that_phone_is_not_merged_in(client, wechat):
    erased = await _erased(client, wechat)
    other = await log_in(client, wechat)
    await consent(client, other, name="李娜")
    await bind(client, wechat, other)
    await eventually(all_processed)
    assert await ProspectMerge.all().count() == 0
    assert await Prospect.filter(merged_into_id=None).count() == 2
    [identity] = await phones()
    assert identity.prospect_id == other.prospect_id  # type: ignore[attr-defined]
    assert (await Prospect.get(id=erased.prospect_id)).name is None


async def test_withdrawing_right_after_binding_the_phone_still_erases_it(aiohttp_client,
                                                                         app_settings, wechat,
                                                                         store):
    """The consent withdrawn at once, while the phone's signal is still being completed (the
    processed marks are written in batches: up to `completion_linger` later)."""
    client = await service(aiohttp_client, app_settings, completion_linger=2.0)
    me = await log_in(client, wechat)
    await consent(client, me, name="张伟")
    await bind(client, wechat, me)
    await _withdraw(client, me)
    assert await phones() == []
    await eventually(all_processed)
    rows = await Interaction.filter(kind__in=("mp.phone", "mp.profile")).order_by("id")
    left = [f"{row.kind}: {sorted({'sealed', 'phone', 'name'} & set(row.payload))}"
            for row in rows]
    assert left == ["mp.profile: []", "mp.phone: []"]


async def test_withdrawing_erases_every_merged_record(client, wechat):
    first = await log_in(client, wechat)
    await consent(client, first, name="张伟", title="市场总监")
    await bind(client, wechat, first)
    second = await log_in(client, wechat)
    await consent(client, second, company="华东精密")
    await bind(client, wechat, second)  # the same phone: one person
    await eventually(all_processed)
    await _withdraw(client, second)  # withdrawn from the other record's session
    for prospect in await Prospect.all():
        assert all(getattr(prospect, name) is None for name in PERSONAL)
        assert prospect.consent_version is None
    assert await phones() == []
    for row in await Interaction.filter(kind__in=("mp.phone", "mp.profile")):
        assert row.payload.get("erased") is True and "sealed" not in row.payload


# --- one phone, one person ----------------------------------------------------------------------

async def test_two_records_with_the_same_phone_are_one_prospect(client, wechat):
    first = await log_in(client, wechat)
    await consent(client, first, name="张伟")
    await bind(client, wechat, first)
    second = await log_in(client, wechat)
    assert second.prospect_id != first.prospect_id
    await consent(client, second, title="市场总监")
    await bind(client, wechat, second)
    await eventually(all_processed)

    assert await Prospect.filter(merged_into_id=None).count() == 1
    merge = await ProspectMerge.get()
    assert (merge.survivor_id, merge.merged_id, merge.reason) == (  # type: ignore[attr-defined]
        first.prospect_id, second.prospect_id, "same phone")
    response = await client.get(f"/admin/prospects/{second.prospect_id}", headers=AUTH)
    assert response.status == 200
    shown = await response.json()
    assert shown["id"] == first.prospect_id
    assert [(m["prospect_id"], m["reason"]) for m in shown["merged_from"]] == [
        (second.prospect_id, "same phone")]
    assert shown["name"] == "张伟" and shown["title"] == "市场总监"
    assert sorted(i["kind"] for i in shown["identities"]) == ["mp_openid", "mp_openid", "phone"]
    assert shown == await (await client.get(f"/admin/prospects/{first.prospect_id}",
                                            headers=AUTH)).json()
    # the second session now speaks for the one person
    seen = await (await client.get("/mp/profile", headers=second.headers)).json()
    assert seen["id"] == first.prospect_id and seen["phone"] == MASKED
    # every interaction is the person's: moved to the survivor, or (a processed mark that
    # landed while the merge ran) left on the tombstone, which leads to it and which every
    # read of a person includes
    assert await Interaction.filter(prospect_id__in=await family(first.prospect_id)).count() \
        == await Interaction.all().count()
    assert await family(second.prospect_id) == await family(first.prospect_id)


# --- session tokens -----------------------------------------------------------------------------

ROUTES = [("POST", "/mp/phone", {"code": "x"}), ("POST", "/mp/profile", {"consent_version": "v"}),
          ("GET", "/mp/profile", None), ("DELETE", "/mp/profile", None),
          ("GET", "/mp/materials/1", None),
          ("POST", "/mp/reads", {"material_id": 1, "action": "open"})]


async def test_every_mp_route_refuses_a_bad_token(client, wechat):
    me = await log_in(client, wechat)
    await consent(client, me, name="张伟")
    body, _, signature = me.token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered = base64.urlsafe_b64encode(json.dumps(
        {**data, "p": data["p"] + 1}).encode()).rstrip(b"=").decode()
    signer = SessionSigner(str(client.app[keys.SETTINGS].secret_key))
    refused = {
        "none": ({}, "unauthorized"),
        "basic": ({"Authorization": f"Basic {me.token}"}, "unauthorized"),
        "forged": ({"Authorization": "Bearer eyJwIjoxLCJvIjoieCIsImUiOjl9.AAAA"},
                   "invalid_token"),
        "tampered body": ({"Authorization": f"Bearer {tampered}.{signature}"}, "invalid_token"),
        "tampered signature": ({"Authorization": f"Bearer {body}.{signature[::-1]}"},
                               "invalid_token"),
        "another key": ({"Authorization": "Bearer " + SessionSigner("another-secret").issue(
            me.prospect_id, me.openid)}, "invalid_token"),
        "expired": ({"Authorization": "Bearer " + signer.issue(
            me.prospect_id, me.openid, now=time.time() - TTL - 60)}, "expired_token"),
        "admin token": (AUTH, "invalid_token"),
    }
    for method, path, json_body in ROUTES:
        for name, (headers, code) in refused.items():
            response = await client.request(method, path, headers=headers, json=json_body)
            assert response.status == 401, (method, path, name)
            assert error(await response.json())[0] == code, (method, path, name)
    prospect = await Prospect.get(id=me.prospect_id)  # nothing erased, nothing written
    assert prospect.name == "张伟" and prospect.consent_version == "2026-01"
    assert await Interaction.filter(kind__in=("mp.phone", "mp.consent_withdrawn",
                                              "mp.read")).count() == 0
    assert await Interaction.filter(kind="mp.profile").count() == 1
    assert wechat.count(PHONE_PATH) == 0


async def test_a_valid_token_of_a_prospect_that_is_not_there_is_refused(client, wechat):
    """A token signed with the service's key (from an earlier database, say) naming nobody."""
    signer = SessionSigner(str(client.app[keys.SETTINGS].secret_key))
    headers = {"Authorization": "Bearer " + signer.issue(987654, new_openid())}
    for method, path, json_body in ROUTES:
        response = await client.request(method, path, headers=headers, json=json_body)
        assert response.status == 401, (method, path, response.status)
    assert await Prospect.all().count() == 0
