"""bot.settings: the environment of the contract, secrets hidden, the generated key file."""

from __future__ import annotations

import os
import stat
from dataclasses import fields, replace
from pathlib import Path

import pytest

from bot.errors import MissingSetting, SettingError
from bot.settings import Secret, Settings
from domain.rules import DEFAULTS as DEFAULT_RULES

ENV = {
    "SCRM_DATABASE_URL": "postgres://scrm:pw@db:5432/scrm",
    "SCRM_REDIS_URL": "redis://cache:6379/2",
    "SCRM_WECHAT_API_BASE": "http://sandbox:8081/",
    "SCRM_WECHAT_MP_BASE": "http://sandbox:8081/mp/",
    "SCRM_WECOM_API_BASE": "http://sandbox:8081/qy",
    "SCRM_OA_APPID": "wx2c2769f8efd9abc2",
    "SCRM_OA_SECRET": "oa-secret-value",
    "SCRM_OA_TOKEN": "oa-token-value",
    "SCRM_OA_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "SCRM_OA_OPPORTUNITY_TEMPLATE_ID": "tpl-1",
    "SCRM_MP_APPID": "wx4f4bc4dec97d474b",
    "SCRM_MP_SECRET": "mp-secret-value",
    "SCRM_WECOM_CORPID": "wx5823bf96d3bd56c7",
    "SCRM_WECOM_TOKEN": "wecom-token-value",
    "SCRM_WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "SCRM_WECOM_SECRET": "wecom-secret-value",
    "SCRM_WECOM_AGENT_ID": "1000002",
    "SCRM_ADMIN_TOKEN": "admin-token-value",
    "SCRM_SECRET_KEY": "secret-key-value-0123456789abcdef",
    "SCRM_PUBLIC_URL": "https://scrm.example.com/",
    "SCRM_SCORING_RULES": str(DEFAULT_RULES),
}
SECRETS = ("SCRM_OA_SECRET", "SCRM_OA_TOKEN", "SCRM_OA_AES_KEY", "SCRM_MP_SECRET",
           "SCRM_WECOM_TOKEN", "SCRM_WECOM_AES_KEY", "SCRM_WECOM_SECRET", "SCRM_ADMIN_TOKEN",
           "SCRM_SECRET_KEY")


def test_every_variable_of_the_contract_is_read() -> None:
    s = Settings.from_env(ENV)
    assert s.database_url == "postgres://scrm:pw@db:5432/scrm"
    assert s.redis_url == "redis://cache:6379/2"
    assert s.wechat_api_base == "http://sandbox:8081"  # a trailing slash is dropped
    assert s.wechat_mp_base == "http://sandbox:8081/mp"
    assert s.wecom_api_base == "http://sandbox:8081/qy"
    assert s.oa_appid == "wx2c2769f8efd9abc2" and s.oa_opportunity_template_id == "tpl-1"
    assert s.mp_appid == "wx4f4bc4dec97d474b" and s.wecom_corpid == "wx5823bf96d3bd56c7"
    assert s.wecom_agent_id == 1000002
    assert s.public_url == "https://scrm.example.com"
    assert s.scoring_rules == str(DEFAULT_RULES)
    for name in SECRETS:
        value = getattr(s, name.removeprefix("SCRM_").lower())
        assert isinstance(value, Secret) and value == ENV[name]
    # every field the environment can set was set from it
    read = {f.name for f in fields(Settings)} - {"callback_deadline", "max_callback_body",
                                                 "timestamp_tolerance", "recovery_after",
                                                 "completion_linger", "body_timeout",
                                                 "link_ttl"}
    assert {f"SCRM_{name.upper()}" for name in read} == set(ENV)


def test_a_bad_rules_file_is_one_line_naming_the_variable_and_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(DEFAULT_RULES.read_text(encoding="utf-8").replace(
        "cap: 5}", "cap: -5}", 1), encoding="utf-8")
    with pytest.raises(SettingError) as caught:
        Settings.from_env({"SCRM_SCORING_RULES": str(rules)})
    line = next(n for n, text in enumerate(rules.read_text().splitlines(), 1) if "cap: -5" in text)
    assert caught.value.message == (f"SCRM_SCORING_RULES: {rules}, line {line}: `cap` in "
                                     "behaviour rule `follow` must be from 0 to 100000")
    with pytest.raises(SettingError) as missing:
        Settings.from_env({"SCRM_SCORING_RULES": str(tmp_path / "nope.yaml")})
    assert missing.value.message.startswith("SCRM_SCORING_RULES: ")
    assert "cannot be read" in missing.value.message


