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

    def mac(self, body: bytes) -> bytes:
        """The truncated HMAC of `body` under this purpose's key."""
        return hmac.new(self._key, body, hashlib.sha256).digest()[:self._mac_bytes]

    def issue(self, value: int) -> str:
        body = str(value).encode()
        return base64.urlsafe_b64encode(body + b"." + self.mac(body)).rstrip(b"=").decode()

    def read(self, token: str | None) -> int | None:
        """The id a token carries, or None for anything this service did not issue."""
        if not token or len(token) > 64 or not token.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:  # not base64 (binascii.Error)
            return None
        body, _, mac = raw.partition(b".")
        if not body.isdigit() or len(body) > MAX_DIGITS or not hmac.compare_digest(
                self.mac(body), mac):
            return None
        if self.issue(int(body)) != token:  # base64 ignores a last character's spare bits
            return None
        return int(body)


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
        body = f"{value}.{'' if holder is None else holder}.{until}".encode()
        return base64.urlsafe_b64encode(body + b":" + self._ids.mac(body)).rstrip(b"=").decode()

    def read(self, token: str | None, now: float | None = None
             ) -> tuple[int | None, int | None, bool]:
        """(the id, its holder, False) for a good token, (the id, its holder, True) for one of
        ours that expired; (None, None, False) for anything else. The holder is None for a
        token issued to nobody in particular."""
        if not token or len(token) > self.MAX_TOKEN or not token.isascii():
            return None, None, False
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:  # not base64 (binascii.Error)
            return None, None, False
        body, _, mac = raw.partition(b":")
        found = self.BODY.fullmatch(body)
        if found is not None and hmac.compare_digest(self._ids.mac(body), mac) and (
                base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == token):
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
