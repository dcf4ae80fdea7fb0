"""Everything a person did, across all their identities, newest first, each line as a
salesperson reads it (Chinese)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.privacy import mask_phones
from domain.merging import family
from models import Code, Interaction, Material, Salesperson

KIND_NAMES = {"booth": "展位码", "material": "物料码", "salesperson": "名片码", "partner": "渠道码"}
MESSAGES = {"message.image": "发送了一张图片", "message.voice": "发送了一段语音",
            "message.video": "发送了一段视频", "message.shortvideo": "发送了一段小视频",
            "message.location": "发送了位置", "message.link": "发送了一个链接",
            "message.file": "发送了一个文件"}
PROFILE_NAMES = {"title": "职位", "department": "部门", "industry": "行业",
                 "company_size": "规模"}


@dataclass
class Context:
    """What the lines of one page name: codes, materials, salespeople."""

    codes: dict[int, Code] = field(default_factory=dict)
    materials: dict[int, Material] = field(default_factory=dict)
    by_id: dict[int, Salesperson] = field(default_factory=dict)
    by_wecom: dict[str, Salesperson] = field(default_factory=dict)

    def code(self, code_id: int | None) -> str:
        code = self.codes.get(code_id or 0)
        if code is None:
            return ""
        name = code.campaign or KIND_NAMES.get(code.kind.value, "二维码")
        return f"「{name}」"

    def material(self, material_id: Any) -> str:
        found = self.materials.get(int(material_id or 0))
        return f"《{found.title}》" if found else "一份资料"

    def salesperson(self, *, id: Any = None, wecom: Any = None) -> str:
        person = self.by_id.get(int(id or 0)) if id else self.by_wecom.get(str(wecom or ""))
        return person.name if person else (str(wecom) if wecom else "")


async def context_of(rows: Sequence[Interaction]) -> Context:
    codes = {row.code_id for row in rows if row.code_id}  # type: ignore[attr-defined]
    materials = {int(row.payload["material_id"]) for row in rows
                 if isinstance(row.payload.get("material_id"), int)}
    people = {int(row.payload["salesperson_id"]) for row in rows
              if isinstance(row.payload.get("salesperson_id"), int)}
    wecom = {str(row.payload["UserID"]) for row in rows if row.payload.get("UserID")}
    found = Context()
    if codes:
        found.codes = {c.id: c for c in await Code.filter(id__in=codes)}
    if materials:
        found.materials = {m.id: m for m in await Material.filter(id__in=materials)}
    if people:
        found.by_id = {p.id: p for p in await Salesperson.filter(id__in=people)}
    if wecom:
        found.by_wecom = {str(p.wecom_userid): p
                          for p in await Salesperson.filter(wecom_userid__in=wecom)}
    return found


ACTIONS = {"demo_request": "预约演示", "pricing_request": "咨询报价",
           "webinar_signup": "报名直播", "webinar_attend": "参加直播", "form_submit": "提交表单"}


def duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}分{rest}秒" if minutes else f"{rest}秒"


def describe(row: Interaction, c: Context) -> str:
    p, kind = row.payload, row.kind
    code = c.code(row.code_id)  # type: ignore[attr-defined]
    if kind == "event.subscribe":
        return f"扫码{code}关注公众号" if code else "关注公众号"
    if kind == "event.scan":
        return f"扫码{code}" if code else "扫码"
    if kind == "event.unsubscribe":
        return "取消关注公众号"
    if kind.startswith("message."):
        if kind == "message.text":  # masked before cut: a number cut short still leaks
            return f"发送消息：{mask_phones(str(p.get('Content') or ''))[:40]}"
        return MESSAGES.get(kind, "发送了一条消息")
    if kind == "event.click":
        return f"点击菜单「{str(p.get('EventKey') or '')[:32]}」"
    if kind in ("event.view", "event.view_miniprogram"):
        return "打开菜单链接" if kind == "event.view" else "从菜单打开小程序"
    if kind.startswith("event.change_external_contact.add_"):
        added = f"添加企业微信 {c.salesperson(wecom=p.get('UserID'))}".rstrip()
        return f"扫码{code}{added}" if code else added
    if kind == "event.change_external_contact.del_follow_user":
        return f"删除了企业微信好友 {c.salesperson(wecom=p.get('UserID'))}".rstrip()
    if kind == "event.change_external_contact.del_external_contact":
        return f"被 {c.salesperson(wecom=p.get('UserID'))} 移出企业微信联系人"
    if kind == "mp.login":
        return f"扫码{code}打开小程序" if code else "打开小程序"
    if kind == "mp.phone":
        return "绑定手机（已删除）" if p.get("erased") else f"绑定手机 {p.get('phone', '')}"
    if kind == "mp.profile":
        if p.get("erased"):
            return "填写资料（已删除）"
        shown = "，".join(f"{label}：{p[name]}" for name, label in PROFILE_NAMES.items()
                         if p.get(name))
        return f"填写资料（{shown}）" if shown else "填写资料"
    if kind == "mp.consent_withdrawn":
        return "撤回授权，个人资料已删除"
    if kind == "mp.read":
        via = ""
        if p.get("shared_by_prospect_id"):
            via = "（朋友转发）"
        elif p.get("salesperson_id"):
            via = f"（{c.salesperson(id=p['salesperson_id'])} 分享）"
        progress = round(float(p.get("progress") or 0) * 100)
        return (f"阅读{c.material(p.get('material_id'))} "
                f"{duration(float(p.get('seconds') or 0))} {progress}%{via}")
    if kind == "mp.forward":
        return f"转发{c.material(p.get('material_id'))}给一位新读者"
    if kind == "mp.action":
        what = ACTIONS.get(str(p.get("action")), "在小程序中操作")
        material = c.material(p.get("material_id")) if p.get("material_id") else ""
        return f"{what}{material}"
    return kind


async def timeline(prospect_id: int, limit: int, before: int | None = None
                   ) -> tuple[list[dict[str, Any]], int | None]:
    """One page of the person's timeline and the id to pass as `before` for the next (None at
    the end)."""
    query = Interaction.filter(prospect_id__in=await family(prospect_id))
    if before is not None:
        query = query.filter(id__lt=before)
    rows = await query.order_by("-id").limit(limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    c = await context_of(rows)
    items = [{"id": row.id, "at": row.received_at.isoformat(), "kind": row.kind,
              "source": row.source, "text": describe(row, c), "code_id": row.code_id}  # type: ignore[attr-defined]
             for row in rows]
    return items, (rows[-1].id if more and rows else None)
