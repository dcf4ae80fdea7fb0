"""handlers.wecom through /wechat/wecom: customer-contact changes bind the external contact."""

from __future__ import annotations

from bot.sandbox import events
from models import Identity, IdentityKind, Interaction, Prospect
from tests.handlers.test_oa import all_processed

EXTERNAL = "wmAJ2GCAAAXtWyujaWJHDDGi0mACH71w"


async def test_contact_changes_bind_one_prospect(client, wechat):
    url = str(client.make_url("/wechat/wecom"))
    for change, extra in (("add_half_external_contact", {"state": "booth3"}),
                          ("add_external_contact", {"state": "booth3"}),
                          ("del_follow_user", {}),
                          ("del_external_contact", {})):
        event = events.external_contact(change, "zhangsan", EXTERNAL, **extra)
        event["CreateTime"] = 1_700_000_000 + len(change)
        delivery = await wechat.push_wecom(url, event)
        assert delivery.ok and delivery.attempts[0].body == ""
    rows = await all_processed(4)
    identity = await Identity.get(kind=IdentityKind.EXTERNAL_USERID, value=EXTERNAL)
    assert {r.prospect_id for r in rows} == {identity.prospect_id}  # type: ignore[attr-defined]
    assert [r.scene for r in rows] == ["booth3", "booth3", None, None]
    assert rows[1].kind == "event.change_external_contact.add_external_contact"
    assert all(r.actor == EXTERNAL for r in rows)
    assert await Prospect.all().count() == 1


async def test_a_change_nobody_handles_is_kept_unattributed(client, wechat):
    delivery = await wechat.push_wecom(str(client.make_url("/wechat/wecom")),
                                       events.external_contact("edit_external_contact",
                                                               "zhangsan", EXTERNAL))
    assert delivery.ok
    [row] = await all_processed(1)
    assert row.kind == "event.change_external_contact.edit_external_contact"
    assert row.prospect_id is None  # type: ignore[attr-defined]
    assert await Interaction.all().count() == 1 and await Prospect.all().count() == 0
