"""Personal data: phones are looked up by a keyed digest, kept sealed, and shown masked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# A mainland mobile number however it is written: 13800138000, 138-0013-8000, 139 1234 5678,
# (138)0013-8000, 138/0013/8000, 138－0013－8000, +86 139…, 0086-139…, 0139…: up to three
# separators (spaces, punctuation, dashes of any width, zero-width spaces) between two digits.
_SEP = "[\\s./_,~+()\\-\u00b7\u2010-\u2015\u2212\u30fb\uff0d\uff0e\u200b-\u200d\ufeff]{0,3}"
PHONE = re.compile(r"(?<![\d])(?:(?:\+|00)?\(?86\)?" + _SEP + r"|0)?(1" + _SEP + r"[3-9]"
                   + (_SEP + r"\d") * 9 + r")(?![\d])")
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


def ascii_digits(text: str) -> str:
    """Every decimal digit (fullwidth １, Arabic-Indic ١, …) as its ASCII digit."""
    if text.isascii():
        return text
    return _NON_ASCII_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)


def mask_phone(phone: str) -> str:
    """138****8000; anything too short to mask keeps only its last two digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        return f"{digits[-11:-8]}****{digits[-4:]}"
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_phones(text: str) -> str:
    """Every mainland mobile number inside a text, masked, whatever digits it is written in
    (the rest of the text keeps its own)."""
    probe = ascii_digits(text)  # digit for digit, so its matches fall on the text's own spans
    if probe == text:
        return PHONE.sub(lambda m: mask_phone(m.group(1)), text)
    parts, last = [], 0
    for match in PHONE.finditer(probe):
        parts += [text[last:match.start()], mask_phone(match.group(1))]
        last = match.end()
    return "".join(parts) + text[last:]


def normalize_phone(phone: str, country_code: str = "86") -> str:
    digits = re.sub(r"\D", "", ascii_digits(phone))
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
