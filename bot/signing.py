"""Ids handed out signed: opaque to the holder, and anything tampered with is not one of ours.
A key of its own is derived from SCRM_SECRET_KEY for each purpose (cursors, share tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_DIGITS = 19  # up to 2**63 - 1


class SignedIds:
    def __init__(self, secret_key: str, purpose: bytes, mac_bytes: int = 12) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"scrm",
                         info=purpose).derive(secret_key.encode())
        self._mac_bytes = mac_bytes

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:self._mac_bytes]

    def seal(self, body: bytes, sep: bytes) -> str:
        """`body`, `sep` and its MAC, in URL-safe base64 without padding."""
        return _b64(body + sep + self._mac(body))

    def unseal(self, token: str | None, sep: bytes, limit: int = 64) -> bytes | None:
        """The body of a token `seal` made with `sep`; None for anything else: too long, not
        ASCII or not base64, not written as `seal` writes it (base64 ignores a last
        character's spare bits), or a MAC that does not match."""
        if not token or len(token) > limit or not token.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:  # not base64 (binascii.Error)
            return None
        if _b64(raw) != token:
            return None
        body, _, mac = raw.partition(sep)
        return body if hmac.compare_digest(self._mac(body), mac) else None

    def issue(self, value: int) -> str:
        return self.seal(str(value).encode(), b".")

    def read(self, token: str | None) -> int | None:
        """The id a token carries, or None for anything this service did not issue."""
        body = self.unseal(token, b".")
        if body is None or not body.isdigit() or len(body) > MAX_DIGITS:
            return None
        return int(body)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class ExpiringIds:
    """Signed ids that stop working after `ttl` seconds (links in messages), and name whom they
    were given to (`holder`: the salesperson a push went to), so that a link stops opening
    what has since passed to someone else. The id, the holder and the expiry travel as one
    signed body, `id.holder.until`. A link in the earlier form (`id * SPAN + until`, signed
    as one number) still reads, without a holder, until it expires."""

    SPAN = 10**10  # expiry in epoch seconds, below this
    BODY = re.compile(rb"(\d{1,19})\.(\d{0,19})\.(\d{1,10})")
    MAX_TOKEN = 96

    def __init__(self, secret_key: str, purpose: bytes, ttl: float) -> None:
        self._ids = SignedIds(secret_key, purpose)
        self.ttl = ttl

    def issue(self, value: int, holder: int | None = None, now: float | None = None) -> str:
        until = int((time.time() if now is None else now) + self.ttl)
        return self._ids.seal(f"{value}.{'' if holder is None else holder}.{until}".encode(),
                              b":")

    def read(self, token: str | None, now: float | None = None
             ) -> tuple[int | None, int | None, bool]:
        """(the id, its holder, False) for a good token, (the id, its holder, True) for one of
        ours that expired; (None, None, False) for anything else. The holder is None for a
        token issued to nobody in particular."""
        found = self.BODY.fullmatch(self._ids.unseal(token, b":", self.MAX_TOKEN) or b"")
        if found is not None:
            value, holder, until = found.groups()
            return int(value), int(holder) if holder else None, self._expired(int(until), now)
        both = self._ids.read(token)  # the earlier form
        if both is None:
            return None, None, False
        value, until = divmod(both, self.SPAN)
        return value, None, self._expired(until, now)

    @staticmethod
    def _expired(until: int, now: float | None) -> bool:
        return (time.time() if now is None else now) >= until
