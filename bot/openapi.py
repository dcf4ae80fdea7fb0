"""The OpenAPI document of `/mp` and `/admin` (served at `/openapi.json`). A test keeps it true:
every route documented, every documented route served, answers matching their schemas; the
suite also fuzzes every operation from it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.api import reply

Schema = dict[str, Any]
TEXT = {"type": "string"}
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
WHEN = {"type": "string", "format": "date-time"}
TAGS = {"type": "array", "maxItems": 50, "items": {
    "type": "string", "minLength": 1, "maxLength": 32,
    "pattern": "^[^\\x00-\\x1f\\x7f]*[^\\s\\x00-\\x1f][^\\x00-\\x1f\\x7f]*$"}}
CODE_KINDS = ["booth", "material", "salesperson", "partner"]
CHANNELS = ["oa", "mp", "wecom"]
MATERIAL_KINDS = ["article", "whitepaper", "case", "video", "webinar"]


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, *,
        closed: bool = False) -> Schema:
    """An object with `required` and `optional` properties; `closed` refuses any other (request
    bodies: an unknown field is a 400)."""
    if closed:  # a request: an optional field may also be sent as null (taken as absent)
        optional = {name: value if "anyOf" in value else nullable(value)
                    for name, value in (optional or {}).items()}
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})},
                      "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


LINE = "[^\\x00-\\x1f\\x7f\\ufffe\\uffff]"  # what one-line text may hold
LINES = "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ufffe\\uffff]"  # and multi-line


def text(limit: int, *, multiline: bool = False) -> Schema:
    """Text as the service takes it: not blank, no control characters."""
    char = LINES if multiline else LINE
    return {"type": "string", "minLength": 1, "maxLength": limit,
            "pattern": f"^{char}*[^\\s\\x00-\\x1f\\x7f\\ufffe\\uffff]{char}*$"}


def page_of(item: str) -> Schema:
    return obj({"items": {"type": "array", "items": ref(item)}, "next": nullable(TEXT)})


QUADRANT = {"enum": ["opportunity", "nurture", "other_offer", "pool"]}
OPPORTUNITY_STATUSES = ["open", "accepted", "won", "lost", "pool", "merged"]
PUSH_STATUSES = ["pending", "sent", "delivered", "failed"]
OPPORTUNITY = obj({
    "id": ID, "prospect_id": ID, "salesperson_id": nullable(ID),
    "salesperson": nullable(TEXT), "score": {"type": "integer"},
    "status": {"enum": OPPORTUNITY_STATUSES}, "reason": nullable(TEXT),
    "attribution": nullable({"enum": ["first_touch", "last_touch", "partner", "team",
                                      "key_account", "pool"]}),
    "created_at": WHEN, "qualified_at": nullable(WHEN), "reached_at": nullable(WHEN),
    "accepted_at": nullable(WHEN), "speed_to_lead_ms": nullable({"type": "integer"}),
    "push": nullable(obj({"channel": TEXT, "status": {"enum": PUSH_STATUSES}}))})
COUNTS = {name: {"type": "integer", "minimum": 0}
          for name in ("scans", "follows", "prospects", "opportunities")}
SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": obj({"code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                                "message": TEXT})}),
    "Salesperson": obj({"id": ID, "name": TEXT, "team": nullable(TEXT),
                        "oa_openid": nullable(TEXT), "wecom_userid": nullable(TEXT),
                        "daily_cap": {"type": "integer"}, "active": {"type": "boolean"},
                        "created_at": WHEN}),
    "Partner": obj({"id": ID, "name": TEXT, "tags": TAGS, "salesperson_id": nullable(ID),
                    "created_at": WHEN}),
    "Material": obj({"id": ID, "title": TEXT, "kind": {"enum": MATERIAL_KINDS},
                     "url": nullable(TEXT), "tags": TAGS, "created_at": WHEN}),
    "Code": obj({
        "id": ID, "kind": {"enum": CODE_KINDS}, "channel": {"enum": CHANNELS}, "scene": TEXT,
        "campaign": nullable(TEXT), "tags": TAGS, "salesperson_id": nullable(ID),
        "salesperson": nullable(TEXT), "partner_id": nullable(ID), "partner": nullable(TEXT),
        "material_id": nullable(ID), "material": nullable(TEXT), "team": nullable(TEXT),
        "backup_salesperson_id": nullable(ID), "backup_salesperson": nullable(TEXT),
        "serial": nullable({"type": "integer"}), "batch": nullable(TEXT),
        "permanent": {"type": "boolean"}, "welcome": nullable(TEXT),
        "expires_at": nullable(WHEN), "created_at": WHEN, "image": TEXT},
        {"ticket": nullable(TEXT), "url": nullable(TEXT), "page": nullable(TEXT),
         "config_id": nullable(TEXT), "qr_code": nullable(TEXT)}),
    "CodeBatch": obj({"batch": TEXT, "count": {"type": "integer"},
                      "codes": {"type": "array", "items": ref("Code")}}),
    "Owner": obj({"salesperson_id": nullable(ID), "salesperson": nullable(TEXT),
                  "partner_id": nullable(ID), "partner": nullable(TEXT)}),
    "ProspectSummary": obj({
        "id": ID, "name": nullable(TEXT), "company": nullable(TEXT), "title": nullable(TEXT),
        "tags": {"type": "array", "items": TEXT}, "owner": ref("Owner"),
        "first_code": nullable(obj({"id": ID, "kind": {"enum": CODE_KINDS},
                                    "channel": {"enum": CHANNELS},
                                    "campaign": nullable(TEXT)})),
        "created_at": WHEN}),
    "Prospect": {"allOf": [ref("ProspectSummary"), obj({
        "department": nullable(TEXT), "industry": nullable(TEXT),
        "company_size": nullable(TEXT), "email": nullable(TEXT),
        "identities": {"type": "array", "items": obj({
            "kind": {"enum": ["oa_openid", "mp_openid", "unionid", "external_userid",
                              "phone"]}, "value": TEXT})},
        "score": obj({"profile": {"type": "integer"}, "behavior": {"type": "integer"},
                      "total": {"type": "integer"}, "quadrant": nullable(QUADRANT)}),
        "interactions": {"type": "integer", "minimum": 0},
        "consent": nullable(obj({"version": TEXT, "at": nullable(WHEN)})),
        "merged_from": {"type": "array", "items": obj({
            "prospect_id": ID, "reason": TEXT, "at": WHEN, "moved": {"type": "object"}})}})]},
    "Timeline": obj({"items": {"type": "array", "items": obj({
        "id": {"type": "integer"}, "at": WHEN, "kind": TEXT, "source": TEXT, "text": TEXT,
        "code_id": nullable(ID)})}, "next": nullable({"type": "integer"})}),
    "Opportunity": OPPORTUNITY,
    "OpportunityDetail": {"allOf": [OPPORTUNITY, obj({
        "prospect": obj({"id": ID, "name": nullable(TEXT), "company": nullable(TEXT),
                         "title": nullable(TEXT)}),
        "qualified_by": nullable({"type": "integer"}),
        "touches": {"type": "array", "items": obj({
            "interaction_id": {"type": "integer"}, "at": WHEN, "kind": TEXT, "code_id": ID,
            "code_kind": {"enum": CODE_KINDS}, "campaign": nullable(TEXT),
            "salesperson_id": nullable(ID), "partner_id": nullable(ID),
            "team": nullable(TEXT)})},
        "breakdown": {"type": "object"},
        "pushes": {"type": "array", "items": obj({
            "id": ID, "channel": TEXT, "status": {"enum": PUSH_STATUSES},
            "attempts": {"type": "integer", "minimum": 0}, "last_error": nullable(TEXT),
            "wechat_msgid": nullable(TEXT), "sent_at": nullable(WHEN),
            "next_attempt_at": nullable(WHEN), "history": {"type": "array"}})}})]},
    "Score": obj({
        "prospect_id": ID, "profile": {"type": "integer"}, "behavior": {"type": "integer"},
        "total": {"type": "integer"}, "quadrant": QUADRANT,
        "thresholds": obj({"fit": {"type": "integer"}, "engagement": {"type": "integer"}}),
        "cleaned": nullable(TEXT), "key_account": nullable(TEXT), "scored_at": nullable(WHEN),
        "ledger": {"type": "array", "items": obj({
            "rule": TEXT, "label": TEXT, "kind": {"enum": ["profile", "behavior"]},
            "points": {"type": "integer"}, "now": {"type": "number"},
            "interaction_id": nullable({"type": "integer"}), "at": WHEN})}}),
    "StatsRow": obj(COUNTS, {"code": ID, "campaign": nullable(TEXT), "partner": nullable(ID),
                             "salesperson_id": nullable(ID), "salesperson": TEXT,
                             "kind": TEXT, "channel": TEXT, "serial": nullable({
                                 "type": "integer"}), "batch": nullable(TEXT)}),
    "Handover": obj({"moved": {"type": "integer"}, "prospects": {"type": "integer"},
                     "opportunities": {"type": "integer"}, "pushed": {"type": "integer"},
                     "from": ref("Salesperson"), "to": ref("Salesperson")}),
    "Share": obj({"share": TEXT, "page": TEXT, "material": ref("Material"),
                  "salesperson": ref("Salesperson")}),
    "Session": obj({"token": TEXT, "prospect_id": ID}),
    "Phone": obj({"phone": TEXT}),
    "Self": obj({name: nullable(TEXT) for name in (
        "name", "company", "title", "department", "industry", "company_size", "email",
        "phone", "consent_version")} | {"id": ID, "consent_at": nullable(WHEN)}),
    "Card": obj({"salesperson_id": ID, "name": TEXT, "team": nullable(TEXT),
                 "wecom_userid": nullable(TEXT)}),
    "MpMaterial": obj({"id": ID, "title": TEXT, "kind": {"enum": MATERIAL_KINDS},
                       "url": nullable(TEXT), "tags": TAGS, "share": TEXT,
                       "card": nullable(ref("Card")),
                       "shared_by": nullable(obj({"kind": {"enum": ["salesperson", "prospect"]},
                                                  "name": nullable(TEXT)},
                                                 {"salesperson_id": ID,
                                                  "hops": {"type": "integer"}}))}),
    "Read": obj({"read_id": {"type": "integer", "minimum": 1}}),
}

SALESPERSON_FIELDS = {"name": text(64), "team": nullable(text(64)),
                      "oa_openid": nullable(text(64)), "wecom_userid": nullable(text(64)),
                      "daily_cap": {"type": "integer", "minimum": 0, "maximum": 10_000},
                      "active": {"type": "boolean"}}
PARTNER_FIELDS = {"name": text(128), "tags": TAGS, "salesperson_id": nullable(ID)}
MATERIAL_FIELDS = {"title": text(200), "kind": {"enum": MATERIAL_KINDS},
                   "url": nullable({"type": "string", "format": "uri", "maxLength": 1024,
                                    "pattern": "^https?://[^/\\s:]+(:[1-9][0-9]{0,3})?(/\\S*)?$"}),
                   "tags": TAGS}
CODE_FIELDS = {
    "kind": {"enum": CODE_KINDS}, "channel": {"enum": CHANNELS}, "campaign": text(128),
    "salesperson_id": ID, "partner_id": ID, "material_id": ID, "team": text(64),
    "backup_salesperson_id": ID, "tags": TAGS, "permanent": {"type": "boolean"},
    "expire_days": {"type": "integer", "minimum": 1, "maximum": 30},
    "welcome": text(600, multiline=True), "page": text(256),
    "count": {"type": "integer", "minimum": 1, "maximum": 10_000}}
CODE_EDITS = {"welcome": nullable(text(600, multiline=True)), "tags": TAGS,
              "campaign": nullable(text(128)), "backup_salesperson_id": nullable(ID)}
PROFILE_FIELDS = {"name": text(64), "company": text(128), "title": text(64),
                  "department": text(64), "industry": text(64), "company_size": text(32),
                  "email": {"type": "string", "format": "email", "maxLength": 254}}


def body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def answer(status: int, schema: Schema | None, *, wechat: bool = False,
           description: str = "") -> dict[str, Any]:
    """The documented answers: the success, and any 4xx in the error envelope (a WeChat call
    adds the 5xx of WeChat being unreachable or busy)."""
    error = {"description": "the caller's mistake, in the error envelope",
             "content": {"application/json": {"schema": ref("Error")}}}
    success: dict[str, Any] = {"description": description or "done"}
    if schema is not None:
        success["content"] = {"application/json": {"schema": schema}}
    answers = {str(status): success, "4XX": error}
    if wechat:
        answers["5XX"] = {**error, "description": "WeChat unreachable or busy"}
    return answers


def query(name: str, schema: Schema, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def path_id(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": ID,
            "description": f"the {what}'s id"}


PAGING = [query("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
          query("cursor", TEXT, "`next` of the previous page")]


def op(summary: str, responses: dict[str, Any], *, security: str = "admin",
       parameters: list[dict[str, Any]] | None = None,
       request: Schema | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses,
                                 "security": [{security: []}] if security else []}
    if parameters:
        operation["parameters"] = parameters
    if request is not None:
        operation["requestBody"] = body(request)
    return operation


def crud(name: str, fields: dict[str, Schema], required: list[str], item: str,
         filters: list[dict[str, Any]], what: str) -> dict[str, Any]:
    create = obj({k: fields[k] for k in required},
                 {k: v for k, v in fields.items() if k not in required}, closed=True)
    edit = {"type": "object", "properties": fields, "additionalProperties": False,
            "minProperties": 1}
    return {
        f"/admin/{name}": {
            "post": op(f"create a {what}", answer(201, ref(item)), request=create),
            "get": op(f"list {name}, newest first", answer(200, page_of(item)),
                      parameters=filters + PAGING)},
        f"/admin/{name}/{{id}}": {
            "patch": op(f"edit a {what}; answers with every stored field",
                        answer(200, ref(item)), parameters=[path_id(what)], request=edit)},
    }


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    paths.update(crud("salespeople", SALESPERSON_FIELDS, ["name"], "Salesperson",
                      [query("team", text(64)), query("active", {"enum": ["true", "false"]})],
                      "salesperson"))
    paths.update(crud("partners", PARTNER_FIELDS, ["name"], "Partner", [], "partner"))
    paths.update(crud("materials", MATERIAL_FIELDS, ["title", "kind"], "Material",
                      [query("kind", {"enum": MATERIAL_KINDS})], "material"))
    paths["/admin/salespeople/{id}/handover"] = {"post": op(
        "hand a leaving salesperson's prospects and open opportunities to another",
        answer(200, ref("Handover")), parameters=[path_id("salesperson")],
        request=obj({"to_salesperson_id": ID}, closed=True))}
    paths["/admin/shares"] = {"post": op(
        "a salesperson's share of a material (what their card sends)",
        answer(201, ref("Share")),
        request=obj({"material_id": ID, "salesperson_id": ID}, closed=True))}
    paths["/admin/codes"] = {
        "post": op("issue a code (or a batch of material codes) through WeChat",
                   answer(201, {"anyOf": [ref("Code"), ref("CodeBatch")]}, wechat=True),
                   request=obj({"kind": CODE_FIELDS["kind"], "channel": CODE_FIELDS["channel"]},
                               {k: v for k, v in CODE_FIELDS.items()
                                if k not in ("kind", "channel")}, closed=True)),
        "get": op("list codes, newest first", answer(200, page_of("Code")), parameters=[
            query("kind", {"enum": CODE_KINDS}), query("channel", {"enum": CHANNELS}),
            query("campaign", text(128)), query("batch", text(32)), *PAGING])}
    paths["/admin/codes/{id}"] = {"patch": op(
        "edit a code's welcome, tags, campaign or backup (never its scene or channel)",
        answer(200, ref("Code")), parameters=[path_id("code")],
        request={"type": "object", "properties": CODE_EDITS, "additionalProperties": False,
                 "minProperties": 1})}
    image = answer(200, None, wechat=True, description="the PNG")
    image["200"]["content"] = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
    paths["/admin/codes/{id}/image.png"] = {"get": op(
        "the printable PNG of a code (a WeCom code's image is fetched then if need be)", image,
        parameters=[path_id("code")])}
    paths["/admin/prospects"] = {"get": op(
        "prospects: by identity (`identity=KIND:VALUE`, a plain list) or listed with filters",
        answer(200, {"anyOf": [{"type": "array", "items": ref("Prospect")},
                               page_of("ProspectSummary")]}),
        parameters=[query("identity", text(200), "KIND:VALUE"),
                    query("owner_id", ID), query("unassigned", {"enum": ["true", "false"]}),
                    query("campaign", text(128)), query("code_id", ID),
                    query("partner_id", ID), query("tag", text(32)),
                    query("created_after", {"type": "string", "format": "date-time"}),
                    query("created_before", {"type": "string", "format": "date-time"}),
                    query("q", text(64), "name or company"), *PAGING])}
    paths["/admin/prospects/{id}"] = {"get": op(
        "a prospect (a merged-away id answers with its survivor)", answer(200, ref("Prospect")),
        parameters=[path_id("prospect")])}
    paths["/admin/prospects/{id}/timeline"] = {"get": op(
        "everything the person did across their identities, newest first",
        answer(200, ref("Timeline")), parameters=[
            path_id("prospect"), query("limit", {"type": "integer", "minimum": 1,
                                                 "maximum": 200}),
            query("before", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                  "`next` of the previous page")])}
    paths["/admin/opportunities"] = {"get": op(
        "opportunities, newest first", answer(200, {"type": "array",
                                                    "items": ref("Opportunity")}),
        parameters=[query("salesperson_id", ID), query("prospect_id", ID),
                    query("status", {"enum": OPPORTUNITY_STATUSES})])}
    paths["/admin/opportunities/{id}"] = {"get": op(
        "an opportunity: its touches (the attribution record), the score it qualified with, "
        "every push attempt and the speed to lead", answer(200, ref("OpportunityDetail")),
        parameters=[path_id("opportunity")])}
    paths["/admin/prospects/{id}/score"] = {"get": op(
        "a prospect's score: every point a ledger row naming its rule and interaction",
        answer(200, ref("Score")), parameters=[path_id("prospect")])}
    paths["/admin/stats"] = {"get": op(
        "scans, follows, prospects and opportunities per code, campaign, partner or "
        "salesperson (by owner, with an unassigned row)",
        answer(200, {"type": "array", "items": ref("StatsRow")}),
        parameters=[query("by", {"enum": ["code", "campaign", "salesperson", "partner"]})])}
    paths["/mp/login"] = {"post": op(
        "log in with a wx.login code (and a mini-program code's scene)",
        answer(200, ref("Session"), wechat=True), security="",
        request=obj({"code": text(128)}, {"scene": {"anyOf": [{"const": ""}, text(128)]}},
                    closed=True))}
    paths["/mp/phone"] = {"post": op(
        "bind the phone of the getPhoneNumber button (or the legacy encrypted data)",
        answer(200, ref("Phone"), wechat=True), security="mp",
        request={"anyOf": [obj({"code": text(128)}, closed=True),
                           obj({"encrypted_data": text(4096), "iv": text(64)}, closed=True)]})}
    paths["/mp/profile"] = {
        "get": op("the profile, as the person sees it", answer(200, ref("Self")),
                  security="mp"),
        "post": op("fill the profile, with the consent given", answer(200, ref("Self")),
                   security="mp", request=obj({"consent_version": text(32)}, PROFILE_FIELDS,
                                              closed=True)),
        "delete": op("withdraw consent: personal fields and phone erased",
                     answer(204, None, description="erased"), security="mp")}
    paths["/mp/materials/{id}"] = {"get": op(
        "a material, the card of whoever shared it, and the reader's own share",
        answer(200, ref("MpMaterial")), security="mp",
        parameters=[path_id("material"), query("share", TEXT, "a share token")])}
    paths["/mp/reads"] = {"post": op(
        "open, heartbeat or close a read (seconds are the server's own count)",
        answer(200, ref("Read")), security="mp",
        request=obj({"action": {"enum": ["open", "heartbeat", "close"]}}, {
            "material_id": ID, "read_id": {"type": "integer", "minimum": 1, "maximum": 2**62},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "share": text(64)}, closed=True))}
    form_value = {"anyOf": [text(500, multiline=True), {"type": "number"},
                            {"type": "boolean"}, {"type": "null"}]}
    paths["/mp/actions"] = {"post": op(
        "an action the scoring rules may count: a demo or pricing request, a webinar, a form",
        answer(201, obj({"id": ID}), description="stored as an interaction"), security="mp",
        request=obj({"kind": {"enum": ["demo_request", "pricing_request", "webinar_signup",
                                       "webinar_attend", "form_submit"]}}, {
            "material_id": ID,
            "fields": {"type": "object", "maxProperties": 20,
                       "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_]{0,31}$"},
                       "additionalProperties": form_value}}, closed=True))}
    return {
        "openapi": "3.1.0",
        "info": {"title": "WeChat B2B SCRM: mini-program and admin API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer",
                          "description": "SCRM_ADMIN_TOKEN"},
                "mp": {"type": "http", "scheme": "bearer",
                       "description": "the session token of POST /mp/login"}}},
    }


async def serve(request: web.Request) -> web.Response:
    return reply(document())
