"""POST /mp/actions: what a prospect asks for in the mini-program, stored as an interaction the
scoring rules count, validated like every other signal, on the timeline, erased with consent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot import keys
from models import Interaction
from tests.bot.kit import eventually
from tests.bot.test_admin_codes import AUTH, error
from tests.miniprogram_api.test_content import material
from tests.miniprogram_api.test_person import Person, all_processed, consent, log_in


async def act(client: Any, person: Person, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post("/mp/actions", headers=person.headers, json=body)
    return response.status, await response.json()


async def test_an_action_is_stored_as_an_interaction_and_shown_on_the_timeline(client, wechat):
    person = await log_in(client, wechat)
    await consent(client, person)
    paper = await material(client, title="2026 智能制造直播")
    status, body = await act(client, person, kind="webinar_signup", material_id=paper["id"],
                             fields={"company": "华东精密", "seats": 2, "vip": True, "note": None})
    assert status == 201, body
    stored = await Interaction.get(id=body["id"])
    assert (stored.source, stored.kind, stored.actor) == ("mp", "mp.action", person.openid)
    sealed = stored.payload.pop("sealed")
    assert stored.payload == {"prospect_id": person.prospect_id, "action": "webinar_signup",
                              "material_id": paper["id"]}
    assert "华东精密" not in sealed  # sealed, and it opens to what was sent
    assert json.loads(client.app[keys.SEALER].unseal(sealed)) == {
        "company": "华东精密", "seats": 2, "vip": True, "note": None}
    await eventually(all_processed)
    response = await client.get(f"/admin/prospects/{person.prospect_id}/timeline",
                                headers=AUTH)
    texts = [item["text"] for item in (await response.json())["items"]]
    assert texts[0] == "报名直播《2026 智能制造直播》"
    status, body = await act(client, person, kind="demo_request")
    assert status == 201 and body["id"] != stored.id


@pytest.mark.parametrize(("body", "code", "names"), [
    ({"kind": "buy_now"}, "invalid_field", "`kind`"),
    ({}, "invalid_field", "`kind`"),
    ({"kind": ["demo_request"]}, "invalid_field", "`kind`"),
    ({"kind": "demo_request", "material_id": "1"}, "invalid_field", "`material_id`"),
    ({"kind": "demo_request", "fields": []}, "invalid_field", "`fields`"),
    ({"kind": "form_submit", "fields": {"bad name": "x"}}, "invalid_field", "`bad name`"),
    ({"kind": "form_submit", "fields": {"a": "   "}}, "invalid_field", "`fields.a`"),
    ({"kind": "form_submit", "fields": {"a": "x\x00"}}, "invalid_field", "`fields.a`"),
    ({"kind": "form_submit", "fields": {"a": "\ud800"}}, "invalid_field", "`fields.a`"),
    ({"kind": "form_submit", "fields": {"a": "x" * 501}}, "invalid_field", "`fields.a`"),
    ({"kind": "form_submit", "fields": {"a": {"b": 1}}}, "invalid_field", "`fields.a`"),
    ({"kind": "form_submit", "fields": {f"f{i}": i for i in range(21)}}, "invalid_field",
     "`fields`"),
    ({"kind": "demo_request", "extra": 1}, "unknown_field", "`extra`"),
])
async def test_a_bad_action_is_a_400_naming_the_field_and_stores_nothing(client, wechat, body,
                                                                         code, names):
    person = await log_in(client, wechat)
    await consent(client, person)
    before = await Interaction.filter(kind="mp.action").count()
    status, answer = await act(client, person, **body)
    assert status == 400, answer
    assert error(answer)[0] == code and names in error(answer)[1]
    assert await Interaction.filter(kind="mp.action").count() == before


async def test_a_forms_fields_need_the_persons_consent(client, wechat):
    person = await log_in(client, wechat)
    status, body = await act(client, person, kind="form_submit", fields={"name": "张伟"})
    assert status == 409 and error(body)[0] == "consent_required"
    assert not await Interaction.filter(kind="mp.action").exists()
    status, body = await act(client, person, kind="demo_request")  # no fields: no consent needed
    assert status == 201


async def test_an_unknown_material_is_a_404_and_no_session_a_401(client, wechat):
    person = await log_in(client, wechat)
    status, body = await act(client, person, kind="demo_request", material_id=999_999)
    assert status == 404 and error(body)[0] == "unknown_material"
    response = await client.post("/mp/actions", json={"kind": "demo_request"})
    assert response.status == 401
    assert not await Interaction.filter(kind="mp.action").exists()


async def test_withdrawing_consent_erases_what_a_form_said(client, wechat):
    person = await log_in(client, wechat)
    await consent(client, person, name="张伟")
    status, body = await act(client, person, kind="form_submit",
                             fields={"name": "张伟", "phone": "13912345678"})
    assert status == 201
    await eventually(all_processed)
    response = await client.delete("/mp/profile", headers=person.headers)
    assert response.status == 204
    stored = await Interaction.get(id=body["id"])
    assert stored.payload == {"prospect_id": person.prospect_id, "action": "form_submit",
                              "material_id": None, "erased": True}
