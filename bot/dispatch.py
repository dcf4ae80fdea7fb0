"""Routing stored pushes to the handlers of `handlers/`.

Handlers register on a Router by push kind (`event.subscribe`, `message.text`,
`event.change_external_contact.add_external_contact`, ...) and optionally by the kind of code the
push's scene belongs to (`booth`, `material`, ... or `unknown`). They receive the push and whatever
dependencies they name as parameters. The first matching handler wins: one for the scene kind
before one for any scene.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.faults import OutageLog, is_outage
from bot.intake import CompletionWriter, Done
from bot.pushes import Push

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
SceneResolver = Callable[[Push], Awaitable[str | None]]
ANY = "*"


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: dict[tuple[str, str, str], Handler] = {}

    def on(self, source: str, kind: str, *, scene: str = ANY) -> Callable[[Handler], Handler]:
        """Register for pushes from `source` ("oa", "wecom") of `kind`; `scene` a code kind,
        "unknown" for a scene no code has, "none" for a push without a scene."""

        def register(handler: Handler) -> Handler:
            key = (source, kind, scene)
            if key in self.handlers:
                raise ValueError(f"{self.name}: a handler for {key} is registered already")
            self.handlers[key] = handler
            return handler

        return register


class Dispatcher:
    def __init__(self, routers: list[Router], deps: dict[str, Any],
                 scene_kind: SceneResolver, completions: CompletionWriter,
                 handler_timeout: float = 30.0) -> None:
        self.table: dict[tuple[str, str, str], Handler] = {}
        for router in routers:
            for key, handler in router.handlers.items():
                self.table.setdefault(key, handler)
        self.deps = deps
        self.scene_kind = scene_kind
        self.completions = completions
        self.handler_timeout = handler_timeout
        self.running: set[asyncio.Task[Any]] = set()
        self._params: dict[Handler, list[str]] = {}
        self.outage = OutageLog(log, "processing pushes")

    def find(self, source: str, kind: str, scene_kind: str) -> Handler | None:
        return self.table.get((source, kind, scene_kind)) or self.table.get((source, kind, ANY))

    def _call(self, handler: Handler, push: Push) -> Awaitable[Any]:
        names = self._params.get(handler)
        if names is None:
            names = self._params[handler] = list(inspect.signature(handler).parameters)
        kwargs: dict[str, Any] = {}
        for name in names:
            if name == "push":
                kwargs[name] = push
            elif name in self.deps:
                kwargs[name] = self.deps[name]
            else:
                raise TypeError(f"{handler.__qualname__} asks for {name!r}, which nobody provides")
        return handler(**kwargs)

    async def process(self, push: Push) -> Any:
        """Runs the handler of a stored push and marks it processed; returns the handler's reply."""
        scene_kind = "none" if push.scene is None else (await self.scene_kind(push) or "unknown")
        handler = self.find(push.source, push.kind, scene_kind)
        reply = None
        if handler is not None:
            async with asyncio.timeout(self.handler_timeout):
                reply = await self._call(handler, push)
        if push.interaction_id is not None:
            self.completions.submit(Done(push.interaction_id, push.prospect_id, push.code_id))
        return reply

    def start(self, push: Push) -> asyncio.Task[Any]:
        """Processes in a task of its own, so that it outlives the request that brought it."""
        task = asyncio.create_task(self.process(push), name=f"push-{push.interaction_id}")
        self.running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self.outage.succeeded()
        elif is_outage(exc):  # stored already: the worker retries it once the service is back
            self.outage.failed(exc)
        else:
            log.error("processing %s failed; it will be retried", task.get_name(), exc_info=exc)

    def acts_on(self, push: Push) -> bool:
        """False for a push without a scene that no handler takes: it is stored as processed and
        nothing runs (a push with a scene needs the scene's kind looked up first)."""
        return push.scene is not None or self.find(push.source, push.kind, "none") is not None

    async def within(self, push: Push, seconds: float) -> tuple[bool, Any]:
        """Starts processing; (True, reply) when it finished in `seconds`, else (False, None) and
        it goes on in the background."""
        task = self.start(push)
        if seconds <= 0:
            return False, None
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done or task.cancelled() or task.exception() is not None:
            return False, None
        return True, task.result()

    async def drain(self, timeout: float) -> None:
        """At shutdown: let running work finish; what does not is recovered on restart."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)
