"""Routing stored signals to the handlers of `handlers/`.

Handlers register on a Router by signal kind (`event.subscribe`, `message.text`,
`event.change_external_contact.add_external_contact`, `mp.login`, ...) and optionally by the
kind of code the signal's scene belongs to (`booth`, `material`, ... `expired`, `unknown`, or
`none` without a scene). They receive the signal and whatever dependencies they name as
parameters (`signal`, `code` — the scene's CodeRef — and the application's services), and
return an Outcome (or a bare reply). The first matching handler wins: one for the scene kind
before one for any scene.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.faults import OutageLog, is_outage
from bot.intake import CompletionWriter, Done
from bot.signals import CodeRef, NotYet, Outcome, Signal

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
# True when it recorded the signal complete itself (in its own transaction): no mark is left
After = Callable[[Signal, Outcome], Awaitable[bool]]
SceneResolver = Callable[[Signal], Awaitable[CodeRef | None]]
ANY = "*"
_UNTIMED = contextlib.nullcontext()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A mark nobody awaits: its failure is handled where it is marked again."""
    if not future.cancelled():
        future.exception()


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: dict[tuple[str, str, str], Handler] = {}

    def on(self, source: str, kind: str, *, scene: str = ANY) -> Callable[[Handler], Handler]:
        """Register for signals from `source` ("oa", "wecom", "mp") of `kind`; `scene` a code
        kind, "unknown" for a scene no code has, "none" for a signal without a scene."""

        def register(handler: Handler) -> Handler:
            key = (source, kind, scene)
            if key in self.handlers:
                raise ValueError(f"{self.name}: a handler for {key} is registered already")
            self.handlers[key] = handler
            return handler

        return register


