"""A local stand-in for WeChat's APIs (OA, mini program, WeCom): `python -m bot sandbox`.

See docs/wechat.md §10 for what it emulates. Tests use the `wechat` fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from aiohttp import web

from bot.sandbox import oa, wecom  # noqa: F401  (their paths register on import)
from bot.sandbox.api import setup_api_routes
from bot.sandbox.control import setup_control_routes
from bot.sandbox.state import SANDBOX, Sandbox
from bot.settings import Settings

__all__ = ["Sandbox", "create_sandbox_app", "run_sandbox"]


def create_sandbox_app(sandbox: Sandbox) -> web.Application:
    """The WeChat paths of all three hosts plus /sandbox/... on one root."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[SANDBOX] = sandbox
    setup_api_routes(app)
    setup_control_routes(app)
    return app


async def run_sandbox(settings: Settings, host: str = "127.0.0.1", port: int = 8081, *,
                      sandbox: Sandbox | None = None) -> None:
    """Serve a sandbox until cancelled or SIGTERM; prints the URL it listens on."""
    sandbox = sandbox or Sandbox(settings)
    runner = web.AppRunner(create_sandbox_app(sandbox), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port
        sandbox.url = f"http://{host}:{bound}"
        print(f"WeChat sandbox listening on {sandbox.url} (control routes: "
              f"{sandbox.url}/sandbox/)", flush=True)
        for what, account in sandbox.accounts().items():
            print(f"  {what}: {account}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
    finally:
        await runner.cleanup()
