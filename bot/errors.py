"""One error tree; the HTTP middleware turns any ScrmError into the JSON error envelope."""

from __future__ import annotations


class ScrmError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequest(ScrmError):
    status, code = 400, "bad_request"


class Unauthorized(ScrmError):
    status, code = 401, "unauthorized"


class Forbidden(ScrmError):
    status, code = 403, "forbidden"


class NotFound(ScrmError):
    status, code = 404, "not_found"


class Conflict(ScrmError):
    status, code = 409, "conflict"


class PayloadTooLarge(ScrmError):
    status, code = 413, "payload_too_large"


class UnsupportedEncoding(ScrmError):
    status, code = 415, "unsupported_content_encoding"


class RequestTimeout(ScrmError):
    status, code = 408, "request_timeout"


class IncompleteBody(ScrmError):
    """The client left before the whole body arrived."""

    status, code = 400, "incomplete_body"


class MissingSetting(ScrmError):
    """A request needs a setting that is not configured: the service's fault, named plainly."""

    status, code = 503, "missing_setting"

    def __init__(self, variable: str):
        super().__init__(f"the setting {variable} is not configured")
        self.variable = variable


class SettingError(ScrmError):
    """A setting that cannot work: reported at startup as one line naming the variable."""

    status, code = 500, "bad_setting"

    def __init__(self, variable: str, problem: str):
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class WeChatAPIError(ScrmError):
    """WeChat answered with a non-zero errcode (see docs/wechat.md §0)."""

    status, code = 502, "wechat_error"

    def __init__(self, errcode: int, errmsg: str = "", *, path: str = ""):
        super().__init__(f"WeChat {path or 'API'} refused: errcode {errcode} {errmsg}".strip())
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(errcode={self.errcode}, errmsg={self.errmsg!r})"


class InvalidCredential(WeChatAPIError):
    """40001 / 40014 / 42001: the access token is bad or expired; refresh once and retry."""


class QuotaExceeded(WeChatAPIError):
    """45009 / 45011 / 45033: a daily, per-minute or concurrency quota is used up."""

    status, code = 429, "wechat_quota_exceeded"


class InvalidArgument(WeChatAPIError):
    """WeChat refused what we asked for (bad code, scene, page, openid, ...)."""

    status, code = 422, "wechat_invalid_argument"


class SystemBusy(WeChatAPIError):
    """-1: WeChat is busy; retry later."""

    status, code = 503, "wechat_busy"


TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
QUOTA_ERRCODES = frozenset({45009, 45011, 45033})
ARGUMENT_ERRCODES = frozenset(
    {40003, 40029, 40037, 40053, 40129, 40163, 40169, 41030, 43004, 47001, 47003, 84061, 40096,
     41051, 81013, 82001, 40098, 60011,
     # invalid parameter / action name / args / agentid, missing code, empty content, openid list
     # size, tag name or id, contact-way type: all "what we asked for is wrong"
     40032, 40052, 40056, 40058, 40097, 41008, 41037, 44004, 45157, 45158, 45159}
)


def wechat_error(errcode: int, errmsg: str = "", *, path: str = "") -> WeChatAPIError:
    """The typed exception for an errcode."""
    if errcode in TOKEN_ERRCODES:
        cls: type[WeChatAPIError] = InvalidCredential
    elif errcode in QUOTA_ERRCODES:
        cls = QuotaExceeded
    elif errcode == -1:
        cls = SystemBusy
    elif errcode in ARGUMENT_ERRCODES:
        cls = InvalidArgument
    else:
        cls = WeChatAPIError
    return cls(errcode, errmsg, path=path)