class Dispatcher:
    def __init__(self, routers: list[Router], deps: dict[str, Any], scene_code: SceneResolver,
                 completions: CompletionWriter, handler_timeout: float = 30.0,
                 after: After | None = None, after_kinds: frozenset[str] = frozenset()
                 ) -> None:
        self.table: dict[tuple[str, str, str], Handler] = {}
        for router in routers:
            for key, handler in router.handlers.items():
                self.table.setdefault(key, handler)
        self.deps = deps
        self.scene_code = scene_code
        self.completions = completions
        self.handler_timeout = handler_timeout
        # what follows a handled signal of `after_kinds` that names a prospect (scoring:
        # domain.leads), the last of its work; it reads the log, so it writes the signal's own
        # prospect and code on it first, and marks it complete as it commits
        self.after = after
        self.after_kinds = after_kinds
        self.running: set[asyncio.Task[Any]] = set()
        self._params: dict[Handler, list[str]] = {}
        self.outage = OutageLog(log, "processing signals")

    def find(self, source: str, kind: str, scene_kind: str) -> Handler | None:
        return self.table.get((source, kind, scene_kind)) or self.table.get((source, kind, ANY))

    def _call(self, handler: Handler, signal: Signal, code: CodeRef | None) -> Awaitable[Any]:
        names = self._params.get(handler)
        if names is None:
            names = self._params[handler] = list(inspect.signature(handler).parameters)
        kwargs: dict[str, Any] = {}
        for name in names:
            if name == "signal":
                kwargs[name] = signal
            elif name == "code":
                kwargs[name] = code
            elif name in self.deps:
                kwargs[name] = self.deps[name]
            else:
                raise TypeError(f"{handler.__qualname__} asks for {name!r}, which nobody provides")
        return handler(**kwargs)

    async def process(self, signal: Signal,
                      replied: Callable[[Outcome], None] | None = None, *,
                      defer_after: bool = False, timed: bool = True) -> Outcome:
        """Runs the handler of a stored signal and marks it processed with what the handler
        learned. `replied` hears of the outcome as soon as the handler returns, before any work
        it left for after the reply (`Outcome.then`) runs. With `defer_after`, what follows
        the signal (`after`: scoring) goes on in a task of its own once the handler and `then`
        are done, so a caller waiting for the outcome does not wait for it; the signal is
        complete only once that is done too. Handlers get `handler_timeout` seconds (`timed`;
        `start` times its task with a timer of its own instead)."""
        code = None if signal.scene is None else await self.scene_code(signal)
        scene_kind = "none" if code is None else code.kind
        handler = self.find(signal.source, signal.kind, scene_kind)
        outcome = Outcome()
        async with asyncio.timeout(self.handler_timeout) if timed else _UNTIMED:
            if handler is not None:
                returned = await self._call(handler, signal, code)
                outcome = returned if isinstance(returned, Outcome) else Outcome(reply=returned)
            if outcome.code_id is None and code is not None:
                outcome.code_id = code.id
            if replied is not None:
                replied(outcome)
            # What follows the reply: `then`, then `after` (scoring), which records the
            # signal's prospect and code itself, in its own transaction (domain.leads), before
            # it reads the log. Work that fails leaves what was learned before it recorded (a
            # follow counts at once, however long its UnionID takes) for the worker's retry.
            try:
                # The steps are taken out first: they refer to the outcome, and a cycle through
                # it would leave every follow's objects for the garbage collector to find
                # (whose passes were the booth path's slowest answers).
                steps, outcome.then = outcome.then, ()
                for step in steps:
                    await step()
                following = self._follows(signal, outcome)
                if following and defer_after:
                    task = asyncio.create_task(self._after_then_done(signal, outcome),
                                               name=f"after-{signal.interaction_id}")
                    self.running.add(task)
                    task.add_done_callback(self._finished)
                    return outcome
                if following and await self.after(signal, outcome):  # type: ignore[misc]
                    return outcome  # marked complete by `after`
            except BaseException:
                self._learned(signal, outcome)
                raise
        self._done(signal, outcome)
        return outcome

    def _learned(self, signal: Signal, outcome: Outcome) -> None:
        """Records the prospect and code a signal led to, leaving it unfinished."""
        if signal.interaction_id is not None and outcome.prospect_id is not None:
            self.completions.submit(Done(signal.interaction_id, outcome.prospect_id,
                                         outcome.code_id, finished=False)
                                    ).add_done_callback(_retrieved)

    def _follows(self, signal: Signal, outcome: Outcome) -> bool:
        return (self.after is not None and outcome.prospect_id is not None
                and signal.kind in self.after_kinds)

    def _done(self, signal: Signal, outcome: Outcome) -> None:
        if signal.interaction_id is not None:
            self.completions.submit(Done(signal.interaction_id, outcome.prospect_id,
                                         outcome.code_id))

    async def _after_then_done(self, signal: Signal, outcome: Outcome) -> Outcome:
        try:
            async with asyncio.timeout(self.handler_timeout):
                marked = await self.after(signal, outcome)  # type: ignore[misc]
        except BaseException:
            self._learned(signal, outcome)
            raise
        if not marked:
            self._done(signal, outcome)
        return outcome

    def start(self, signal: Signal,
              replied: Callable[[Outcome], None] | None = None) -> asyncio.Task[Outcome]:
        """Processes in a task of its own, so that it outlives the request that brought it;
        one still running after `handler_timeout` seconds is stopped (the worker retries it).
        A timer per task rather than asyncio.timeout, whose bookkeeping showed in the booth
        path's profile."""
        task = asyncio.create_task(self.process(signal, replied, timed=False),
                                   name=f"signal-{signal.interaction_id}")
        timer = asyncio.get_running_loop().call_later(self.handler_timeout, self._overdue, task)
        self.running.add(task)
        task.add_done_callback(self._finished)
        task.add_done_callback(lambda _: timer.cancel())
        return task

    def _overdue(self, task: asyncio.Task[Any]) -> None:
        if not task.done():
            log.error("processing %s took more than %g s: stopped; it will be retried",
                      task.get_name(), self.handler_timeout)
            task.cancel()

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self.outage.succeeded()
        elif isinstance(exc, NotYet):
            log.info("processing %s waits (%s); it will be retried", task.get_name(), exc)
        elif is_outage(exc):  # stored already: the worker retries it once the service is back
            self.outage.failed(exc)
        else:
            log.error("processing %s failed; it will be retried", task.get_name(), exc_info=exc)

    def acts_on(self, signal: Signal) -> bool:
        """False for a signal without a scene that no handler takes: it is stored as processed
        and nothing runs (one with a scene needs the scene's code looked up first)."""
        return signal.scene is not None or self.find(signal.source, signal.kind,
                                                     "none") is not None

    async def within(self, signal: Signal, seconds: float) -> Outcome | None:
        """Starts processing; the outcome when the handler returned within `seconds` (what it
        left for after the reply goes on), else None and it all goes on in the background."""
        loop = asyncio.get_running_loop()
        heard: asyncio.Future[Outcome | None] = loop.create_future()

        def replied(outcome: Outcome | None) -> None:
            if not heard.done():
                heard.set_result(outcome)

        task = self.start(signal, replied)
        if seconds <= 0:
            return None
        # None when the time is up or the handler failed (the worker retries it); a future and
        # a timer rather than asyncio.wait, which showed in the booth path's profile
        task.add_done_callback(lambda _: replied(None))
        timer = loop.call_later(seconds, replied, None)
        try:
            return await heard
        finally:
            timer.cancel()

    async def drain(self, timeout: float) -> None:
        """At shutdown: let running work finish; what does not is recovered on restart."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)
