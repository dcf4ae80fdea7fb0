"""Settings read once from the environment (names as in the public contract)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from bot.errors import MissingSetting


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('**********')"


def _secret(value: str | None) -> Secret | None:
    return None if value in (None, "") else Secret(value)


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
    # Not in the environment: knobs for tests and benchmarks.
    callback_deadline: float = 4.0
    max_callback_body: int = 64 * 1024
    timestamp_tolerance: int = 300
    recovery_after: float = 30.0
    completion_linger: float = 0.1  # seconds processed marks wait to share an UPDATE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"SCRM_{name}")
            return value if value not in (None, "") else None

        agent = get("WECOM_AGENT_ID")
        return cls(
            database_url=get("DATABASE_URL") or cls.database_url,
            redis_url=get("REDIS_URL"),
            wechat_api_base=(get("WECHAT_API_BASE") or cls.wechat_api_base).rstrip("/"),
            wechat_mp_base=(get("WECHAT_MP_BASE") or cls.wechat_mp_base).rstrip("/"),
            wecom_api_base=(get("WECOM_API_BASE") or cls.wecom_api_base).rstrip("/"),
            oa_appid=get("OA_APPID"),
            oa_secret=_secret(get("OA_SECRET")),
            oa_token=_secret(get("OA_TOKEN")),
            oa_aes_key=_secret(get("OA_AES_KEY")),
            oa_opportunity_template_id=get("OA_OPPORTUNITY_TEMPLATE_ID"),
            mp_appid=get("MP_APPID"),
            mp_secret=_secret(get("MP_SECRET")),
            wecom_corpid=get("WECOM_CORPID"),
            wecom_token=_secret(get("WECOM_TOKEN")),
            wecom_aes_key=_secret(get("WECOM_AES_KEY")),
            wecom_secret=_secret(get("WECOM_SECRET")),
            wecom_agent_id=int(agent) if agent and agent.isdigit() else None,
            admin_token=_secret(get("ADMIN_TOKEN")),
            secret_key=_secret(get("SECRET_KEY")),
            public_url=(get("PUBLIC_URL") or cls.public_url).rstrip("/"),
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

    def with_secret_key(self) -> Settings:
        """On the embedded default, a key generated once and kept in a file beside the database."""
        if self.secret_key is not None:
            return self
        if not self.is_sqlite:
            raise MissingSetting("SCRM_SECRET_KEY")
        db_path = self.database_url.removeprefix("sqlite://")
        if db_path in ("", ":memory:"):
            return replace(self, secret_key=Secret(secrets.token_urlsafe(32)))
        key_file = Path(db_path).with_name(Path(db_path).name + ".secret")
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(32))
        return replace(self, secret_key=Secret(key_file.read_text().strip()))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr
        )
        return f"Settings({shown})"
