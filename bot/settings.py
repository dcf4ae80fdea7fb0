"""Settings read once from the environment (names as in the public contract), each checked:
a setting that cannot work stops the start with one line naming its variable."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import MissingSetting, SettingError

MIN_SECRET_KEY = 32  # characters; the keys sealing personal data derive from it
MIN_ADMIN_TOKEN = 16
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _secret(value: str | None) -> Secret | None:
    return None if value in (None, "") else Secret(value)


def _rules_file(path: str | None) -> str | None:
    """A rules file that loads (domain/rules.py says why one does not, naming the line)."""
    if path is None:
        return None
    from domain.rules import RulesError, load

    try:
        load(path)
    except RulesError as exc:
        raise SettingError("SCRM_SCORING_RULES", str(exc)) from None
    return path


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://scrm.sqlite3"
    redis_url: str | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_mp_base: str = "https://mp.weixin.qq.com"
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    oa_appid: str | None = None
    oa_secret: Secret | None = field(default=None, repr=False)
    oa_token: Secret | None = field(default=None, repr=False)
    oa_aes_key: Secret | None = field(default=None, repr=False)
    oa_opportunity_template_id: str | None = None
    mp_appid: str | None = None
    mp_secret: Secret | None = field(default=None, repr=False)
    wecom_corpid: str | None = None
    wecom_token: Secret | None = field(default=None, repr=False)
    wecom_aes_key: Secret | None = field(default=None, repr=False)
    wecom_secret: Secret | None = field(default=None, repr=False)
    wecom_agent_id: int | None = None
    admin_token: Secret | None = field(default=None, repr=False)
    secret_key: Secret | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8080"
    scoring_rules: str | None = None  # a rules file; None: the defaults (domain/scoring_rules.yaml)
    # Not in the environment: knobs for tests and benchmarks.
    callback_deadline: float = 4.0
    max_callback_body: int = 64 * 1024
    timestamp_tolerance: int = 300
    recovery_after: float = 30.0
    completion_linger: float = 0.1  # seconds processed marks wait to share an UPDATE
    body_timeout: float = 10.0  # seconds a request's body may take to arrive
    link_ttl: float = 7 * 86_400  # seconds the link in a push to a salesperson works

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"SCRM_{name}")
            return value if value not in (None, "") else None

        def base(name: str, default: str) -> str:
            return _http_url(f"SCRM_{name}", get(name) or default).rstrip("/")

        def aes_key(name: str) -> Secret | None:
            return _secret(_aes_key(f"SCRM_{name}", get(name)))

        return cls(
            database_url=_database_url(get("DATABASE_URL") or cls.database_url),
            redis_url=_redis_url(get("REDIS_URL")),
            wechat_api_base=base("WECHAT_API_BASE", cls.wechat_api_base),
            wechat_mp_base=base("WECHAT_MP_BASE", cls.wechat_mp_base),
            wecom_api_base=base("WECOM_API_BASE", cls.wecom_api_base),
            oa_appid=get("OA_APPID"),
            oa_secret=_secret(get("OA_SECRET")),
            oa_token=_secret(get("OA_TOKEN")),
            oa_aes_key=aes_key("OA_AES_KEY"),
            oa_opportunity_template_id=get("OA_OPPORTUNITY_TEMPLATE_ID"),
            mp_appid=get("MP_APPID"),
            mp_secret=_secret(get("MP_SECRET")),
            wecom_corpid=get("WECOM_CORPID"),
            wecom_token=_secret(get("WECOM_TOKEN")),
            wecom_aes_key=aes_key("WECOM_AES_KEY"),
            wecom_secret=_secret(get("WECOM_SECRET")),
            wecom_agent_id=_agent_id(get("WECOM_AGENT_ID")),
            admin_token=_secret(_long_enough("SCRM_ADMIN_TOKEN", get("ADMIN_TOKEN"),
                                             MIN_ADMIN_TOKEN)),
            secret_key=_secret(_long_enough("SCRM_SECRET_KEY", get("SECRET_KEY"),
                                            MIN_SECRET_KEY)),
            public_url=base("PUBLIC_URL", cls.public_url),
            scoring_rules=_rules_file(get("SCORING_RULES")),
        )

    def require(self, name: str) -> str:
        """The value of a setting a request needs, or a MissingSetting naming its variable."""
        value = getattr(self, name)
        if value in (None, ""):
            raise MissingSetting(f"SCRM_{name.upper()}")
        return str(value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database's file (None on PostgreSQL and for an in-memory database)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.removeprefix("sqlite://").split("?", 1)[0]
        return None if path in ("", ":memory:") else Path(path)

    @property
    def key_file(self) -> Path | None:
        """Where the embedded default keeps its generated SCRM_SECRET_KEY."""
        path = self.sqlite_path
        return None if path is None else path.with_name(path.name + ".secret")

    def unconfigured(self) -> list[str]:
        """One line for each setting left out, saying what that disables."""
        missing = [
            (not self.oa_token, "SCRM_OA_TOKEN is not set: every OA push is refused (403)"),
            (bool(self.oa_token) and not self.oa_aes_key,
             "SCRM_OA_AES_KEY is not set: OA pushes are accepted in plaintext mode only"),
            (not (self.oa_appid and self.oa_secret),
             "SCRM_OA_APPID/SCRM_OA_SECRET are not set: no OA code can be issued"),
            (not (self.mp_appid and self.mp_secret),
             "SCRM_MP_APPID/SCRM_MP_SECRET are not set: mini-program logins and codes get 503"),
            (not (self.wecom_token and self.wecom_aes_key),
             "SCRM_WECOM_TOKEN/SCRM_WECOM_AES_KEY are not set: every WeCom push is refused"),
            (not (self.wecom_corpid and self.wecom_secret),
             "SCRM_WECOM_CORPID/SCRM_WECOM_SECRET are not set: no WeCom contact way, welcome or "
             "contact details"),
            (not self.wecom_agent_id,
             "SCRM_WECOM_AGENT_ID is not set: no WeCom app message to salespeople"),
            (not self.oa_opportunity_template_id,
             "SCRM_OA_OPPORTUNITY_TEMPLATE_ID is not set: no OA template message to salespeople"),
            (not self.admin_token, "SCRM_ADMIN_TOKEN is not set: the admin API refuses every call"),
            (not self.redis_url,
             "SCRM_REDIS_URL is not set: the in-process store serves one process only"),
        ]
        return [line for absent, line in missing if absent]

    def with_secret_key(self) -> Settings:
        """On the embedded default, a key generated once and kept in a file beside the
        database — never generated again while the database holds data sealed with it."""
        if self.secret_key is not None:
            return self
        if not self.is_sqlite:
            raise MissingSetting("SCRM_SECRET_KEY")
        key_file, db_path = self.key_file, self.sqlite_path
        if key_file is None or db_path is None:  # in memory: the data dies with the process
            return replace(self, secret_key=Secret(secrets.token_urlsafe(32)))
        if not key_file.exists():
            if holds_sealed_data(db_path):
                raise SettingError("SCRM_SECRET_KEY", (
                    f"the key file {key_file} is missing, but {db_path} holds personal data "
                    "sealed with its key: restore the file (or set SCRM_SECRET_KEY to that key)"))
            key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(32))
        return replace(self, secret_key=Secret(read_key_file(key_file)))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr
        )
        return f"Settings({shown})"


def _database_url(url: str) -> str:
    variable = "SCRM_DATABASE_URL"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        if not url.removeprefix("sqlite://").split("?", 1)[0]:
            raise SettingError(variable, "a sqlite:// URL needs a file path (sqlite://scrm.sqlite3)")
        return url
    if scheme not in ("postgres", "postgresql"):
        raise SettingError(variable, f"must be sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB "
                                     f"(got {scheme or 'no'} scheme)")
    _host_and_port(variable, url)
    if not urlsplit(url).path.strip("/"):
        raise SettingError(variable, "a postgres:// URL needs a database name (…/DB)")
    return url


def _redis_url(url: str | None) -> str | None:
    if url is None:
        return None
    variable = "SCRM_REDIS_URL"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("redis", "rediss", "unix"):
        raise SettingError(variable, f"must be redis://HOST:PORT/DB (got {scheme or 'no'} scheme)")
    if scheme != "unix":
        _host_and_port(variable, url)
        db = urlsplit(url).path.strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise SettingError(variable, f"the database number must be an integer (got {db!r})")
    return url


def _host_and_port(variable: str, url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise SettingError(variable, f"is not a valid URL ({exc})") from None
    if not parts.hostname:
        raise SettingError(variable, "names no host")


def _http_url(variable: str, url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise SettingError(variable, "must be an http:// or https:// URL")
    _host_and_port(variable, url)
    return url


def _aes_key(variable: str, key: str | None) -> str | None:
    """WeChat's EncodingAESKey: 43 letters and digits, base64 of a 32-byte AES key."""
    if key is None:
        return None
    if not _AES_KEY.fullmatch(key):
        raise SettingError(variable, f"must be the 43 letters and digits of the EncodingAESKey "
                                     f"(got {len(key)} characters)")
    try:
        if len(base64.b64decode(key + "=", validate=True)) == 32:
            return key
    except binascii.Error:
        pass
    raise SettingError(variable, "does not decode to a 32-byte AES key")


