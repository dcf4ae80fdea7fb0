"""Ids handed out signed: opaque to the holder, and anything tampered with is not one of ours.
A key of its own is derived from SCRM_SECRET_KEY for each purpose (cursors, share tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
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

    def issue(self, value: int) -> str:
        body = str(value).encode()
        return base64.urlsafe_b64encode(body + b"." + self._mac(body)).rstrip(b"=").decode()

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
                self._mac(body), mac):
            return None
        if self.issue(int(body)) != token:  # base64 ignores a last character's spare bits
            return None
        return int(body)


class ExpiringIds:
    """Signed ids that stop working after `ttl` seconds (links in messages): the id and its
    expiry travel as one signed number."""

    SPAN = 10**10  # expiry in epoch seconds, below this

    def __init__(self, secret_key: str, purpose: bytes, ttl: float) -> None:
        self._ids = SignedIds(secret_key, purpose)
        self.ttl = ttl

    def issue(self, value: int, now: float | None = None) -> str:
        until = int((time.time() if now is None else now) + self.ttl)
        return self._ids.issue(value * self.SPAN + until)

    def read(self, token: str | None, now: float | None = None) -> tuple[int | None, bool]:
        """(the id, False) for a good token; (the id, True) for one of ours that expired;
        (None, False) for anything else."""
        both = self._ids.read(token)
        if both is None:
            return None, False
        value, until = divmod(both, self.SPAN)
        return value, (time.time() if now is None else now) >= until
