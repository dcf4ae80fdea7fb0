"""Tokens shared through the store: several clients (as several processes would be: own HTTP
session each and, on Redis, own connection) fetch a token once and never invalidate each other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import aiohttp
import pytest

from bot.sandbox import Sandbox
from bot.store import TOKEN_KEY, MemoryStore, RedisStore, Store
from bot.wechat import WeChat
from tests.conftest import base_settings

CLIENTS = 8
STABLE = "/cgi-bin/stable_token"
INFO = "/cgi-bin/user/info"


@pytest.fixture
async def fleet(wechat: Sandbox, store: Store,
                redis_url: str | None) -> AsyncIterator[list[WeChat]]:
    settings = wechat.settings_for(base_settings())
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(CLIENTS):
            session = await stack.enter_async_context(aiohttp.ClientSession())
            own = store
            if redis_url is not None:  # `store` flushed the DB; each "process" connects itself
                own = RedisStore(redis_url)
                stack.push_async_callback(own.close)
            clients.append(WeChat(settings, own, session))
        yield clients


async def everyone(fleet: list[WeChat], openid: str) -> None:
    results = await asyncio.gather(*(wx.oa.user_info(openid) for wx in fleet))
    assert all(r["subscribe"] == 1 for r in results)


def forced(wechat: Sandbox) -> list[bool]:
    return [bool(call.json.get("force_refresh")) for call in wechat.calls_to(STABLE)]


async def test_clients_fetch_one_token_and_keep_it(fleet: list[WeChat], wechat: Sandbox,
                                                   store: Store) -> None:
    openid = wechat.add_follower().openid
    for _ in range(3):
        await everyone(fleet, openid)
    assert wechat.count(STABLE) == 1
    assert [c.errcode for c in wechat.calls_to(INFO)] == [0] * 3 * CLIENTS
    issued = [t.value for t in wechat.tokens.values() if t.platform == "oa"]
    assert len(issued) == 1
    assert await store.get(TOKEN_KEY.format("oa:" + str(base_settings().oa_appid))) == issued[0]


async def test_expired_token_is_fetched_once_for_everyone(fleet: list[WeChat],
                                                          wechat: Sandbox) -> None:
    openid = wechat.add_follower().openid
    await everyone(fleet, openid)
    wechat.expire_tokens()
    await everyone(fleet, openid)
    await everyone(fleet, openid)
    assert forced(wechat) == [False, False]  # expired: a normal call hands out a new one
    errcodes = [c.errcode for c in wechat.calls_to(INFO)]
    assert errcodes.count(0) == 3 * CLIENTS
    assert set(errcodes) <= {0, 42001}


async def test_refused_token_is_forced_out_once(fleet: list[WeChat], wechat: Sandbox) -> None:
    openid = wechat.add_follower().openid
    await everyone(fleet, openid)
    before = await fleet[0].oa_token.token()
    wechat.fail(INFO, 40001, times=CLIENTS)  # WeChat says invalid, yet stable_token repeats it
    await everyone(fleet, openid)
    assert forced(wechat) == [False, False, True]
    after = await fleet[-1].oa_token.token()
    assert after != before
    await everyone(fleet, openid)
    assert wechat.count(STABLE) == 3


async def test_refresh_keeps_a_token_another_process_fetched(fleet: list[WeChat],
                                                             wechat: Sandbox) -> None:
    current = await fleet[0].oa_token.token()
    # fleet[1] was refused an older token; fleet[0]'s newer one must survive that
    assert await fleet[1].oa_token.refresh("an-older-token") == current
    assert await fleet[2].oa_token.token() == current
    assert wechat.count(STABLE) == 1


async def test_wecom_token_is_fetched_once(fleet: list[WeChat], wechat: Sandbox) -> None:
    contact = wechat.add_external_contact(state="booth-1")
    for _ in range(2):
        got = await asyncio.gather(*(wx.wecom.get_external_contact(contact.external_userid)
                                     for wx in fleet))
        assert {g["external_contact"]["external_userid"] for g in got} == {
            contact.external_userid}
    assert wechat.count("/cgi-bin/gettoken") == 1
    wechat.expire_tokens()
    await asyncio.gather(*(wx.wecom.get_external_contact(contact.external_userid)
                           for wx in fleet))
    assert wechat.count("/cgi-bin/gettoken") == 2


async def test_each_app_has_its_own_token(fleet: list[WeChat], wechat: Sandbox,
                                          store: Store) -> None:
    oa, mp = await asyncio.gather(fleet[0].oa_token.token(), fleet[1].mp_token.token())
    assert oa != mp
    settings = base_settings()
    assert await store.get(TOKEN_KEY.format(f"oa:{settings.oa_appid}")) == oa
    assert await store.get(TOKEN_KEY.format(f"mp:{settings.mp_appid}")) == mp


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.ttls: list[float | None] = []

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self.ttls.append(ttl)
        await super().set(key, value, ttl)


async def test_cache_lives_less_than_the_token(wechat: Sandbox) -> None:
    store = RecordingStore()
    async with aiohttp.ClientSession() as session:
        wx = WeChat(wechat.settings_for(base_settings()), store, session)
        first = await wx.oa_token.token()
        wechat.advance(3000)
        await store.delete(TOKEN_KEY.format(wx.oa_token.name))  # as if evicted
        assert await wx.oa_token.token() == first  # stable_token hands back the same token
    assert store.ttls == [pytest.approx(7200 - 300, abs=2), pytest.approx(4200 - 300, abs=2)]


async def test_a_burst_behind_a_failing_token_fetch_asks_wechat_once(wechat: Sandbox,
                                                                     store: Store) -> None:
    """Hundreds of callers of one process miss the token while WeChat refuses to hand one out:
    WeChat is asked once, and every caller fails at once with its answer (not one by one, each
    holding a store connection while it polls the lock)."""
    settings = wechat.settings_for(base_settings())
    wechat.fail(STABLE, -1, times=1)
    async with aiohttp.ClientSession() as session:
        client = WeChat(settings, store, session)
        openid = wechat.add_follower().openid
        results = await asyncio.gather(*(client.oa.user_info(openid) for _ in range(300)),
                                       return_exceptions=True)
        assert wechat.count(STABLE) == 1
        assert all(getattr(r, "errcode", None) == -1 for r in results), results[:3]
        await asyncio.sleep(1.1)  # the failure answers for a second; then WeChat is asked again
        assert (await client.oa.user_info(openid))["subscribe"] == 1
        assert wechat.count(STABLE) == 2
