"""GET /o/{token}: the opportunity page a salesperson opens from a push, in a phone's browser;
POST /o/{token}/accept takes it once. Every answer is HTML with its status, never JSON."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from bot import keys, page
from bot.signing import ExpiringIds, SignedIds
from models import (
    Identity,
    IdentityKind,
    Interaction,
    Material,
    MaterialKind,
    Opportunity,
    Prospect,
    Salesperson,
)
from tests.bot.test_admin_codes import AUTH

CHROMIUM = Path("/usr/bin/chromium")
browser = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("SCRM_REQUIRE_BROWSER"),
    reason="needs Chromium at /usr/bin/chromium (CI sets SCRM_REQUIRE_BROWSER and installs it)")
PHONE, MASKED = "13800138000", "138****8000"
TITLE = "2026 制造业白皮书"
BREAKDOWN = {"profile": 14, "behavior": 60, "total": 74, "quadrant": "opportunity",
             "ledger": [{"rule": "title_director", "points": 8, "interaction_id": None},
                        {"rule": "company_500", "points": 6, "interaction_id": None},
                        {"rule": "whitepaper_read", "points": 15, "interaction_id": 2},
                        {"rule": "demo_request", "points": 50, "interaction_id": None},
                        {"rule": "unfollow", "points": -5, "interaction_id": None}]}
SECURITY = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def story(client: Any, status: str = "open", **person: Any) -> tuple[Opportunity, str]:
    """张伟 of 上海某某科技, who bound his phone, read a whitepaper and wrote his number in a
    message, qualified for 王磊: the opportunity and the link of its push."""
    sealer = client.app[keys.SEALER]
    owner = await Salesperson.create(name="王磊", team="华东")
    prospect = await Prospect.create(**{
        "name": "张伟", "company": "上海某某科技", "title": "市场总监", "department": "市场部",
        "company_size": "500-999人", "owner": owner, **person})
    await Identity.create(prospect=prospect, kind=IdentityKind.PHONE,
                          value=sealer.digest(PHONE), sealed=sealer.seal(PHONE))
    doc = await Material.create(title=TITLE, kind=MaterialKind.WHITEPAPER)
    at = datetime.now(UTC) - timedelta(hours=1)
    for n, (source, kind, payload) in enumerate([
            ("mp", "mp.phone", {"phone": MASKED, "sealed": sealer.seal(PHONE), "via": "button"}),
            ("mp", "mp.read", {"material_id": doc.id, "seconds": 200, "progress": 1.0}),
            ("oa", "message.text", {"Content": f"请打 {PHONE} 联系我"})]):
        await Interaction.create(source=source, kind=kind, dedup_key=f"page-{n}", payload=payload,
                                 received_at=at + timedelta(minutes=n), processed_at=at,
                                 prospect=prospect)
    opportunity = await Opportunity.create(
        prospect=prospect, salesperson=None if status == "pool" else owner, score=74,
        status=status, attribution="first_touch", breakdown=BREAKDOWN, qualified_at=at)
    # the link as the push gives it: to the salesperson it went to (a pool one went nowhere)
    return opportunity, client.app[keys.LINKS].issue(
        opportunity.id, None if status == "pool" else owner.id)


def assert_html(response: Any, status: int) -> None:
    assert response.status == status
    assert response.content_type == "text/html"
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, name


async def accept(client: Any, token: str, status: int = 303) -> Any:
    response = await client.post(f"/o/{token}/accept", allow_redirects=False)
    if status != 303:
        assert_html(response, status)
    else:
        assert response.status == 303, await response.text()
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, name
    return response


@browser
async def test_a_salesperson_reads_the_page_on_a_phone_and_accepts(client):
    opportunity, token = await story(client)
    url = str(client.make_url(f"/o/{token}"))
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = await chromium.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                has_touch=True, locale="zh-CN")
            tab = await context.new_page()
            response = await tab.goto(url)
            assert response is not None and response.status == 200
            text = await tab.inner_text("body")
            for shown in ("张伟", "上海某某科技", "市场总监", "市场部", "500-999人", MASKED,
                          "王磊", "待接受", "总监级职位", "+8 分", "读完白皮书", "+15 分",
                          "预约演示", "+50 分", "取消关注", "-5 分", "总分 74",
                          "高匹配 · 高活跃", f"阅读《{TITLE}》 3分20秒 100%",
                          f"发送消息：请打 {MASKED} 联系我", f"绑定手机 {MASKED}"):
                assert shown in text, shown
            assert PHONE not in await tab.content()
            assert await tab.evaluate(  # nothing wider than the phone
                "document.documentElement.scrollWidth <= window.innerWidth")

            async with tab.expect_navigation():
                await tab.get_by_role("button", name="接受商机").click()
            assert tab.url == url  # back on the page, not on /accept
            assert await tab.inner_text("#status") == "已接受"
            assert "接受时间" in await tab.inner_text("body")
            assert await tab.get_by_role("button", name="接受商机").count() == 0
        finally:
            await chromium.close()
    accepted = await Opportunity.get(id=opportunity.id)
    assert accepted.status == "accepted" and accepted.accepted_at is not None


async def test_the_page_is_html_that_no_cache_keeps(client):
    _, token = await story(client)
    response = await client.get(f"/o/{token}")
    assert_html(response, 200)
    body = await response.text()
    assert "张伟" in body and MASKED in body and PHONE not in body
    assert f'action="{token}/accept"' in body


async def test_a_forged_or_tampered_link_is_404(client):
    _, token = await story(client)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for forged in ("nonsense", tampered, "x" * 300):
        response = await client.get(f"/o/{forged}")
        assert_html(response, 404)
        assert "链接无效" in await response.text()
        await accept(client, forged, 404)
    assert (await Opportunity.get()).status == "open"


async def test_an_expired_link_is_410(client):
    opportunity, _ = await story(client)
    links = client.app[keys.LINKS]
    expired = links.issue(opportunity.id, now=time.time() - links.ttl - 60)
    response = await client.get(f"/o/{expired}")
    assert_html(response, 410)
    assert "链接已过期" in await response.text()
    await accept(client, expired, 410)
    assert (await Opportunity.get(id=opportunity.id)).status == "open"


async def test_after_a_handover_the_old_link_opens_nothing_and_accepts_nothing(client):
    opportunity, token = await story(client)
    other = await Salesperson.create(name="李强", team="华东")
    response = await client.post(f"/admin/salespeople/{opportunity.salesperson_id}/handover",  # type: ignore[attr-defined]
                                 json={"to_salesperson_id": other.id}, headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["opportunities"] == 1

    response = await client.get(f"/o/{token}")
    assert_html(response, 403)
    body = await response.text()
    assert "商机已转交" in body and "张伟" not in body and MASKED not in body
    response = await accept(client, token, 403)
    assert "商机已转交" in await response.text()
    after = await Opportunity.get(id=opportunity.id)
    assert (after.status, after.accepted_at, after.salesperson_id) == (  # type: ignore[attr-defined]
        "open", None, other.id)

    # the receiver's link opens it, and accepts it
    theirs = client.app[keys.LINKS].issue(opportunity.id, other.id)
    response = await client.get(f"/o/{theirs}")
    assert_html(response, 200)
    assert "张伟" in await response.text()
    await accept(client, theirs)
    assert (await Opportunity.get(id=opportunity.id)).status == "accepted"


async def test_a_link_from_before_links_named_their_salesperson_still_opens(client):
    """Links pushed by an earlier version (the id and expiry as one signed number) keep working
    until they expire."""
    opportunity, _ = await story(client)
    signed = SignedIds(client.app[keys.SETTINGS].require("secret_key"), b"opportunity-page")
    earlier = signed.issue(opportunity.id * ExpiringIds.SPAN + int(time.time()) + 3600)
    response = await client.get(f"/o/{earlier}")
    assert_html(response, 200)
    assert "张伟" in await response.text()
    gone = signed.issue(opportunity.id * ExpiringIds.SPAN + int(time.time()) - 60)
    assert_html(await client.get(f"/o/{gone}"), 410)


async def test_a_link_to_an_opportunity_gone_is_404(client):
    token = client.app[keys.LINKS].issue(999_999)
    assert_html(await client.get(f"/o/{token}"), 404)
    await accept(client, token, 404)


async def test_accepting_twice_keeps_the_first_time(client):
    opportunity, token = await story(client)
    first = await accept(client, token)
    assert first.headers["Location"] == f"../{token}"
    once = (await Opportunity.get(id=opportunity.id)).accepted_at
    assert once is not None
    await accept(client, token)
    again = await Opportunity.get(id=opportunity.id)
    assert again.status == "accepted" and again.accepted_at == once

    response = await client.post(f"/o/{token}/accept")  # following the redirect
    assert_html(response, 200)
    assert response.url.path == f"/o/{token}"
    body = await response.text()
    assert "已接受" in body and "<form" not in body


@pytest.mark.parametrize("status", ["pool", "closed"])
async def test_a_pool_or_closed_opportunity_cannot_be_accepted(client, status):
    opportunity, token = await story(client, status)
    response = await accept(client, token, 409)
    assert "无法接受" in await response.text()
    after = await Opportunity.get(id=opportunity.id)
    assert after.status == status and after.accepted_at is None
    response = await client.get(f"/o/{token}")
    assert_html(response, 200)
    assert "<form" not in await response.text()


async def test_everything_shown_is_escaped(client):
    _, token = await story(client, name="<script>alert(1)</script>",
                           company='"><img src=x onerror=alert(2)>')
    body = await (await client.get(f"/o/{token}")).text()
    assert "<script>alert" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


async def test_the_timeline_shows_the_latest_twenty(client):
    opportunity, token = await story(client)
    person, at = opportunity.prospect_id, datetime.now(UTC)  # type: ignore[attr-defined]
    for n in range(25):
        await Interaction.create(source="oa", kind="event.click", dedup_key=f"click-{n}",
                                 payload={"EventKey": f"菜单{n}"}, prospect_id=person,
                                 received_at=at + timedelta(seconds=n), processed_at=at)
    body = await (await client.get(f"/o/{token}")).text()
    assert body.count('class="event"') == page.TIMELINE_ITEMS
    assert "点击菜单「菜单24」" in body and "点击菜单「菜单4」" not in body
    assert "仅显示最近 20 条" in body


async def test_failures_are_small_pages_not_json(client, monkeypatch):
    _, token = await story(client)

    async def down(*args: Any) -> Any:
        raise ConnectionRefusedError("database down")

    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug with a secret in it")

    monkeypatch.setattr(page, "timeline", down)
    response = await client.get(f"/o/{token}")
    assert_html(response, 503)
    assert "服务暂时不可用" in await response.text()
    monkeypatch.setattr(page, "timeline", broken)
    response = await client.get(f"/o/{token}")
    assert_html(response, 500)
    body = await response.text()
    assert "页面出错了" in body and "secret" not in body and "Traceback" not in body
