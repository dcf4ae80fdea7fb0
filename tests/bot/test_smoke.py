from __future__ import annotations

from bot.sandbox import events


async def test_subscribe_through_sandbox(client, wechat):
    url = str(client.make_url("/wechat/oa"))
    delivery = await wechat.push_oa(url, events.subscribe("oia2TjjewbmiOUlr6X-1crbLOvLw", scene="booth1"), duplicates=2)
    print(delivery.to_dict())
    assert delivery.ok
