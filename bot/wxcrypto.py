"""Verifying, decrypting and encrypting WeChat callbacks (docs/wechat.md §1).

wechatpy computes the signatures and runs the cipher; this module adds what a server facing the
internet needs on top: constant-time comparison, a freshness window, and one uniform refusal for
every way a ciphertext can be wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
import struct
import threading
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.crypto import PrpCrypto
from wechatpy.utils import WeChatSigner

from bot.errors import Forbidden

ENVELOPE = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n"
    "<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)


class SignatureRejected(Forbidden):
    code = "bad_signature"


class DecryptRejected(Forbidden):
    code = "bad_ciphertext"


def sign(*parts: str) -> str:
    """sha1 of the sorted parts (docs/wechat.md §1.1, §1.3)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_fresh(timestamp: str, tolerance: int, now: float | None = None) -> None:
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        raise SignatureRejected("the timestamp is missing or not a number") from None
    if abs((time.time() if now is None else now) - sent) > tolerance:
        raise SignatureRejected("the timestamp is more than 5 minutes off")


def check_signature(expected_parts: tuple[str, ...], signature: str | None) -> None:
    if not signature or not hmac.compare_digest(sign(*expected_parts).encode(),
                                                signature.encode("utf-8", "replace")):
        raise SignatureRejected("the signature does not match")


class ChainedCipher:
    """AES-256-CBC with WeChat's fixed IV (the key's first 16 bytes), as wechatpy's WeChatCipher
    computes it, on one encryptor and one decryptor kept open for the life of the account
    rather than a new context per message: setting one up (the key schedule) cost more than
    encrypting a whole reply (bench/callbacks.py --mix follow).

    An open CBC context chains each message to the one before: it encrypts a message's first
    block as E(P1 ^ C_last), where C_last is the last ciphertext block it produced. Feeding it
    P1 ^ IV ^ C_last instead gives E(P1 ^ IV), exactly what a fresh context gives; the other
    blocks chain within the message as usual. Decrypting, the first block comes out as
    D(C1) ^ C_last, and ^ C_last ^ IV turns it into D(C1) ^ IV. Callers hand over whole blocks
    only (PKCS#7 padding on the way out; a length checked on the way in), so the contexts never
    hold a partial block between messages."""

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))
        self._iv = int.from_bytes(key[:16], "big")
        self._encryptor, self._encrypted_last = cipher.encryptor(), self._iv
        self._decryptor, self._decrypted_last = cipher.decryptor(), self._iv
        self._lock = threading.Lock()

    def encrypt(self, plaintext: bytes) -> bytes:
        if not plaintext or len(plaintext) % 16:
            raise ValueError("CBC takes whole 16-byte blocks")
        with self._lock:
            first = int.from_bytes(plaintext[:16], "big") ^ self._iv ^ self._encrypted_last
            out = self._encryptor.update(first.to_bytes(16, "big") + plaintext[16:])
            self._encrypted_last = int.from_bytes(out[-16:], "big")
        return out

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not ciphertext or len(ciphertext) % 16:
            raise ValueError("CBC takes whole 16-byte blocks")
        with self._lock:
            out = self._decryptor.update(ciphertext)
            first = int.from_bytes(out[:16], "big") ^ self._decrypted_last ^ self._iv
            self._decrypted_last = int.from_bytes(ciphertext[-16:], "big")
        return first.to_bytes(16, "big") + out[16:]


class _StrictPrpCrypto(PrpCrypto):  # type: ignore[misc]
    """wechatpy's cipher, refusing what it would silently mis-read (bad padding or length), on
    a ChainedCipher."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.cipher = ChainedCipher(key)

    def get_random_string(self) -> str:
        """The 16 characters that lead every encrypted message. wechatpy draws them one
        `random.choice` at a time, which was most of the cost of encrypting a passive reply
        (bench/callbacks.py --mix follow); here 64 bits of the same generator at once. (The
        OS's generator, `secrets`, costs a system call each, and showed in the profile too.)"""
        return f"{random.getrandbits(64):016x}"

    def decrypt_strict(self, text: str, receive_id: str) -> str:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptRejected("the ciphertext is not valid base64") from None
        if not raw or len(raw) % 32:
            raise DecryptRejected("the ciphertext has a bad length")
        plain = self.cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= 32 or plain[-pad:] != bytes([pad]) * pad:
            raise DecryptRejected("the ciphertext has bad padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise DecryptRejected("the ciphertext is too short")
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise DecryptRejected("the ciphertext has a bad length field")
        try:
            message = content[4:4 + length].decode("utf-8")
            from_id = content[4 + length:].decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptRejected("the plaintext is not UTF-8") from None
        if not hmac.compare_digest(from_id.encode(), receive_id.encode()):
            raise DecryptRejected("the ciphertext is for another app")
        return message


class CallbackCrypto:
    """One account's callback secrets: token, EncodingAESKey and the id the cipher carries
    (the OA's AppID or WeCom's CorpID)."""

    def __init__(self, token: str, aes_key: str | None, receive_id: str | None,
                 tolerance: int = 300) -> None:
        self.token = token
        self.receive_id = receive_id or ""
        self.tolerance = tolerance
        self._cipher: _StrictPrpCrypto | None = None
        if aes_key:
            key = base64.b64decode(aes_key + "=")
            if len(key) != 32:
                raise ValueError("an EncodingAESKey must be 43 characters decoding to 32 bytes")
            self._cipher = _StrictPrpCrypto(key)

    @property
    def encrypted(self) -> bool:
        return self._cipher is not None

    def verify(self, signature: str | None, timestamp: str, nonce: str) -> None:
        """The plain signature every OA request carries."""
        check_fresh(timestamp, self.tolerance)
        check_signature((self.token, timestamp, nonce), signature)

    def verify_encrypted(self, msg_signature: str | None, timestamp: str, nonce: str,
                         encrypt: str) -> None:
        check_fresh(timestamp, self.tolerance)
        check_signature((self.token, timestamp, nonce, encrypt), msg_signature)

    def decrypt(self, encrypt: str) -> str:
        if self._cipher is None:
            raise DecryptRejected("no EncodingAESKey is configured for encrypted pushes")
        try:
            return self._cipher.decrypt_strict(encrypt, self.receive_id)
        except DecryptRejected:
            raise
        except Exception:  # anything the cipher itself trips over is the caller's bad input
            raise DecryptRejected("the ciphertext could not be decrypted") from None

    def encrypt_reply(self, xml: str, nonce: str, timestamp: str | None = None, *,
                      as_json: bool = False) -> str:
        """The encrypted reply envelope (docs/wechat.md §1.4), in JSON for JSON-format pushes."""
        assert self._cipher is not None
        timestamp = timestamp or str(int(time.time()))
        encrypt = self._cipher.encrypt(xml, self.receive_id).decode()
        signature = sign(self.token, timestamp, nonce, encrypt)
        if as_json:
            return json.dumps({"Encrypt": encrypt, "MsgSignature": signature,
                               "TimeStamp": int(timestamp), "Nonce": nonce})
        return ENVELOPE.format(encrypt=encrypt, signature=signature, timestamp=timestamp,
                               nonce=nonce)
