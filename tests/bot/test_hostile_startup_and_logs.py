"""Hostile input at the edges: tracebacks and formatted phones in the logs, bad settings and a
lost key file at startup, the SQLite file's mode, and a database outage while running."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestServer

import bot.intake
from bot import keys
from bot.app import create_app
from bot.db import close_db
from bot.logs import setup_logging
from bot.settings import Secret, Settings
from models import IdentityKind
from tests.bot.kit import eventually, oa_fields, oa_request, service
from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
PHONE = "13800138000"
OTHER_PHONE = "13912345678"
GOOD_KEY = "a-secret-key-long-enough-0123456789abcdef"
TIMEOUT = 60  # seconds a subprocess may take: generous, never asserted on
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
LATENCY = re.compile(r" \d+\.\dms$")


# --- helpers ----------------------------------------------------------------------------------

@contextmanager
def service_logging() -> Iterator[logging.Handler]:
    """The service's own logging set-up (DEBUG) writing to the current (captured) stderr, next
    to pytest's capturing handlers; yields the service's handler."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in ("tortoise", "aiosqlite", "asyncio")}
    setup_logging(logging.DEBUG)
    handler = root.handlers[0]
    root.handlers.extend(saved)
    try:
        yield handler
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        for name, value in quiet.items():
            logging.getLogger(name).setLevel(value)


async def raw_request(server: TestServer, head: bytes) -> tuple[int, bytes]:
    """Sends `head` as is on a new connection; (status, body) of the answer."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # until the server closes
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def get(target: str, *headers: bytes) -> bytes:
    lines = [f"GET {target} HTTP/1.1".encode(), b"Host: scrm.test", *headers,
             b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def auth(extra: bytes = b"") -> bytes:
    return b"Authorization: Bearer " + ADMIN_TOKEN.encode() + extra


def digits_of(line: str) -> str:
    """The digits of a log line's message (decoded), without the timestamp and the latency:
    whatever separators a phone was written with, its 11 digits show here in a row."""
    message = LATENCY.sub("", TIMESTAMP.sub("", line))
    return re.sub(r"\D", "", unquote(message))


def assert_one_line_a_record(output: str) -> None:
    """Every line of the output starts a record: no traceback, no raw bytes on lines of
    their own."""
    lines = output.splitlines()
    assert lines, "nothing was logged"
    for line in lines:
        assert TIMESTAMP.match(line), line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
    env.update(variables)
    return env


def run_bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` from the project's root, umask 022 (as a default shell has it)."""
    command = [sys.executable, "-m", "bot", *args]
    if args[0] == "serve":
        command += ["--port", str(free_port())]
    try:
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT, preexec_fn=lambda: os.umask(0o022))
    except subprocess.TimeoutExpired:
        pytest.fail(f"`python -m bot {' '.join(args)}` was still running after {TIMEOUT}s")


def assert_one_line_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert name in lines[-1], result.stderr
    assert sum(1 for line in lines if line.startswith("error:")) == 1, result.stderr


def sqlite_settings(path: Path) -> Settings:
    """The embedded default on `path`: no SCRM_SECRET_KEY, so a key file beside it."""
    return Settings(database_url=f"sqlite://{path}", admin_token=Secret(ADMIN_TOKEN))


async def earlier_run(settings: Settings, phone: str | None = None) -> None:
    """An earlier life of the database: the app started (migrating it), `phone` stored as an
    identity if given, the app stopped. It runs in a task with a context of its own, as in
    another process: tortoise keeps its connections in a context variable, and a task that
    has closed them cannot migrate again."""

    async def run() -> None:
        server = TestServer(create_app(settings, worker=False))
        await server.start_server()
        try:
            if phone is not None:
                await server.app[keys.PROSPECTS].resolve(IdentityKind.PHONE, phone)
        finally:
            await server.close()

    await asyncio.create_task(run(), context=contextvars.Context())


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- 1. tracebacks are scrubbed -----------------------------------------------------------------

async def test_a_non_utf8_authorization_header_is_a_401_and_leaks_nothing(
        aiohttp_client: Any, app_settings: Settings, capsys: Any) -> None:
    with service_logging():
        server = TestServer(create_app(app_settings, worker=False))
        await aiohttp_client(server)
        status, _ = await raw_request(
            server, get(f"/admin/prospects?identity=phone:{PHONE}", auth(b"\xff\xfe")))
        output = capsys.readouterr().err
    assert status == 401
    assert ADMIN_TOKEN not in output
    assert PHONE not in output
    assert_one_line_a_record(output)


async def test_a_header_over_8_kib_is_a_400_logged_on_one_line_without_the_token(
        aiohttp_client: Any, app_settings: Settings, capsys: Any) -> None:
    with service_logging():
        server = TestServer(create_app(app_settings, worker=False))
        await aiohttp_client(server)
        status, _ = await raw_request(
            server, get(f"/admin/prospects?identity=phone:{PHONE}", auth(b"A" * 9000)))
        output = capsys.readouterr().err
    assert status == 400
    assert "Traceback" not in output
    assert_one_line_a_record(output)
    assert ADMIN_TOKEN not in output
    assert PHONE not in output