def _agent_id(value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 2**31:
        raise SettingError("SCRM_WECOM_AGENT_ID", f"must be the app's numeric AgentId "
                                                  f"(got {value[:20]!r})")
    return int(value)


def _long_enough(variable: str, value: str | None, minimum: int) -> str | None:
    if value is not None and len(value) < minimum:
        raise SettingError(variable, f"must be at least {minimum} characters long "
                                     f"(got {len(value)})")
    return value


def read_key_file(path: Path) -> str:
    """The key kept in `path`, if it is one: printable ASCII, at least 32 characters."""
    variable = "SCRM_SECRET_KEY"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingError(variable, f"the key file {path} cannot be read ({exc.strerror})"
                           ) from None
    try:
        key = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        key = None
    if key is None or not key.isprintable():
        raise SettingError(variable, f"the key file {path} does not hold a key (unreadable text)")
    if not key:
        raise SettingError(variable, f"the key file {path} is empty")
    if len(key) < MIN_SECRET_KEY:
        raise SettingError(variable, f"the key in {path} is too short ({len(key)} characters; "
                                     f"at least {MIN_SECRET_KEY})")
    return key


def holds_sealed_data(db_path: Path) -> bool:
    """Whether the SQLite database holds values sealed with the data key."""
    if not db_path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
            row = conn.execute('SELECT 1 FROM "identity" WHERE "sealed" IS NOT NULL LIMIT 1'
                               ).fetchone()
    except sqlite3.Error:  # no such table yet: nothing sealed
        return False
    return row is not None
