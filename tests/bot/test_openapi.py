"""/openapi.json is true: every route of /mp and /admin is in it and every documented operation is
served; the answers of a whole journey match their documented schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bot.admin import create_admin_app
from bot.app import create_app
from bot.openapi import document
from bot.sandbox.records import new_openid
from miniprogram_api import create_mp_app
from models import Opportunity, Prospect
from tests.bot.test_admin_codes import AUTH, people
from tests.handlers.test_one_person import follow

DOC = document()
REGISTRY = Registry().with_resource("urn:scrm", Resource.from_contents(
    DOC, default_specification=DRAFT202012))


def served(settings: Any) -> set[tuple[str, str]]:
    root = create_app(settings, worker=False)
    found = set()
    for prefix, app in (("/admin", create_admin_app(root)), ("/mp", create_mp_app(root))):
        for route in app.router.routes():
            if route.method != "HEAD" and route.resource is not None:
                found.add((route.method.lower(), prefix + route.resource.canonical))
    return found


def documented() -> set[tuple[str, str]]:
    return {(method, path) for path, operations in DOC["paths"].items()
            for method in operations}


def test_every_route_is_documented_and_every_documented_route_served(app_settings):
    assert served(app_settings) == documented()


async def test_the_document_is_served(client):
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == DOC


class Checked:
    """A test client that checks every answer against the document."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.seen: set[tuple[str, str, str]] = set()

    async def call(self, method: str, path: str, template: str, status: int,
                   **kwargs: Any) -> Any:
        response = await self.client.request(method, path, **kwargs)
        assert response.status == status, (method, path, await response.text())
        answers = DOC["paths"][template][method.lower()]["responses"]
        spec = answers.get(str(status)) or answers[f"{str(status)[0]}XX"]
        body = None
        if "application/json" in spec.get("content", {}):
            body = await response.json()
            validator = jsonschema.Draft202012Validator(
                {"$ref": "urn:scrm#" + _pointer(template, method, str(status), answers)},
                registry=REGISTRY, format_checker=jsonschema.FormatChecker())
            validator.validate(body)
        self.seen.add((method.lower(), template, str(status)))
        return body


def _pointer(template: str, method: str, status: str, answers: dict[str, Any]) -> str:
    key = status if status in answers else f"{status[0]}XX"
    escaped = template.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/{method.lower()}/responses/{key}/content/application~1json/schema"


