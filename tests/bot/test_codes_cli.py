"""`python -m bot codes issue ...`: a batch issued through the sandbox and printed on an A4 PDF
sheet, with a progress bar; run in-process and as the real command."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import parser
from bot.codes_cli import issue_codes
from bot.db import close_db, init_db
from bot.sandbox import Sandbox
from models import Code, CodeArtwork, Material, Salesperson
from tests.conftest import base_settings

ROOT = Path(__file__).resolve().parents[2]


def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page(?!s)", pdf))


def environment(database_url: str, redis_url: str | None, wechat: Sandbox) -> dict[str, str]:
    """SCRM_* variables of a service whose WeChat is the sandbox."""
    s = base_settings()
    assert wechat.url is not None
    env = {
        "SCRM_DATABASE_URL": database_url, "SCRM_WECHAT_API_BASE": wechat.url,
        "SCRM_WECHAT_MP_BASE": wechat.url, "SCRM_WECOM_API_BASE": wechat.url,
        "SCRM_OA_APPID": str(s.oa_appid), "SCRM_OA_SECRET": str(s.oa_secret),
        "SCRM_MP_APPID": str(s.mp_appid), "SCRM_MP_SECRET": str(s.mp_secret),
        "SCRM_WECOM_CORPID": str(s.wecom_corpid), "SCRM_WECOM_SECRET": str(s.wecom_secret),
    }
    if redis_url:
        env["SCRM_REDIS_URL"] = redis_url
    return env


async def make(database_url: str, *rows: Any) -> list[int]:
    """Rows made before the command runs, in a task of their own: Tortoise keeps its state per
    context, and a closed one would stand in the way of the command's own set-up."""

    async def create() -> list[int]:
        await init_db(database_url)
        try:
            return [(await model.create(**fields)).id for model, fields in rows]
        finally:
            await close_db()

    return await asyncio.create_task(create())


async def codes_in(database_url: str) -> list[Code]:
    await init_db(database_url)
    try:
        found = await Code.all().order_by("serial")
        for code in found:
            code.has_art = await CodeArtwork.filter(code_id=code.id).exists()  # type: ignore
        return found
    finally:
        await close_db()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str | None,
            wechat: Sandbox) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("SCRM_") and not name.startswith("SCRM_TEST_"):
            monkeypatch.delenv(name)
    env = environment(database_url, redis_url, wechat)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def test_a_batch_printed_on_a_sheet_in_process(cli_env, database_url, wechat, tmp_path,
                                                     capsys):
    [material] = await make(database_url, (Material, {"title": "智能制造白皮书",
                                                      "kind": "whitepaper"}))
    sheet = tmp_path / "out.pdf"
    args = parser().parse_args(["codes", "issue", "--kind", "material", "--material-id",
                                str(material), "--count", "25", "--sheet", str(sheet),
                                "--tags", "宣传册, 2026"])
    assert await issue_codes(args) == 0
    out, err = capsys.readouterr()
    # the progress bars (tqdm on stderr): issuing, then printing
    assert re.search(r"issuing: 100%.*25/25", err) and re.search(r"printing: 100%.*25/25", err)
    assert f"sheet: {sheet} (2 pages)" in out and "issued 25 material code(s) on mp" in out
    pdf = sheet.read_bytes()
    assert pdf.startswith(b"%PDF-") and pages(pdf) == 2  # 20 codes an A4 page
    assert not Path(f"{sheet}.part").exists()
    assert len(wechat.wxacodes) == 25
    codes = await codes_in(database_url)
    assert [c.serial for c in codes] == list(range(1, 26))
    assert len({c.scene for c in codes}) == 25 and len({c.batch for c in codes}) == 1
    assert all(c.ready and c.has_art and c.tags == ["宣传册", "2026"]  # type: ignore[attr-defined]
               for c in codes)
    # a batch too long to list: its ids and serials as ranges, and where to list them
    assert (f"ids {codes[0].id}–{codes[-1].id}, serials 1–25; list them with "
            f"GET /admin/codes?batch={codes[0].batch}") in out


async def test_a_small_batch_lists_each_code_and_oa_codes_take_expire_days(
        cli_env, database_url, tmp_path, capsys):
    [person] = await make(database_url, (Salesperson, {"name": "王芳", "team": "华东"}))
    args = parser().parse_args(["codes", "issue", "--kind", "salesperson", "--channel", "oa",
                                "--salesperson-id", str(person), "--expire-days", "7"])
    assert await issue_codes(args) == 0
    [code] = await codes_in(database_url)
    out = capsys.readouterr().out
    assert code.expires_at is not None
    assert 6.9 * 86400 < (code.expires_at - code.created_at).total_seconds() <= 7 * 86400
    assert f"expiring {code.expires_at:%Y-%m-%d %H:%M} UTC" in out
    assert f"id {code.id}  scene {code.scene}  image /admin/codes/{code.id}/image.png" in out
    for bad in ("0", "31"):
        args = parser().parse_args(["codes", "issue", "--kind", "salesperson", "--channel",
                                    "oa", "--salesperson-id", str(person), "--expire-days", bad])
        assert await issue_codes(args) == 2
        assert "`expire_days` must be an integer from 1 to 30" in capsys.readouterr().err


async def test_one_code_as_a_png(cli_env, database_url, tmp_path, capsys):
    [person] = await make(database_url, (Salesperson, {"name": "王芳", "team": "华东"}))
    png = tmp_path / "card.png"
    args = parser().parse_args(["codes", "issue", "--kind", "salesperson", "--channel", "oa",
                                "--salesperson-id", str(person), "--png", str(png)])
    assert await issue_codes(args) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    [code] = await codes_in(database_url)
    assert f"id {code.id}  scene {code.scene}" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--kind", "material", "--material-id", "999", "--count", "3"], "there is no material 999"),
    (["--kind", "poster"], "`kind` must be one of"),
    (["--kind", "salesperson", "--channel", "fax", "--salesperson-id", "1"],
     "`channel` must be one of"),
])
async def test_bad_input_is_a_message_and_exit_code_2(cli_env, database_url, tmp_path, capsys,
                                                      argv, message):
    sheet = tmp_path / "none.pdf"
    args = parser().parse_args(["codes", "issue", *argv, "--sheet", str(sheet)])
    assert await issue_codes(args) == 2
    assert f"error: {message}" in capsys.readouterr().err
    assert not sheet.exists()
    assert await codes_in(database_url) == []


async def test_the_real_command(cli_env, database_url, wechat, tmp_path):
    """`python -m bot codes issue --kind material --material-id N --count 25 --sheet out.pdf`
    as a process of its own, against the sandbox."""
    [material] = await make(database_url, (Material, {"title": "产品手册", "kind": "case"}))
    sheet = tmp_path / "out.pdf"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "codes", "issue", "--kind", "material", "--material-id",
        str(material), "--count", "25", "--sheet", str(sheet), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "issuing: 100%" in err.decode() and "25/25" in err.decode()
    assert f"sheet: {sheet} (2 pages)" in out.decode()
    assert pages(sheet.read_bytes()) == 2
    assert len(await codes_in(database_url)) == 25 and len(wechat.wxacodes) == 25
