"""No log line holds a full phone, a session_key, an access token, a session token or a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot import keys
from bot.app import create_app
from bot.logs import AccessLogger, ScrubFilter, scrub, setup_logging
from bot.sandbox import events
from bot.sandbox.pushes import check_oa_url
from models import IdentityKind
from tests.bot.kit import OPENID, oa_fields, oa_request, wecom_fields, wecom_request
from tests.conftest import ADMIN_TOKEN, OA_AES_KEY, WECOM_AES_KEY

PHONE = "13800138000"


@pytest.mark.parametrize("raw,hidden", [
    ("/cgi-bin/user/info?access_token=ACCESS123&openid=o1", "ACCESS123"),
    ("/sns/jscode2session?appid=wx1&secret=S3CR3T&js_code=JSCODE9&grant_type=x", "S3CR3T"),
    ("/sns/jscode2session?appid=wx1&secret=S3CR3T&js_code=JSCODE9&grant_type=x", "JSCODE9"),
    ("/cgi-bin/gettoken?corpid=wx&corpsecret=CORPSECRET", "CORPSECRET"),
    ("/wechat/oa?signature=abc123&timestamp=1&nonce=2&echostr=ECHO77", "ECHO77"),
    ("/wechat/oa?signature=abc123&timestamp=1&nonce=2", "abc123"),
    ("/wechat/wecom?msg_signature=deadbeef&timestamp=1", "deadbeef"),
    ("session_key=SK%2Bxx%3D%3D&x=1", "SK%2Bxx"),
    ("/mp/login?code=LOGINCODE", "LOGINCODE"),
    ("Authorization: Bearer eyJhbGciOi.abc-def_ghi", "eyJhbGciOi"),
    ("/admin/prospects?identity=phone:13800138000", "13800138000"),
    ("call +8613912345678 now", "13912345678"),
    ("token=T0K3N&password=PW", "T0K3N"),
    ("token=T0K3N&password=PW", "=PW"),
    ('"GET /o/MjE3OTY3Nzg1ODUu5Snr5p8SYC3fjnlg HTTP/1.1" 200', "MjE3OTY3Nzg1ODUu5Snr5p8SYC3fjnlg"),
    ("POST /o/MjE3OTY3Nzg1ODUu5Snr5p8SYC3fjnlg/accept", "5Snr5p8SYC3fjnlg"),
])
def test_scrub_masks_query_strings_tokens_and_phones(raw: str, hidden: str) -> None:
    clean = scrub(raw)
    assert hidden not in clean
    assert clean != raw


def test_scrub_keeps_what_is_harmless() -> None:
    assert scrub("/wechat/oa?timestamp=1714036504&nonce=1514711492&openid=o1") == (
        "/wechat/oa?timestamp=1714036504&nonce=1514711492&openid=o1")
    assert scrub("phone:13800138000") == "phone:138****8000"
    assert scrub("order 12345678901234 shipped") == "order 12345678901234 shipped"


def test_the_filter_scrubs_arguments_too() -> None:
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "bound %s with %s",
                               (PHONE, "access_token=ABC"), None)
    assert ScrubFilter().filter(record)
    assert record.getMessage() == "bound 138****8000 with access_token=***"


@contextmanager
def scrubbed_logging() -> Iterator[None]:
    """The service's own logging set-up (DEBUG) writing to the current (captured) stderr, next
    to pytest's capturing handlers."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("tortoise", "aiosqlite", "asyncio")}
    setup_logging(logging.DEBUG)
    root.handlers.extend(saved)
    try:
        yield
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        for name, value in quiet.items():
            logging.getLogger(name).setLevel(value)


