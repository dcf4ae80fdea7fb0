"""What the sandbox knows: accounts, tokens, codes, quotas, injected failures and every call.

Behaviour follows docs/wechat.md §3.1, §3.2, §4.1, §5.1 and §6; time always comes from
`Sandbox.clock` so tests can move it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from bot.sandbox import pushes
from bot.sandbox.pushes import Delivery
from bot.sandbox.records import (
    TOKEN_QUOTA_ERRMSG,
    Call,
    ContactWay,
    ExternalContact,
    Follower,
    FollowUser,
    IssuedCode,
    QRCode,
    Refusal,
    Token,
    new_openid,
)
from bot.settings import Settings

OA, MP, WECOM = "oa", "mp", "wecom"
TOKEN_TTL = 7200
GRACE = 300  # a rotated token stays valid this long (§3.1); stable tokens renew this early (§3.2)
CODE_TTL = 300
WELCOME_TTL = 20
DAY = 86400
USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(eq=False)
class Sandbox:
    """A fake WeChat: an OA, a mini program and a WeCom corp accepting `settings`' credentials."""

    settings: Settings
    clock: Callable[[], float] = time.time
    url: str | None = None
    oa_original_id: str = "gh_7f083739789a"
    random_prefix: str | None = None  # 16 chars: the cipher's random prefix, for fixed pushes
    token_daily_limit: int = 2000
    template_daily_limit: int = 100_000
    permanent_qr_limit: int = 100_000
    login_minute_limit: int = 100
    wxacode_minute_limit: int = 5000
    published_pages: set[str] = field(default_factory=lambda: {"pages/index/index"})
    members: set[str] | None = None  # WeCom userids; None = every userid is a member
    template_ids: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    tokens: dict[str, Token] = field(default_factory=dict)
    followers: dict[str, Follower] = field(default_factory=dict)
    mini_users: dict[str, str | None] = field(default_factory=dict)  # openid -> unionid
    session_keys: dict[str, str] = field(default_factory=dict)  # openid -> its last session_key
    login_codes: dict[str, IssuedCode] = field(default_factory=dict)
    phone_codes: dict[str, IssuedCode] = field(default_factory=dict)
    welcome_codes: dict[str, IssuedCode] = field(default_factory=dict)
    qrcodes: dict[str, QRCode] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    user_tags: dict[str, set[int]] = field(default_factory=dict)
    external_contacts: dict[str, ExternalContact] = field(default_factory=dict)
    contact_ways: dict[str, ContactWay] = field(default_factory=dict)
    app_message_bodies: dict[str, tuple[str, float]] = field(default_factory=dict)
    template_messages: list[dict[str, Any]] = field(default_factory=list)
    app_messages: list[dict[str, Any]] = field(default_factory=list)
    welcome_messages: list[dict[str, Any]] = field(default_factory=list)
    wxacodes: list[dict[str, Any]] = field(default_factory=list)
    client_msg_ids: dict[str, tuple[int, float]] = field(default_factory=dict)
    failures: dict[str, list[Refusal]] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    windows: dict[str, list[float]] = field(default_factory=dict)
    last_msgid: int = 200228331

    def __post_init__(self) -> None:
        if self.settings.oa_opportunity_template_id:
            self.template_ids.add(self.settings.oa_opportunity_template_id)

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, calls={len(self.calls)})"

    def accounts(self) -> dict[str, str]:
        """The accounts this sandbox accepts — those of its settings, the same SCRM_* the
        service runs with — or, for each one missing, what is refused without it."""
        s = self.settings
        return {
            "oa": f"appid {s.oa_appid}" if s.oa_appid and s.oa_secret else
            "none: set SCRM_OA_APPID and SCRM_OA_SECRET (else OA calls get 40013 invalid appid)",
            "oa pushes": "signed with SCRM_OA_TOKEN" + (" and SCRM_OA_AES_KEY" if s.oa_aes_key
                                                         else "") if s.oa_token else
            "none: set SCRM_OA_TOKEN (and SCRM_OA_AES_KEY) to send signed OA pushes",
            "mini program": f"appid {s.mp_appid}" if s.mp_appid and s.mp_secret else
            "none: set SCRM_MP_APPID and SCRM_MP_SECRET (else logins get 40013 invalid appid)",
            "wecom": f"corpid {s.wecom_corpid}" if s.wecom_corpid and s.wecom_secret else
            "none: set SCRM_WECOM_CORPID and SCRM_WECOM_SECRET (else WeCom calls get 40013)",
            "wecom pushes": "signed with SCRM_WECOM_TOKEN and SCRM_WECOM_AES_KEY"
            if s.wecom_token and s.wecom_aes_key else
            "none: set SCRM_WECOM_TOKEN and SCRM_WECOM_AES_KEY to send signed WeCom pushes",
        }

    # --- time, failures, the call log -----------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock forward (it keeps ticking with the previous clock)."""
        previous = self.clock
        self.clock = lambda: previous() + seconds

    def fail(self, path: str, errcode: int, times: int = 1, errmsg: str | None = None) -> None:
        """The next `times` calls of `path` answer `errcode` before anything else is checked."""
        self.failures.setdefault(path, []).extend(Refusal(errcode, errmsg) for _ in range(times))

    def take_failure(self, path: str) -> None:
        pending = self.failures.get(path)
        if pending:
            raise pending.pop(0)

    def delay(self, path: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `path` take effect at once but are answered `seconds`
        late: a caller that gives up sooner has a timeout although WeChat did what it asked."""
        if seconds < 0 or times < 1:
            raise ValueError("a delay needs seconds >= 0 and times >= 1")
        self.delays.setdefault(path, []).extend(float(seconds) for _ in range(times))

    def take_delay(self, path: str) -> float:
        pending = self.delays.get(path)
        return pending.pop(0) if pending else 0.0

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def count(self, path: str) -> int:
        return len(self.calls_to(path))

    def settings_for(self, settings: Settings) -> Settings:
        """`settings` with the three WeChat roots pointing at this sandbox."""
        if self.url is None:
            raise RuntimeError("the sandbox is not served yet")
        return replace(settings, wechat_api_base=self.url, wechat_mp_base=self.url,
                       wecom_api_base=self.url)

    # --- quotas ---------------------------------------------------------------------------------

    def day(self) -> int:
        return int((self.clock() + 8 * 3600) // DAY)  # WeChat's day is China's

    def spend_daily(self, name: str, limit: int, errmsg: str | None = None) -> None:
        key = f"{name}:{self.day()}"
        if self.counters.get(key, 0) >= limit:
            raise Refusal(45009, errmsg)
        self.counters[key] = self.counters.get(key, 0) + 1

    def spend_minute(self, name: str, limit: int, errcode: int = 45011) -> None:
        now = self.clock()
        recent = [at for at in self.windows.get(name, []) if at > now - 60]
        if len(recent) >= limit:
            raise Refusal(errcode)
        self.windows[name] = [*recent, now]

    # --- access tokens --------------------------------------------------------------------------

    def _issue(self, platform: str, kind: str) -> Token:
        now = self.clock()
        token = Token(secrets.token_urlsafe(96), platform, kind, now, now + TOKEN_TTL)
        self.tokens[token.value] = token
        return token

    def _valid(self, token: Token) -> bool:
        now = self.clock()
        return now < token.expires_at and (token.revoked_at is None or now < token.revoked_at)

    def account(self, appid: str | None, secret: str | None) -> str:
        """The platform (OA or MP) whose appid and secret these are."""
        if not appid:
            raise Refusal(41002)
        if not secret:
            raise Refusal(41004)
        s = self.settings
        for platform, known_id, known_secret in ((OA, s.oa_appid, s.oa_secret),
                                                 (MP, s.mp_appid, s.mp_secret)):
            if known_id and appid == known_id:
                if known_secret is None or secret != str(known_secret):
                    raise Refusal(40001)
                return platform
        raise Refusal(40013)

    def fetch_token(self, appid: str | None, secret: str | None, grant_type: str | None) -> Token:
        """`cgi-bin/token`: a new token on every call; older ones live 5 more minutes."""
        platform = self.account(appid, secret)
        if grant_type != "client_credential":
            raise Refusal(40002)
        self.spend_daily(f"token:{platform}", self.token_daily_limit, TOKEN_QUOTA_ERRMSG)
        cutoff = self.clock() + GRACE
        for old in self.tokens.values():
            if old.platform == platform and old.kind == "token":
                old.revoked_at = min(old.revoked_at or cutoff, cutoff)
        return self._issue(platform, "token")

    def fetch_stable_token(self, appid: str | None, secret: str | None,
                           grant_type: str | None, force_refresh: bool) -> Token:
        """`cgi-bin/stable_token`: the same token until 5 minutes before it expires."""
        platform = self.account(appid, secret)
        if grant_type != "client_credential":
            raise Refusal(40002)
        current = [t for t in self.tokens.values()
                   if t.platform == platform and t.kind == "stable" and self._valid(t)]
        now = self.clock()
        if force_refresh:
            last = self.counters.get(f"stable-forced-at:{platform}", -1e12)
            if now - last < 30:
                raise Refusal(45011)
            self.spend_daily(f"stable-forced:{platform}", 20)
            self.counters[f"stable-forced-at:{platform}"] = int(now)
            for old in current:
                old.revoked_at = now
        elif current and now < current[-1].expires_at - GRACE:
            return current[-1]
        return self._issue(platform, "stable")

    def fetch_wecom_token(self, corpid: str | None, corpsecret: str | None) -> Token:
        """`cgi-bin/gettoken`: one token per secret until it expires."""
        if not corpid:
            raise Refusal(41002)
        if not corpsecret:
            raise Refusal(41004)
        s = self.settings
        if not s.wecom_corpid or corpid != s.wecom_corpid:
            raise Refusal(40013)
        if s.wecom_secret is None or corpsecret != str(s.wecom_secret):
            raise Refusal(40001)
        for token in self.tokens.values():
            if token.platform == WECOM and self._valid(token):
                return token
        return self._issue(WECOM, "wecom")

    def check_token(self, value: str | None, platforms: frozenset[str]) -> Token:
        if not value:
            raise Refusal(41001)
        token = self.tokens.get(value)
        if token is None:
            raise Refusal(40014)
        now = self.clock()
        if token.revoked_at is not None and now >= token.revoked_at:
            raise Refusal(40001)
        if now >= token.expires_at:
            raise Refusal(42001)
        if token.platform not in platforms:
            raise Refusal(40014 if WECOM in platforms or token.platform == WECOM else 48001)
        return token

    def expire_tokens(self) -> int:
        """Expire every issued token now (the next use answers 42001); how many were live."""
        now = self.clock()
        live = [t for t in self.tokens.values() if self._valid(t)]
        for token in live:
            token.expires_at = now
        return len(live)

    # --- people and codes -----------------------------------------------------------------------

    def add_follower(self, openid: str | None = None, unionid: str | None = None, *,
                     scene: str = "ADD_SCENE_SEARCH", qr_scene: int = 0, qr_scene_str: str = "",
                     subscribe_time: int | None = None, subscribed: bool = True) -> Follower:
        """An OA user (following unless `subscribed` is False); keeps a unionid already known."""
        openid = openid or new_openid()
        known = self.followers.get(openid)
        follower = Follower(openid, unionid or (known.unionid if known else None), subscribed,
                            subscribe_time or int(self.clock()), scene, qr_scene, qr_scene_str)
        self.followers[openid] = follower
        return follower

    def remove_follower(self, openid: str) -> None:
        if openid in self.followers:
            self.followers[openid].subscribed = False

    def is_follower(self, openid: str) -> bool:
        return openid in self.followers and self.followers[openid].subscribed

    def _code(self, table: dict[str, IssuedCode], **data: Any) -> str:
        code = secrets.token_hex(16)
        table[code] = IssuedCode(code, self.clock(), data)
        return code

    def issue_login_code(self, openid: str | None = None, unionid: str | None = None) -> str:
        """A `wx.login` code for `openid` (a new 28-char openid when None)."""
        openid = openid or new_openid()
        self.mini_users[openid] = unionid or self.mini_users.get(openid)
        return self._code(self.login_codes, openid=openid)

    def issue_phone_code(self, phone: str, country_code: str = "86") -> str:
        """A getPhoneNumber button code."""
        return self._code(self.phone_codes, phone=phone, country_code=country_code)

    def use_code(self, table: dict[str, IssuedCode], code: str | None, reused: int,
                 ttl: float = CODE_TTL, unknown: int = 40029) -> IssuedCode:
        issued = table.get(code or "")
        if issued is None:
            raise Refusal(unknown)
        if issued.used:
            raise Refusal(reused)
        if self.clock() - issued.issued_at > ttl:
            raise Refusal(unknown)
        issued.used = True
        return issued

    def welcome_code(self, userid: str = "zhangsan", external_userid: str | None = None,
                     code: str | None = None) -> str:
        """Register a WelcomeCode as an add_external_contact event would (valid 20 s, once)."""
        code = code or secrets.token_urlsafe(32)
        self.welcome_codes[code] = IssuedCode(code, self.clock(), {
            "userid": userid, "external_userid": external_userid})
        return code

    def add_external_contact(self, external_userid: str | None = None, *, name: str = "李四",
                             corp_name: str = "腾讯", position: str = "经理",
                             unionid: str | None = None, userid: str = "zhangsan",
                             state: str | None = None) -> ExternalContact:
        """A customer who added member `userid` (again: one more follow_user)."""
        external_userid = external_userid or "wm" + secrets.token_urlsafe(23)[:30]
        contact = self.external_contacts.setdefault(external_userid, ExternalContact(
            external_userid, name, corp_name, position, unionid))
        contact.follow_users = [f for f in contact.follow_users if f.userid != userid]
        contact.follow_users.append(FollowUser(userid, state, int(self.clock())))
        return contact

    def is_member(self, userid: str) -> bool:
        if self.members is not None:
            return userid in self.members
        return USERID.fullmatch(userid) is not None

    def next_msgid(self) -> int:
        self.last_msgid += 1
        return self.last_msgid

    # --- pushes (bot.sandbox.pushes) ------------------------------------------------------------

    async def push_oa(self, callback: str, event: Mapping[str, Any], **options: Any) -> Delivery:
        return await pushes.push_oa(self, callback, event, **options)

    async def push_wecom(self, callback: str, event: Mapping[str, Any],
                         **options: Any) -> Delivery:
        return await pushes.push_wecom(self, callback, event, **options)


SANDBOX = web.AppKey("sandbox", Sandbox)
