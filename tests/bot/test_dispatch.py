"""bot.dispatch: routers by push kind and scene kind, dependencies by parameter name, the
deadline that splits inline work from background work."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.dispatch import Dispatcher, Router
from bot.intake import Done
from bot.pushes import Push, classify
from handlers import ROUTERS


class Completions:
    def __init__(self) -> None:
        self.done: list[Done] = []

    def submit(self, done: Done) -> asyncio.Future[None]:
        self.done.append(done)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def push(kind_fields: dict[str, Any], interaction_id: int | None = 1,
         source: str = "oa") -> Push:
    fields = {"FromUserName": "o1", "CreateTime": "1", **kind_fields}
    p = classify(source, fields)
    p.interaction_id = interaction_id
    return p


SUBSCRIBE = {"MsgType": "event", "Event": "subscribe"}
QR_SUBSCRIBE = {**SUBSCRIBE, "EventKey": "qrscene_s1"}


def dispatcher(router: Router, deps: dict[str, Any] | None = None,
               kinds: dict[str, str] | None = None, **options: Any) -> tuple[Dispatcher,
                                                                             Completions]:
    async def scene_kind(p: Push) -> str | None:
        return (kinds or {}).get(p.scene or "")

    completions = Completions()
    return Dispatcher([router], deps or {}, scene_kind, completions, **options), completions  # type: ignore[arg-type]


def test_a_second_handler_for_one_key_is_an_error() -> None:
    router = Router("r")
    router.on("oa", "event.subscribe")(lambda push: None)
    with pytest.raises(ValueError, match="registered already"):
        router.on("oa", "event.subscribe")(lambda push: None)
    router.on("oa", "event.subscribe", scene="booth")(lambda push: None)  # another scene kind


def test_the_project_routers_cover_the_foundation_kinds() -> None:
    table = {key for router in ROUTERS for key in router.handlers}
    for key in [("oa", "event.subscribe", "*"), ("oa", "event.scan", "*"),
                ("oa", "event.unsubscribe", "*"), ("oa", "message.text", "*"),
                ("oa", "event.templatesendjobfinish", "*"),
                ("wecom", "event.change_external_contact.add_external_contact", "*")]:
        assert key in table


async def test_scene_kind_handler_wins_over_the_any_handler() -> None:
    router = Router("r")
    seen: list[str] = []

    @router.on("oa", "event.subscribe", scene="booth")
    async def booth(push: Push) -> str:
        seen.append("booth")
        return "booth"

    @router.on("oa", "event.subscribe", scene="none")
    async def plain(push: Push) -> str:
        seen.append("none")
        return "none"

    @router.on("oa", "event.subscribe")
    async def anything(push: Push) -> str:
        seen.append("any")
        return "any"

    d, _ = dispatcher(router, kinds={"s1": "booth"})
    assert await d.process(push(QR_SUBSCRIBE)) == "booth"
    assert await d.process(push(SUBSCRIBE)) == "none"
    assert await d.process(push({**SUBSCRIBE, "EventKey": "qrscene_nobody"})) == "any"
    assert seen == ["booth", "none", "any"]


async def test_unknown_scene_kind() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe", scene="unknown")
    async def unknown(push: Push) -> str:
        return "unknown"

    d, _ = dispatcher(router)
    assert await d.process(push({**SUBSCRIBE, "EventKey": "qrscene_nobody"})) == "unknown"


async def test_dependencies_by_parameter_name() -> None:
    router = Router("r")
    got: dict[str, Any] = {}

    @router.on("oa", "message.text")
    async def wrote(prospects: object, push: Push, settings: object) -> None:
        got.update(prospects=prospects, push=push, settings=settings)

    d, _ = dispatcher(router, deps={"prospects": "P", "settings": "S", "unused": "U"})
    p = push({"MsgType": "text", "MsgId": "9"})
    await d.process(p)
    assert got == {"prospects": "P", "push": p, "settings": "S"}


async def test_a_dependency_nobody_provides_is_named() -> None:
    router = Router("r")

    @router.on("oa", "message.text")
    async def wrote(push: Push, mailer: object) -> None:
        pass

    d, completions = dispatcher(router)
    with pytest.raises(TypeError, match="mailer"):
        await d.process(push({"MsgType": "text", "MsgId": "9"}))
    assert completions.done == []


async def test_processed_pushes_are_marked_with_their_attribution() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def followed(push: Push) -> None:
        push.prospect_id, push.code_id = 7, 3

    d, completions = dispatcher(router)
    await d.process(push(SUBSCRIBE, interaction_id=42))
    no_handler = push({"MsgType": "event", "Event": "LOCATION"}, interaction_id=43)
    await d.process(no_handler)
    await d.process(push(SUBSCRIBE, interaction_id=None))  # nothing stored: nothing to mark
    assert completions.done == [Done(42, 7, 3), Done(43, None, None)]


async def test_a_failing_handler_is_not_marked() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def broken(push: Push) -> None:
        raise RuntimeError("boom")

    d, completions = dispatcher(router)
    with pytest.raises(RuntimeError):
        await d.process(push(SUBSCRIBE))
    assert completions.done == []
    finished, reply = await d.within(push(SUBSCRIBE), 1.0)
    assert (finished, reply) == (False, None)
    assert completions.done == []


async def test_handler_timeout() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def stuck(push: Push) -> None:
        await asyncio.sleep(10)

    d, completions = dispatcher(router, handler_timeout=0.05)
    with pytest.raises(TimeoutError):
        await d.process(push(SUBSCRIBE))
    assert completions.done == []


async def test_within_returns_the_reply_of_quick_work() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def quick(push: Push) -> str:
        return "reply"

    d, completions = dispatcher(router)
    assert await d.within(push(SUBSCRIBE), 1.0) == (True, "reply")
    assert len(completions.done) == 1 and not d.running


async def test_slow_work_outlives_the_deadline_and_finishes() -> None:
    router = Router("r")
    release = asyncio.Event()

    @router.on("oa", "event.subscribe")
    async def slow(push: Push) -> str:
        await release.wait()
        push.prospect_id = 5
        return "too late"

    d, completions = dispatcher(router)
    started = time.monotonic()
    assert await d.within(push(SUBSCRIBE, interaction_id=9), 0.05) == (False, None)
    assert time.monotonic() - started < 0.5
    assert len(d.running) == 1 and completions.done == []
    release.set()
    await d.drain(timeout=1)
    assert completions.done == [Done(9, 5, None)] and not d.running


async def test_a_deadline_already_past_still_starts_the_work() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def quick(push: Push) -> None:
        await asyncio.sleep(0)

    d, completions = dispatcher(router)
    assert (await d.within(push(SUBSCRIBE), -1.0))[0] is False
    await d.drain(timeout=1)
    assert len(completions.done) == 1


async def test_drain_gives_up_after_its_timeout() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def stuck(push: Push) -> None:
        await asyncio.sleep(10)

    d, _ = dispatcher(router)
    await d.within(push(SUBSCRIBE), 0)
    started = time.monotonic()
    await d.drain(timeout=0.05)
    assert time.monotonic() - started < 1
    for task in list(d.running):
        task.cancel()
    await asyncio.sleep(0)
