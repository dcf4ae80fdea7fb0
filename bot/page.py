"""The opportunity page a salesperson opens from a push: `GET /o/{token}` shows who qualified
and why, `POST /o/{token}/accept` takes the opportunity. The signed, expiring token in the link
is the only credential. HTML for a phone, errors included: the views answer their own errors, so
the API's JSON envelope never reaches these routes."""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import keys
from bot.api import Handler
from bot.faults import is_outage
from bot.privacy import mask_phone
from domain.merging import load
from domain.opportunities import CHINA, china_time
from domain.scoring import NURTURE, OPPORTUNITY, OTHER_OFFER, POOL
from domain.timeline import timeline
from models import Opportunity, Prospect, Salesperson

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
TIMELINE_ITEMS = 20
HEADERS = {
    "Cache-Control": "no-store",  # the token is in the URL: keep the page out of every cache
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
STATUS_NAMES = {"open": "待接受", "accepted": "已接受", "won": "已成交", "lost": "已流失",
                "pool": "公海", "merged": "已合并", "closed": "已关闭"}
QUADRANT_NAMES = {OPPORTUNITY: "高匹配 · 高活跃", NURTURE: "高匹配 · 低活跃（培育）",
                  OTHER_OFFER: "低匹配 · 高活跃（其他方案）", POOL: "低匹配 · 低活跃"}
ATTRIBUTION_NAMES = {"first_touch": "首次接触", "last_touch": "最近接触", "partner": "渠道伙伴",
                     "team": "展位团队轮值", "key_account": "重点客户", "pool": "公海"}


class Refused(Exception):
    """A request the page answers with a short message instead of the opportunity."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail

    def __repr__(self) -> str:
        return f"Refused(status={self.status}, title={self.title!r})"


def _render(request: web.Request, template: str, context: dict[str, Any],
            status: int = 200) -> web.Response:
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers.update(HEADERS)
    return response


def _html(view: Handler) -> Handler:
    """Every failure of a view as a small Chinese page with its status, never JSON."""
    @functools.wraps(view)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await view(request)
        except Refused as refused:
            failure = refused
        except Exception as exc:
            if is_outage(exc):
                log.warning("%s /o/…: a service is unavailable (%s: %s)", request.method,
                            type(exc).__name__, exc)
                failure = Refused(503, "服务暂时不可用", "请稍后刷新重试。")
            else:
                log.exception("%s /o/… failed", request.method)  # the token stays out
                failure = Refused(500, "页面出错了", "问题已记录，请稍后重试。")
        return _render(request, "message.html", {"title": failure.title,
                                                 "detail": failure.detail}, failure.status)
    return guarded


def _link(request: web.Request) -> tuple[int, int | None]:
    """The opportunity a link names, and the salesperson it was sent to."""
    found, holder, expired = request.config_dict[keys.LINKS].read(request.match_info["token"])
    if found is None:
        raise Refused(404, "链接无效", "请从商机提醒消息中打开此页面。")
    if expired:
        raise Refused(410, "链接已过期", "此链接已失效，请联系管理员重新发送商机提醒。")
    return found, holder


def _still_theirs(opportunity: Opportunity, holder: int | None) -> None:
    """A link opens the opportunity only while it is the salesperson's it was sent to: after a
    handover (or a pool opportunity given to someone else) the old link shows nothing."""
    if holder is not None and opportunity.salesperson_id != holder:  # type: ignore[attr-defined]
        raise Refused(403, "商机已转交", "此商机已交由其他顾问跟进，此链接不再有效。")


def _moment(at: datetime | None) -> str | None:
    return china_time(at) if at is not None else None


async def _phones(request: web.Request, prospect: Prospect) -> list[str]:
    phones = await request.config_dict[keys.PROSPECTS].phones(prospect.id)
    return list(dict.fromkeys(mask_phone(phone) if phone else "****" for phone in phones))


def _breakdown(request: web.Request, breakdown: dict[str, Any]) -> dict[str, Any]:
    rules = request.config_dict[keys.RULES]
    ledger = [{"label": rules.label(str(row.get("rule"))), "points": int(row.get("points") or 0)}
              for row in breakdown.get("ledger") or [] if isinstance(row, dict)]
    quadrant = breakdown.get("quadrant")
    return {"ledger": ledger, "profile": breakdown.get("profile"),
            "behavior": breakdown.get("behavior"), "total": breakdown.get("total"),
            "quadrant": QUADRANT_NAMES.get(str(quadrant), quadrant)}


def _when(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(CHINA).strftime("%m-%d %H:%M")


async def show(request: web.Request) -> web.StreamResponse:
    opportunity_id, holder = _link(request)
    opportunity = await Opportunity.get_or_none(id=opportunity_id)
    if opportunity is None:
        raise Refused(404, "商机不存在", "此商机已被删除。")
    _still_theirs(opportunity, holder)
    prospect = await load(opportunity.prospect_id)  # type: ignore[attr-defined]
    owner = await Salesperson.get_or_none(
        id=opportunity.salesperson_id) if opportunity.salesperson_id else None  # type: ignore[attr-defined]
    items, more = await timeline(prospect.id, TIMELINE_ITEMS)
    return _render(request, "opportunity.html", {
        "token": request.match_info["token"],
        "person": {"name": prospect.name or f"访客{prospect.id}", "company": prospect.company,
                   "title": prospect.title, "department": prospect.department,
                   "company_size": prospect.company_size,
                   "phones": await _phones(request, prospect)},
        "status": opportunity.status,
        "status_name": STATUS_NAMES.get(opportunity.status, opportunity.status),
        "score": opportunity.score,
        "attribution": ATTRIBUTION_NAMES.get(opportunity.attribution or ""),
        "owner": owner.name if owner else None,
        "qualified_at": _moment(opportunity.qualified_at),
        "accepted_at": _moment(opportunity.accepted_at),
        "breakdown": _breakdown(request, opportunity.breakdown or {}),
        "timeline": [{"at": _when(item["at"]), "text": item["text"]} for item in items],
        "more": more is not None,
    })


async def accept(request: web.Request) -> web.StreamResponse:
    """open → accepted, once, by the salesperson the link was sent to: accepting again keeps
    the first time."""
    opportunity_id, holder = _link(request)
    mine = Opportunity.filter(id=opportunity_id, status="open")
    if holder is not None:
        mine = mine.filter(salesperson_id=holder)
    await mine.update(status="accepted", accepted_at=datetime.now(UTC))
    opportunity = await Opportunity.get_or_none(id=opportunity_id)
    if opportunity is None:
        raise Refused(404, "商机不存在", "此商机已被删除。")
    if opportunity.status == "pool":
        raise Refused(409, "无法接受", "该商机在公海中，尚未分配给您。")
    _still_theirs(opportunity, holder)
    if opportunity.status != "accepted":
        raise Refused(409, "无法接受", "该商机已关闭。")
    # relative, so that a public URL with a path prefix keeps it: /o/{token}/accept → /o/{token}
    return web.Response(status=303, headers={
        **HEADERS, "Location": f"../{request.match_info['token']}"})


def setup_page_routes(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True,
                         lstrip_blocks=True)
    app.router.add_get("/o/{token}", _html(show))
    app.router.add_post("/o/{token}/accept", _html(accept))
