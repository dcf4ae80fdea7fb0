"""The admin API: marketing ops configure people, materials and codes, and look at what the
callbacks brought.

Every call carries `Authorization: Bearer $SCRM_ADMIN_TOKEN`; without the setting, every call is
refused. Routes live beside their subject: admin_people (salespeople, partners, materials),
admin_codes (codes, printing, statistics), admin_prospects (prospects, timelines),
admin_opportunities (scores, opportunities and their pushes).
"""

from __future__ import annotations

import hmac

from aiohttp import web

from bot import keys
from bot.admin_codes import setup_code_routes
from bot.admin_opportunities import setup_opportunity_routes
from bot.admin_people import setup_people_routes
from bot.admin_prospects import setup_prospect_routes
from bot.api import Handler, bearer
from bot.errors import Unauthorized
from bot.paging import Cursors


@web.middleware
async def admin_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.config_dict[keys.SETTINGS].admin_token
    given = bearer(request)
    if not expected:
        raise Unauthorized("the admin API is disabled: SCRM_ADMIN_TOKEN is not configured")
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("a valid admin bearer token is required")
    return await handler(request)


def create_admin_app(root: web.Application) -> web.Application:
    app = web.Application(middlewares=[admin_auth])
    app[keys.CURSORS] = Cursors(root[keys.SETTINGS].require("secret_key"))
    setup_people_routes(app)
    setup_prospect_routes(app)
    setup_code_routes(app)
    setup_opportunity_routes(app)
    return app
