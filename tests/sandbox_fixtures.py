"""The `wechat` fixture: a sandbox WeChat served on a loopback port, recording every call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from bot.sandbox import Sandbox, create_sandbox_app


@pytest.fixture
async def wechat() -> AsyncIterator[Sandbox]:
    """A Sandbox accepting the test accounts' credentials; `wechat.url` is its root and
    `wechat.settings_for(settings)` points a service's three WeChat roots at it."""
    from tests.conftest import base_settings  # here, not at the top: conftest imports this module

    sandbox = Sandbox(base_settings())
    server = TestServer(create_sandbox_app(sandbox), host="127.0.0.1")
    await server.start_server()
    sandbox.url = str(server.make_url("")).rstrip("/")
    try:
        yield sandbox
    finally:
        await server.close()
