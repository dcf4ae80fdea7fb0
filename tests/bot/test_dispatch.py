"""bot.dispatch: routers by signal kind and scene kind, dependencies by parameter name, what a
handler learned, the deadline that splits inline work from background work."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from bot.dispatch import Dispatcher, Router
from bot.intake import Done
from bot.pushes import classify
from bot.signals import CodeRef, Outcome, Signal
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
         source: str = "oa") -> Signal:
    fields = {"FromUserName": "o1", "CreateTime": "1", **kind_fields}
    return replace(classify(source, fields), interaction_id=interaction_id)


SUBSCRIBE = {"MsgType": "event", "Event": "subscribe"}
QR_SUBSCRIBE = {**SUBSCRIBE, "EventKey": "qrscene_s1"}


def dispatcher(router: Router, deps: dict[str, Any] | None = None,
               kinds: dict[str, str] | None = None, **options: Any) -> tuple[Dispatcher,
                                                                             Completions]:
    async def scene_code(s: Signal) -> CodeRef:
        kind = (kinds or {}).get(s.scene or "")
        return CodeRef(3, kind) if kind else CodeRef(None, "unknown")

    completions = Completions()
    return Dispatcher([router], deps or {}, scene_code, completions, **options), completions  # type: ignore[arg-type]


async def reply_of(d: Dispatcher, signal: Signal) -> Any:
    return (await d.process(signal)).reply


def test_a_second_handler_for_one_key_is_an_error() -> None:
    router = Router("r")
    router.on("oa", "event.subscribe")(lambda signal: None)
    with pytest.raises(ValueError, match="registered already"):
        router.on("oa", "event.subscribe")(lambda signal: None)
    router.on("oa", "event.subscribe", scene="booth")(lambda signal: None)  # another scene kind


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
    async def booth(signal: Signal) -> str:
        seen.append("booth")
        return "booth"

    @router.on("oa", "event.subscribe", scene="none")
    async def plain(signal: Signal) -> str:
        seen.append("none")
        return "none"

    @router.on("oa", "event.subscribe")
    async def anything(signal: Signal) -> str:
        seen.append("any")
        return "any"

    d, _ = dispatcher(router, kinds={"s1": "booth"})
    assert await reply_of(d, push(QR_SUBSCRIBE)) == "booth"
    assert await reply_of(d, push(SUBSCRIBE)) == "none"
    assert await reply_of(d, push({**SUBSCRIBE, "EventKey": "qrscene_nobody"})) == "any"
    assert seen == ["booth", "none", "any"]


async def test_unknown_scene_kind() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe", scene="unknown")
    async def unknown(signal: Signal) -> str:
        return "unknown"

    d, _ = dispatcher(router)
    assert await reply_of(d, push({**SUBSCRIBE, "EventKey": "qrscene_nobody"})) == "unknown"


async def test_dependencies_by_parameter_name() -> None:
    router = Router("r")
    got: dict[str, Any] = {}

    @router.on("oa", "message.text")
    async def wrote(prospects: object, signal: Signal, settings: object,
                    code: CodeRef | None) -> None:
        got.update(prospects=prospects, signal=signal, settings=settings, code=code)

    d, _ = dispatcher(router, deps={"prospects": "P", "settings": "S", "unused": "U"})
    p = push({"MsgType": "text", "MsgId": "9"})
    await d.process(p)
    assert got == {"prospects": "P", "signal": p, "settings": "S", "code": None}


async def test_a_dependency_nobody_provides_is_named() -> None:
    router = Router("r")

    @router.on("oa", "message.text")
    async def wrote(signal: Signal, mailer: object) -> None:
        pass

    d, completions = dispatcher(router)
    with pytest.raises(TypeError, match="mailer"):
        await d.process(push({"MsgType": "text", "MsgId": "9"}))
    assert completions.done == []


async def test_processed_signals_are_marked_with_what_their_handler_learned() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def followed(signal: Signal, code: CodeRef | None) -> Outcome:
        return Outcome(prospect_id=7)

    d, completions = dispatcher(router, kinds={"s1": "booth"})
    await d.process(push(QR_SUBSCRIBE, interaction_id=42))  # the scene's code: 3
    no_handler = push({"MsgType": "event", "Event": "LOCATION"}, interaction_id=43)
    await d.process(no_handler)
    await d.process(push(SUBSCRIBE, interaction_id=None))  # nothing stored: nothing to mark
    assert completions.done == [Done(42, 7, 3), Done(43, None, None)]


async def test_a_failing_handler_is_not_marked() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def broken(signal: Signal) -> None:
        raise RuntimeError("boom")

    d, completions = dispatcher(router)
    with pytest.raises(RuntimeError):
        await d.process(push(SUBSCRIBE))
    assert completions.done == []
    assert await d.within(push(SUBSCRIBE), 1.0) is None
    assert completions.done == []


async def test_handler_timeout() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def stuck(signal: Signal) -> None:
        await asyncio.sleep(10)

    d, completions = dispatcher(router, handler_timeout=0.05)
    with pytest.raises(TimeoutError):
        await d.process(push(SUBSCRIBE))
    assert completions.done == []


async def test_a_stuck_signal_in_the_background_is_stopped_and_left_for_the_worker(
        caplog: pytest.LogCaptureFixture) -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def stuck(signal: Signal) -> None:
        await asyncio.sleep(10)

    d, completions = dispatcher(router, handler_timeout=0.05)
    assert await d.within(push(SUBSCRIBE), 5.0) is None  # no reply: the handler never returned
    await d.drain(timeout=5)
    assert not d.running and completions.done == []  # unfinished: the worker retries it
    assert "took more than 0.05 s: stopped; it will be retried" in caplog.text


async def test_within_returns_the_reply_of_quick_work() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def quick(signal: Signal) -> str:
        return "reply"

    d, completions = dispatcher(router)
    outcome = await d.within(push(SUBSCRIBE), 1.0)
    assert outcome is not None and outcome.reply == "reply"
    assert len(completions.done) == 1  # nothing was left for after the reply
    await asyncio.sleep(0)  # the task's own done callbacks
    assert not d.running


async def test_slow_work_outlives_the_deadline_and_finishes() -> None:
    router = Router("r")
    release = asyncio.Event()

    @router.on("oa", "event.subscribe")
    async def slow(signal: Signal) -> Outcome:
        await release.wait()
        return Outcome(prospect_id=5, reply="too late")

    d, completions = dispatcher(router)
    assert await d.within(push(SUBSCRIBE, interaction_id=9), 0.05) is None
    assert len(d.running) == 1 and completions.done == []
    release.set()
    await d.drain(timeout=1)
    assert completions.done == [Done(9, 5, None)] and not d.running


async def test_a_deadline_already_past_still_starts_the_work() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def quick(signal: Signal) -> None:
        await asyncio.sleep(0)

    d, completions = dispatcher(router)
    assert await d.within(push(SUBSCRIBE), -1.0) is None
    await d.drain(timeout=1)
    assert len(completions.done) == 1


async def test_drain_gives_up_after_its_timeout() -> None:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def stuck(signal: Signal) -> None:
        await asyncio.sleep(10)

    d, _ = dispatcher(router)
    await d.within(push(SUBSCRIBE), 0)
    await d.drain(timeout=0.05)
    assert len(d.running) == 1  # still stuck: left to the worker's recovery after a restart
    for task in list(d.running):
        task.cancel()
    await asyncio.sleep(0)


async def test_the_reply_comes_before_the_work_left_for_after_it() -> None:
    """A handler returns its reply and the work that may follow it (`then`): the reply is
    answered at once; the signal is complete only once that work is done."""
    router = Router("r")
    release = asyncio.Event()

    async def later() -> None:
        await release.wait()

    @router.on("oa", "event.subscribe")
    async def followed(signal: Signal) -> Outcome:
        return Outcome(prospect_id=4, reply="welcome", then=(later,))

    d, completions = dispatcher(router)
    outcome = await d.within(push(SUBSCRIBE, interaction_id=11), 5.0)
    assert outcome is not None and outcome.reply == "welcome"
    # the signal is not finished while that work runs
    assert completions.done == [] and len(d.running) == 1
    release.set()
    await d.drain(timeout=1)
    assert completions.done == [Done(11, 4, None)]


async def test_failed_work_after_the_reply_leaves_the_signal_for_the_worker() -> None:
    router = Router("r")

    async def later() -> None:
        raise ConnectionRefusedError("WeChat is unreachable")

    @router.on("oa", "event.subscribe")
    async def followed(signal: Signal) -> Outcome:
        return Outcome(prospect_id=4, reply="welcome", then=(later,))

    d, completions = dispatcher(router)
    outcome = await d.within(push(SUBSCRIBE, interaction_id=12), 5.0)
    assert outcome is not None and outcome.reply == "welcome"
    await d.drain(timeout=1)
    assert completions.done == [Done(12, 4, None, finished=False)]  # attributed, not finished


def _following(after: Any) -> tuple[Dispatcher, Completions]:
    router = Router("r")

    @router.on("oa", "event.subscribe")
    async def followed(signal: Signal) -> Outcome:
        return Outcome(prospect_id=7, reply="hi")

    return dispatcher(router, after=after, after_kinds=frozenset({"event.subscribe"}))


async def test_what_follows_a_signal_hears_what_it_led_to_then_it_completes() -> None:
    seen: list[tuple[int | None, list[Done]]] = []
    d: Dispatcher

    async def after(signal: Signal, outcome: Outcome) -> None:
        seen.append((outcome.prospect_id, list(completions.done)))

    d, completions = _following(after)
    outcome = await d.process(push(SUBSCRIBE))
    assert outcome.reply == "hi"
    # `after` is told the prospect (it records it itself, with its reading of the log), and
    # the signal is finished only after it
    assert seen == [(7, [])]
    assert completions.done == [Done(1, 7, None)]


async def test_deferred_after_runs_past_the_answer_and_only_then_completes() -> None:
    release = asyncio.Event()

    async def after(signal: Signal, outcome: Outcome) -> None:
        await release.wait()

    d, completions = _following(after)
    outcome = await d.process(push(SUBSCRIBE), defer_after=True)
    assert outcome.reply == "hi"
    assert Done(1, 7, None) not in completions.done  # not complete while scoring runs
    release.set()
    await d.drain(timeout=5)
    assert completions.done[-1] == Done(1, 7, None)


async def test_an_after_that_completes_the_signal_itself_leaves_no_mark_to_write() -> None:
    async def after(signal: Signal, outcome: Outcome) -> bool:
        return True  # scoring marks the signal complete in its own transaction

    d, completions = _following(after)
    assert (await d.process(push(SUBSCRIBE))).reply == "hi"
    await d.process(push(SUBSCRIBE), defer_after=True)
    await d.drain(timeout=5)
    assert completions.done == []


async def test_a_failing_after_leaves_the_signal_unfinished_for_the_worker() -> None:
    async def after(signal: Signal, outcome: Outcome) -> None:
        raise RuntimeError("scoring failed")

    d, completions = _following(after)
    await d.process(push(SUBSCRIBE), defer_after=True)
    await d.drain(timeout=5)
    # what it led to is recorded; it is left unfinished
    assert completions.done == [Done(1, 7, None, finished=False)]
    with pytest.raises(RuntimeError, match="scoring failed"):
        await d.process(push(SUBSCRIBE))  # inline: the caller (the worker) sees it
    assert all(not done.finished for done in completions.done)


async def test_a_signal_of_another_kind_or_without_a_prospect_has_nothing_after() -> None:
    calls: list[str] = []

    async def after(signal: Signal, outcome: Outcome) -> None:
        calls.append(signal.kind)

    d, completions = _following(after)
    await d.process(push({"MsgType": "text", "Content": "hi", "MsgId": "1"}))
    assert calls == [] and completions.done == [Done(1, None, None)]