def test_defaults_of_the_contract() -> None:
    s = Settings.from_env({})
    assert s.database_url == "sqlite://scrm.sqlite3" and s.is_sqlite
    assert s.redis_url is None
    assert s.wechat_api_base == "https://api.weixin.qq.com"
    assert s.wechat_mp_base == "https://mp.weixin.qq.com"
    assert s.wecom_api_base == "https://qyapi.weixin.qq.com"
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.admin_token is None and s.secret_key is None and s.oa_aes_key is None
    assert (s.callback_deadline, s.max_callback_body, s.timestamp_tolerance) == (4.0, 65536, 300)


def test_empty_values_count_as_unset() -> None:
    s = Settings.from_env({"SCRM_ADMIN_TOKEN": "", "SCRM_REDIS_URL": "",
                           "SCRM_WECOM_AGENT_ID": ""})
    assert s.admin_token is None and s.redis_url is None and s.wecom_agent_id is None


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRM_OA_APPID", "wxFromOsEnviron")
    assert Settings.from_env().oa_appid == "wxFromOsEnviron"


def test_secrets_never_show_in_repr_or_str_of_settings() -> None:
    s = Settings.from_env(ENV)
    shown = repr(s) + str(s) + f"{s}" + f"{[s]}"
    for name in SECRETS:
        assert ENV[name] not in shown, name
    assert "wx2c2769f8efd9abc2" in shown  # what is not secret is shown
    assert repr(Secret("x")) == "Secret('**********')"


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.admin_token = Secret("x")  # type: ignore[misc]


def test_require_names_the_variable() -> None:
    s = Settings.from_env({})
    for name in ("mp_appid", "oa_token", "wecom_secret", "secret_key"):
        with pytest.raises(MissingSetting) as missing:
            s.require(name)
        assert missing.value.variable == f"SCRM_{name.upper()}"
        assert f"SCRM_{name.upper()}" in missing.value.message
    assert Settings.from_env(ENV).require("mp_appid") == "wx4f4bc4dec97d474b"


def test_a_generated_key_is_kept_beside_the_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "data" / "scrm.sqlite3"
    s = Settings(database_url=f"sqlite://{db}")
    first = s.with_secret_key()
    key_file = tmp_path / "data" / "scrm.sqlite3.secret"
    assert key_file.exists()
    assert first.secret_key == key_file.read_text().strip() and len(first.secret_key or "") >= 32
    assert isinstance(first.secret_key, Secret)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    again = Settings(database_url=f"sqlite://{db}").with_secret_key()
    assert again.secret_key == first.secret_key  # reused, never regenerated
    other = Settings(database_url=f"sqlite://{tmp_path / 'other.sqlite3'}").with_secret_key()
    assert other.secret_key != first.secret_key


def test_a_configured_key_wins(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite://{tmp_path / 'x.sqlite3'}", secret_key=Secret("mine"))
    assert s.with_secret_key() is s
    assert not (tmp_path / "x.sqlite3.secret").exists()


def test_in_memory_sqlite_gets_a_key_for_the_process() -> None:
    s = Settings(database_url="sqlite://:memory:").with_secret_key()
    assert s.secret_key


def test_postgres_without_a_key_names_the_variable() -> None:
    with pytest.raises(MissingSetting, match="SCRM_SECRET_KEY"):
        Settings(database_url="postgres://u@h/db").with_secret_key()


async def test_a_request_needing_a_missing_setting_names_it(aiohttp_client, app_settings,
                                                            wechat) -> None:
    from bot.app import create_app

    client = await aiohttp_client(create_app(replace(app_settings, mp_appid=None), worker=False))
    response = await client.post("/mp/login", json={"code": wechat.issue_login_code()})
    assert response.status == 503
    body = await response.json()
    assert body["error"]["code"] == "missing_setting"
    assert "SCRM_MP_APPID" in body["error"]["message"]


def test_what_is_left_out_is_named_with_what_it_disables() -> None:
    bare = Settings.from_env({})
    lines = bare.unconfigured()
    assert "SCRM_OA_TOKEN is not set: every OA push is refused (403)" in lines
    assert "SCRM_ADMIN_TOKEN is not set: the admin API refuses every call" in lines
    assert any(line.startswith("SCRM_MP_APPID/SCRM_MP_SECRET are not set") for line in lines)
    assert Settings.from_env(ENV).unconfigured() == []


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
        env["SCRM_DATABASE_URL"] = f"sqlite://{tmp_path / 'scrm.sqlite3'}"
        done = subprocess.run([sys.executable, "-m", "bot", "serve", "--port", str(port)],
                              env=env, capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot listen on 127.0.0.1:{port}")