async def test_a_whole_journey_answers_as_documented(client, wechat):
    api = Checked(client)
    ids = await people()
    a = AUTH
    person = await api.call("POST", "/admin/salespeople", "/admin/salespeople", 201, headers=a,
                            json={"name": "赵六", "team": "展会A组", "wecom_userid": "zhaoliu"})
    await api.call("PATCH", f"/admin/salespeople/{person['id']}", "/admin/salespeople/{id}",
                   200, headers=a, json={"daily_cap": 80})
    await api.call("GET", "/admin/salespeople?limit=2", "/admin/salespeople", 200, headers=a)
    partner = await api.call("POST", "/admin/partners", "/admin/partners", 201, headers=a,
                             json={"name": "渠道", "tags": ["渠道"],
                                   "salesperson_id": person["id"]})
    await api.call("PATCH", f"/admin/partners/{partner['id']}", "/admin/partners/{id}", 200,
                   headers=a, json={"tags": ["渠道:北京"]})
    await api.call("GET", "/admin/partners", "/admin/partners", 200, headers=a)
    material = await api.call("POST", "/admin/materials", "/admin/materials", 201, headers=a,
                              json={"title": "白皮书", "kind": "whitepaper",
                                    "url": "https://example.com/w.pdf"})
    await api.call("PATCH", f"/admin/materials/{material['id']}", "/admin/materials/{id}", 200,
                   headers=a, json={"tags": ["白皮书"]})
    await api.call("GET", "/admin/materials?kind=whitepaper", "/admin/materials", 200, headers=a)
    booth = await api.call("POST", "/admin/codes", "/admin/codes", 201, headers=a, json={
        "kind": "booth", "channel": "oa", "campaign": "展会", "team": "展会A组"})
    await api.call("POST", "/admin/codes", "/admin/codes", 201, headers=a, json={
        "kind": "material", "channel": "mp", "material_id": material["id"], "count": 2})
    await api.call("PATCH", f"/admin/codes/{booth['id']}", "/admin/codes/{id}", 200, headers=a,
                   json={"welcome": "欢迎！"})
    await api.call("GET", "/admin/codes?kind=booth", "/admin/codes", 200, headers=a)
    await api.call("GET", f"/admin/codes/{booth['id']}/image.png", "/admin/codes/{id}/image.png",
                   200, headers=a)
    share = await api.call("POST", "/admin/shares", "/admin/shares", 201, headers=a, json={
        "material_id": material["id"], "salesperson_id": person["id"]})

    openid = new_openid()
    await follow(client, wechat, booth, openid, unionid=None)
    session = await api.call("POST", "/mp/login", "/mp/login", 200, json={
        "code": wechat.issue_login_code()})
    mp = {"Authorization": f"Bearer {session['token']}"}
    await api.call("POST", "/mp/profile", "/mp/profile", 200, headers=mp, json={
        "consent_version": "v1", "title": "经理", "email": "a@example.com"})
    await api.call("GET", "/mp/profile", "/mp/profile", 200, headers=mp)
    await api.call("POST", "/mp/phone", "/mp/phone", 200, headers=mp,
                   json={"code": wechat.issue_phone_code("13900139000")})
    await api.call("GET", f"/mp/materials/{material['id']}?share={share['share']}",
                   "/mp/materials/{id}", 200, headers=mp)
    read = await api.call("POST", "/mp/reads", "/mp/reads", 200, headers=mp, json={
        "material_id": material["id"], "action": "open", "share": share["share"]})
    await api.call("POST", "/mp/reads", "/mp/reads", 200, headers=mp, json={
        "action": "close", "read_id": read["read_id"], "progress": 0.5})
    await api.call("POST", "/mp/actions", "/mp/actions", 201, headers=mp, json={
        "kind": "webinar_signup", "material_id": material["id"],
        "fields": {"company": "某某科技", "seats": 2, "vip": True}})

    prospect = await Prospect.filter(merged_into_id=None).order_by("id").first()
    assert prospect is not None
    made = await Opportunity.create(prospect=prospect, salesperson_id=ids["wang"])
    await api.call("GET", "/admin/prospects?limit=1", "/admin/prospects", 200, headers=a)
    await api.call("GET", f"/admin/prospects?identity=oa_openid:{openid}", "/admin/prospects",
                   200, headers=a)
    await api.call("GET", f"/admin/prospects/{prospect.id}", "/admin/prospects/{id}", 200,
                   headers=a)
    await api.call("GET", f"/admin/prospects/{session['prospect_id']}/timeline",
                   "/admin/prospects/{id}/timeline", 200, headers=a)
    await api.call("GET", "/admin/opportunities", "/admin/opportunities", 200, headers=a)
    await api.call("GET", f"/admin/opportunities/{made.id}", "/admin/opportunities/{id}", 200,
                   headers=a)
    await api.call("GET", f"/admin/prospects/{prospect.id}/score", "/admin/prospects/{id}/score",
                   200, headers=a)
    for by in ("code", "campaign", "salesperson", "partner"):
        await api.call("GET", f"/admin/stats?by={by}", "/admin/stats", 200, headers=a)
    await api.call("POST", f"/admin/salespeople/{ids['wang']}/handover",
                   "/admin/salespeople/{id}/handover", 200, headers=a,
                   json={"to_salesperson_id": person["id"]})
    await api.call("DELETE", "/mp/profile", "/mp/profile", 204, headers=mp)
    # errors are the envelope, wherever they come from
    await api.call("GET", "/admin/prospects/999999", "/admin/prospects/{id}", 404, headers=a)
    await api.call("POST", "/mp/reads", "/mp/reads", 401, json={"action": "open"})
    await api.call("POST", "/admin/codes", "/admin/codes", 400, headers=a, json={"kind": "x"})
    successes = {(m, t) for m, t, s in api.seen if s.startswith("2")}
    assert successes == documented()  # every operation answered as documented


@pytest.mark.parametrize("path", sorted({p for p in DOC["paths"]}))
def test_every_operation_says_what_it_answers(path):
    for operation in DOC["paths"][path].values():
        assert operation["summary"] and "4XX" in operation["responses"]