async def test_a_whole_flow_logs_no_secret(aiohttp_client, app_settings, wechat, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    with scrubbed_logging():
        await a_whole_flow(aiohttp_client, app_settings, wechat, capsys, caplog)


async def a_whole_flow(aiohttp_client: Any, app_settings: Any, wechat: Any, capsys: Any,
                       caplog: Any) -> None:
    server = TestServer(create_app(app_settings, worker=False))
    await server.start_server(access_log_class=AccessLogger)  # as `python -m bot serve` runs
    client = await aiohttp_client(server)
    app = client.app
    url = str(client.make_url("/wechat/oa"))
    assert (await check_oa_url(wechat, url, "4375120948345356249")).ok
    assert (await wechat.push_oa(url, events.subscribe(OPENID, scene="booth1"))).ok
    query, body = oa_request(oa_fields(MsgType="text", Content=f"call me {PHONE}", MsgId=3))
    assert (await client.post("/wechat/oa", params=query, data=body)).status == 200
    query, body = wecom_request(wecom_fields(ChangeType="add_external_contact", UserID="u",
                                             ExternalUserID="wmEXTERNAL"))
    assert (await client.post("/wechat/wecom", params=query, data=body)).status == 200
    bad = await client.post("/wechat/oa", params={**query, "signature": "0"}, data=body)
    assert bad.status == 403

    login = await client.post("/mp/login", json={"code": wechat.issue_login_code(OPENID)})
    session_token = (await login.json())["token"]
    session_key = await app[keys.STORE].get(f"scrm:mp:session_key:{OPENID}")
    assert session_key
    reused = await client.post("/mp/login", json={"code": "0" * 32})
    assert reused.status == 422

    prospect_id = await app[keys.PROSPECTS].resolve(IdentityKind.PHONE, PHONE)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    found = await client.get(f"/admin/prospects?identity=phone:{PHONE}", headers=auth)
    assert found.status == 200
    assert (await client.get(f"/admin/prospects/{prospect_id}", headers=auth)).status == 200
    assert (await client.get("/admin/prospects/1",
                             headers={"Authorization": "Bearer guess"})).status == 401
    await app[keys.WECHAT].oa.create_qrcode("booth1")  # fetches an access token
    access_tokens = [token.value for token in wechat.tokens.values()]
    assert access_tokens
    logging.getLogger("bot").info("a line about %s", PHONE)

    output = capsys.readouterr().err
    assert "Logging error" not in output
    assert '"GET /admin/prospects?identity=phone:138****8000" 200' in output  # our access log
    assert "138****8000" in output
    secrets = [PHONE, ADMIN_TOKEN, session_key, session_token, OA_AES_KEY, WECOM_AES_KEY,
               str(app_settings.secret_key), "oa-test-secret", "mp-test-secret",
               "wecom-test-secret", *access_tokens]
    for secret in secrets:
        assert secret not in output, secret
    ours = [r.getMessage() for r in caplog.records
            if r.name.split(".")[0] in ("bot", "domain", "handlers", "miniprogram_api")]
    for secret in [session_key, session_token, ADMIN_TOKEN, *access_tokens]:
        assert not any(secret in line for line in ours), secret


@pytest.mark.parametrize("path, query", [
    ("/wechat/wecom", f"msg_signature=abc&echostr=SECRETECHO&x={PHONE}"),
    ("/admin/prospects", f"identity=phone:{PHONE}&access_token=SECRETECHO"),
])
def test_access_logger_scrubs_the_query(caplog: Any, path: str, query: str) -> None:
    class Request:
        remote = "127.0.0.1"
        method = "GET"

    Request.path, Request.query_string = path, query  # type: ignore[attr-defined]
    Request.path_qs = f"{path}?{query}"  # type: ignore[attr-defined]

    class Response:
        status = 200

    logger = logging.getLogger("test.access")
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="test.access"):
        AccessLogger(logger, "").log(Request(), Response(), 0.001)  # type: ignore[arg-type]
    line = caplog.records[-1].getMessage()
    assert "SECRETECHO" not in line and PHONE not in line and path in line


@pytest.mark.parametrize("path, status, logged", [
    ("/wechat/oa", 200, False), ("/wechat/oa", 403, True), ("/admin/prospects", 200, True),
    ("/mp/reads", 200, False), ("/mp/reads", 404, True), ("/mp/profile", 200, True)])
def test_answered_pushes_are_debug_lines(caplog: Any, path: str, status: int,
                                         logged: bool) -> None:
    class Request:
        remote, method, query_string = "127.0.0.1", "POST", ""

    Request.path = Request.path_qs = path  # type: ignore[attr-defined]

    class Response:
        pass

    Response.status = status  # type: ignore[attr-defined]
    logger = logging.getLogger("test.access.levels")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.INFO, logger="test.access.levels"):
        AccessLogger(logger, "").log(Request(), Response(), 0.001)  # type: ignore[arg-type]
    assert bool(caplog.records) is logged