def test_the_handler_scrubs_a_formatted_traceback(capsys: Any) -> None:
    with service_logging() as handler:
        try:
            raise RuntimeError(f"lookup of {OTHER_PHONE} with Bearer sometoken123 failed")
        except RuntimeError:
            record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1, "lookup failed",
                                       None, sys.exc_info())
        assert handler.filter(record)
        text = handler.format(record)
    assert "Traceback" in text and "RuntimeError" in text  # the traceback is kept...
    assert OTHER_PHONE not in text  # ...with what it quotes masked
    assert "sometoken123" not in text
    assert "139****5678" in text


# --- 2. phones however they are written --------------------------------------------------------

FORMATTED = {
    "138-0013-8000": PHONE,
    "139%201234%205678": OTHER_PHONE,
    "%2B86%2013912345678": OTHER_PHONE,
    "%31%33%38%30%30%31%33%38%30%30%30": PHONE,
}


async def test_formatted_phones_are_found_and_never_logged_in_full(
        aiohttp_client: Any, app_settings: Settings, capsys: Any) -> None:
    with service_logging():
        server = TestServer(create_app(app_settings, worker=False))
        client = await aiohttp_client(server)
        prospects = client.app[keys.PROSPECTS]
        ids = {phone: await prospects.resolve(IdentityKind.PHONE, phone)
               for phone in (PHONE, OTHER_PHONE)}
        for written, phone in FORMATTED.items():
            status, body = await raw_request(
                server, get(f"/admin/prospects?identity=phone:{written}", auth()))
            assert status == 200, (written, body)
            assert [p["id"] for p in json.loads(body)] == [ids[phone]], written
        logging.getLogger("bot").info("a phone written 139 1234 5678 and +86 138-0013-8000")
        output = capsys.readouterr().err
    for line in output.splitlines():
        digits = digits_of(line)
        assert PHONE not in digits and OTHER_PHONE not in digits, line
    assert "138****8000" in output and "139****5678" in output


# --- 3. bad settings stop the start with one line ----------------------------------------------

