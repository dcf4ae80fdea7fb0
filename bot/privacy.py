"""Personal data: phones are looked up by a keyed digest, kept sealed, and shown masked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PHONE = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")


def mask_phone(phone: str) -> str:
    """138****8000; anything too short to mask keeps only its last two digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        return f"{digits[-11:-8]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_phones(text: str) -> str:
    """Every mainland mobile number inside a text, masked."""
    return PHONE.sub(lambda m: f"{m.group(2)}****{m.group(4)}", text)


def normalize_phone(phone: str, country_code: str = "86") -> str:
    digits = re.sub(r"\D", "", phone)
    if country_code == "86" and len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if country_code == "86" else f"{country_code}{digits}"


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"scrm", info=purpose).derive(
        secret_key.encode()
    )


class Sealer:
    """Keys derived from SCRM_SECRET_KEY: one for lookup digests, one to seal values at rest."""

    def __init__(self, secret_key: str) -> None:
        self._digest_key = _derive(secret_key, b"identity-digest")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"data-at-rest")))

    def digest(self, value: str) -> str:
        return hmac.new(self._digest_key, value.encode(), hashlib.sha256).hexdigest()

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def unseal(self, token: str) -> str | None:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None