BAD_SETTINGS = [
    ("SCRM_DATABASE_URL", "mysql://u@h/db"),
    ("SCRM_DATABASE_URL", "postgres://u@h:notaport/db"),
    ("SCRM_OA_AES_KEY", "tooshort"),
    ("SCRM_WECOM_AGENT_ID", "abc"),
    ("SCRM_REDIS_URL", "http://x"),
    ("SCRM_SECRET_KEY", "short"),
]


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize("variable, value", BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_the_variable(
        tmp_path: Path, command: str, variable: str, value: str) -> None:
    env = environment(SCRM_DATABASE_URL=f"sqlite://{tmp_path / 'scrm.sqlite3'}",
                      SCRM_SECRET_KEY=GOOD_KEY)
    env[variable] = value
    assert_one_line_naming(run_bot(command, env=env), variable)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_postgres_is_one_line_naming_the_variable(command: str) -> None:
    env = environment(SCRM_DATABASE_URL="postgres://u@127.0.0.1:1/db", SCRM_SECRET_KEY=GOOD_KEY)
    assert_one_line_naming(run_bot(command, env=env), "SCRM_DATABASE_URL")


# --- 4. the key file beside the SQLite database ------------------------------------------------

async def test_a_lost_key_file_is_refused_while_sealed_data_exists(tmp_path: Path) -> None:
    from bot.errors import SettingError

    settings = sqlite_settings(tmp_path / "scrm.sqlite3")
    await earlier_run(settings, phone=PHONE)
    key_file = tmp_path / "scrm.sqlite3.secret"
    key_file.unlink()
    with pytest.raises(SettingError) as refused:
        create_app(settings, worker=False)
    assert str(key_file) in refused.value.message
    assert not key_file.exists()  # not replaced by a key that opens nothing


async def test_serve_refuses_a_lost_key_file_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "scrm.sqlite3"
    await earlier_run(sqlite_settings(database), phone=PHONE)
    key_file = tmp_path / "scrm.sqlite3.secret"
    key_file.unlink()
    result = run_bot("serve", env=environment(SCRM_DATABASE_URL=f"sqlite://{database}"))
    assert_one_line_naming(result, str(key_file))
    assert not key_file.exists()


@pytest.mark.parametrize("content", [b"", b"0123456789", b"\xff\xfe" + b"k" * 40],
                         ids=["empty", "ten-characters", "non-ascii"])
def test_a_key_file_that_holds_no_key_is_refused(tmp_path: Path, content: bytes) -> None:
    from bot.errors import SettingError

    key_file = tmp_path / "scrm.sqlite3.secret"
    key_file.write_bytes(content)
    with pytest.raises(SettingError) as refused:
        create_app(sqlite_settings(tmp_path / "scrm.sqlite3"), worker=False)
    assert str(key_file) in refused.value.message
    assert key_file.read_bytes() == content


async def test_a_replaced_key_file_is_refused_at_startup_while_sealed_data_exists(
        aiohttp_client: Any, tmp_path: Path) -> None:
    from bot.errors import SettingError

    settings = sqlite_settings(tmp_path / "scrm.sqlite3")
    await earlier_run(settings, phone=PHONE)
    key_file = tmp_path / "scrm.sqlite3.secret"
    other_key = "another-valid-key-0123456789abcdefghijklmn"
    key_file.write_text(other_key)
    app = create_app(settings, worker=False)
    try:
        with pytest.raises(SettingError) as refused:
            await aiohttp_client(app)
    finally:
        await close_db()  # the database context failed before it could close it
    assert "SCRM_SECRET_KEY" in refused.value.message
    assert str(key_file) in refused.value.message
    assert key_file.read_text() == other_key


async def test_without_sealed_data_a_lost_key_file_is_made_again(
        aiohttp_client: Any, tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path / "scrm.sqlite3")
    await earlier_run(settings)
    key_file = tmp_path / "scrm.sqlite3.secret"
    key_file.unlink()
    client = await aiohttp_client(create_app(settings, worker=False))
    assert key_file.exists()
    assert client.app[keys.SETTINGS].secret_key == key_file.read_text().strip()


# --- 5. the SQLite file is its owner's alone ---------------------------------------------------

@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-0644"])
def test_migrate_makes_the_sqlite_file_0600(tmp_path: Path, existing: bool) -> None:
    database = tmp_path / "scrm.sqlite3"
    if existing:
        database.touch()
        database.chmod(0o644)
    result = run_bot("migrate", env=environment(SCRM_DATABASE_URL=f"sqlite://{database}"))
    assert result.returncode == 0, result.stderr
    assert mode(database) == 0o600


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-0644"])
async def test_startup_makes_the_sqlite_file_0600(aiohttp_client: Any, tmp_path: Path,
                                                  existing: bool) -> None:
    database = tmp_path / "scrm.sqlite3"
    if existing:
        database.touch()
        database.chmod(0o644)
    with umask(0o022):
        await aiohttp_client(create_app(sqlite_settings(database), worker=False))
    assert mode(database) == 0o600


# --- 6. a database outage while running --------------------------------------------------------

async def test_a_push_during_an_outage_is_a_503(client: Any, monkeypatch: Any) -> None:
    async def refused(rows: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(bot.intake, "insert_new", refused)
    query, body = oa_request(oa_fields(MsgType="text", Content="hi", MsgId=21))
    response = await client.post("/wechat/oa", params=query, data=body)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "service_unavailable"


async def test_the_worker_logs_an_outage_once_and_its_end_once(
        aiohttp_client: Any, app_settings: Settings, monkeypatch: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    client = await service(aiohttp_client, app_settings)
    worker = client.app[keys.WORKER]
    calls = []

    async def flaky(limit: int = 100) -> int:
        calls.append(limit)
        if len(calls) <= 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return 0

    monkeypatch.setattr(worker, "recover", flaky)
    worker.interval = 0.01
    worker.start()
    try:
        async def five_rounds() -> bool:
            return len(calls) >= 5

        await eventually(five_rounds)
    finally:
        await worker.stop()
    ours = [r for r in caplog.records if r.name.startswith("bot.worker")]
    assert not [r for r in ours if r.exc_info], "a traceback for an outage"
    assert len([r for r in ours if r.levelno == logging.WARNING]) == 1
    assert len([r for r in ours if r.levelno >= logging.ERROR]) == 0
    resumed = [r for r in ours if r.levelno == logging.INFO and "resumed" in r.getMessage()]
    assert len(resumed) == 1


async def test_the_outbox_sender_logs_an_outage_once_and_its_end_once(
        aiohttp_client: Any, app_settings: Settings, monkeypatch: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    client = await service(aiohttp_client, app_settings)
    sender = client.app[keys.SENDER]
    calls = []

    async def flaky(limit: int = 20) -> int:
        calls.append(limit)
        if len(calls) <= 3:
            raise ConnectionRefusedError(111, "Connection refused")
        return 0

    monkeypatch.setattr(sender, "send_due", flaky)
    sender.interval = 0.01
    sender.start()
    try:
        async def five_rounds() -> bool:
            return len(calls) >= 5

        await eventually(five_rounds)
    finally:
        await sender.stop()
    ours = [r for r in caplog.records if r.name.startswith("domain.outbox")]
    assert not [r for r in ours if r.exc_info], "a traceback for an outage"
    assert [r.levelno for r in ours if r.levelno >= logging.WARNING] == [logging.WARNING]
    assert [r.getMessage() for r in ours if "resumed" in r.getMessage()] == [
        "sending outbound messages resumed"]
