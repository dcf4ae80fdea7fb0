"""bot.wxcrypto against the official vectors of docs/wechat.md §1.6 and every bad ciphertext."""

from __future__ import annotations

import os
import random
import time

import pytest
import xmltodict
from wechatpy.crypto.cryptography import WeChatCipher

from bot.wxcrypto import (
    CallbackCrypto,
    ChainedCipher,
    DecryptRejected,
    SignatureRejected,
    check_fresh,
    check_signature,
    sign,
)
from tests.bot.kit import aes, frame

FOREVER = 10**10  # the vectors are years old: freshness is tested on its own

V5_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
V5_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVA"
    "FmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticb"
    "SnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77"
    "TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJ"
    "SgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
V6_ENCRYPT_SHORT = ("jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGM"
                    "hkP72vVOfg==")
V6_REPLY = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName>"
    "<![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA"
    "[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1K"
    "F3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDA"
    "TA[testCallBackReplyVideo]]></Description></Video></xml>"
)
V6_REPLY_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEc"
    "W7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAl"
    "HF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQ"
    "NSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkw"
    "WTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6"
    "YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP"
    "5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)
D1_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv23bYF/d/cxBf0szhrD8BQ1MkorjFwC0rHlVODYXVB9IoGQ4CNo1VHAn/QmUDCsvVe82eyvUkmySB"
    "cDgs5PbFfKp2ePVamowQeOGiTDxQxfc0zZvbaYk0COUUiAaB/IEopgGDDJSgveMJDjHgkBx4Nx81IIBG9qe74QCHJuxFckKh"
    "p7Cuj2X7i4f9smx6Yw1aazrdxDv91w7cHwKTq8lVDIk/zuyq0ezzh3Xbdy23KenwkyrhtC4kJo7kB+ldn4/GO1SItIgZv3tg"
    "je6//fMu9F6enbRCzdYUxx/r+6rWoDS+tu+IsbMk44+4keY9yTnmgGCj1jLkjHS5iqR32YnP0dH3cG0WOGT04fyYH9R4gjOc"
    "eILmUF+eXMFiSnIsOvOZzXQegH9nVOwrEaL2/dfAE6GR1eAGGsurIJ7/d7BZVsiDXJxXbVbRmnZWObU561ufa/WD5hjuGqCA"
    "SNAnpvt8+W2nQ8pGJqSgBcqMmJUr0fL0"
)
D1_PLAIN = (
    "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2Tjjewbmi"
    "OUlr6X-1crbLOvLw]]></FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[event]]>"
    "</MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey>"
    "<Ticket><![CDATA[TICKET]]></Ticket></xml>"
)
V7_KEY, V7_ID = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
V7_ECHOSTR = ("4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p"
              "+Q==")
V7_REPLY = ("<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
            "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA"
            "[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>"
            "\n</xml>")
V7_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8Gq"
    "xlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qv"
    "SUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQy"
    "PR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
)
V8_KEY, V8_CORPID = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
V8_ECHOSTR = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvna"
              "qQ==")
V4_ENCRYPT = ("ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tm"
              "xSQ==")
AAAA_KEY = "A" * 43


def fixed_prefix(crypto: CallbackCrypto, prefix: str) -> CallbackCrypto:
    assert crypto._cipher is not None
    crypto._cipher.get_random_string = lambda: prefix  # deterministic, as the vectors are
    return crypto


# --- signatures ---------------------------------------------------------------------------------

def test_v1_oa_url_check_signature() -> None:
    check_signature(("AAAAA", "1714036504", "1514711492"),
                    "f464b24fc39322e44b38aa78f5edd27bd1441696")


def test_v9_plain_signature_and_one_character_off() -> None:
    assert sign("test", "1410685589", "test") == "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    check_signature(("test", "1410685589", "test"), "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff")
    with pytest.raises(SignatureRejected):
        check_signature(("test", "1410685589", "test"),
                        "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe")


@pytest.mark.parametrize("signature", [None, "", "f21891", "ø" * 40])
def test_missing_or_odd_signatures_are_refused(signature: str | None) -> None:
    with pytest.raises(SignatureRejected):
        check_signature(("test", "1410685589", "test"), signature)


def test_v2_and_v5_plain_signatures() -> None:
    assert sign("AAAAA", "1714037059", "486452656") == "899cf89e464efb63f54ddac96b0a0a235f53aa78"
    assert sign("spamtest", "1409735669", "1320562132") == (
        "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a")


@pytest.mark.parametrize("timestamp", ["", "abc", "12.5", "1e9", None])
def test_timestamp_must_be_a_number(timestamp: str | None) -> None:
    with pytest.raises(SignatureRejected, match="timestamp"):
        check_fresh(timestamp, 300)  # type: ignore[arg-type]


def test_timestamp_window_is_five_minutes_both_ways() -> None:
    now = 1_700_000_000
    check_fresh(str(now - 300), 300, now=now)
    check_fresh(str(now + 300), 300, now=now)
    for off in (-301, 301, -86400):
        with pytest.raises(SignatureRejected, match="5 minutes"):
            check_fresh(str(now + off), 300, now=now)


def test_stale_vector_is_refused_with_the_default_tolerance() -> None:
    crypto = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2")
    with pytest.raises(SignatureRejected):
        crypto.verify_encrypted("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669",
                                "1320562132", V5_ENCRYPT)


# --- decryption: official vectors ---------------------------------------------------------------

def test_v5_tencent_sample_decrypts() -> None:
    crypto = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2", FOREVER)
    crypto.verify_encrypted("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669",
                            "1320562132", V5_ENCRYPT)
    fields = xmltodict.parse(crypto.decrypt(V5_ENCRYPT))["xml"]
    assert fields["Content"] == "abcdteT"
    assert fields["MsgId"] == "6054768590064713728"
    assert fields["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


def test_v5_signature_of_another_nonce_is_refused() -> None:
    crypto = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2", FOREVER)
    with pytest.raises(SignatureRejected):
        crypto.verify_encrypted("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669",
                                "1320562133", V5_ENCRYPT)


def test_v6_decrypts_multibyte_and_encrypts_deterministically() -> None:
    crypto = fixed_prefix(CallbackCrypto("pamtest", V5_KEY, "wxb11529c136998cb6", FOREVER),
                          "aaaabbbbccccdddd")
    assert crypto.decrypt(V6_ENCRYPT_SHORT) == "我是中文abcd123"
    assert crypto.decrypt(V6_REPLY_ENCRYPT) == V6_REPLY
    envelope = xmltodict.parse(crypto.encrypt_reply(V6_REPLY, "xxxxxx", "1409304348"))["xml"]
    assert envelope["Encrypt"] == V6_REPLY_ENCRYPT
    assert envelope["MsgSignature"] == "ea88b765074e41eb8c7a75b449db34fa2fd560d5"
    assert envelope["TimeStamp"] == "1409304348"
    assert envelope["Nonce"] == "xxxxxx"


def test_d1_safe_mode_subscribe() -> None:
    crypto = CallbackCrypto("pamtest", V5_KEY, "wxb11529c136998cb6", FOREVER)
    crypto.verify("76480565cbe296026c53aaacd1ad523a1ddba24f", "1409304348", "xxxxxx")
    crypto.verify_encrypted("e7d01d4a2a34e9c43bf40a8cf8143b46f43c25a3", "1409304348", "xxxxxx",
                            D1_ENCRYPT)
    assert crypto.decrypt(D1_ENCRYPT) == D1_PLAIN


def test_v3_v4_json_vectors() -> None:
    crypto = CallbackCrypto("AAAAA", AAAA_KEY, "wxba5fad812f8e6fb9", FOREVER)
    crypto.verify_encrypted("1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1", "1713424427",
                            "415670741", V4_ENCRYPT)
    assert crypto.decrypt(V4_ENCRYPT) == '{"demo_resp":"good luck"}'


def test_v7_wecom_echostr_and_reply() -> None:
    crypto = CallbackCrypto("123456", V7_KEY, V7_ID, FOREVER)
    crypto.verify_encrypted("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780",
                            "437374425", V7_ECHOSTR)
    assert crypto.decrypt(V7_ECHOSTR) == "5927782489442352469"
    with pytest.raises(SignatureRejected):
        crypto.verify_encrypted("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780",
                                "437374424", V7_ECHOSTR)
    fixed_prefix(crypto, "1234567890123456")
    envelope = xmltodict.parse(crypto.encrypt_reply(V7_REPLY, "461056294", "1411525903"))["xml"]
    assert envelope["Encrypt"] == V7_REPLY_ENCRYPT
    assert envelope["MsgSignature"] == "407518b7649e86ef23978113f92d27afa9296533"


def test_v8_wecom_echostr() -> None:
    crypto = CallbackCrypto("QDG6eK", V8_KEY, V8_CORPID, FOREVER)
    crypto.verify_encrypted("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589",
                            "263014780", V8_ECHOSTR)
    assert crypto.decrypt(V8_ECHOSTR) == "1616140317555161061"


def test_reply_round_trip_with_a_fresh_random_prefix() -> None:
    crypto = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2")
    text = "<xml><Content><![CDATA[你好]]></Content></xml>"
    envelope = xmltodict.parse(crypto.encrypt_reply(text, "n0nce"))["xml"]
    assert abs(int(envelope["TimeStamp"]) - time.time()) < 5
    crypto.verify_encrypted(envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"],
                            envelope["Encrypt"])
    assert crypto.decrypt(envelope["Encrypt"]) == text


# --- decryption: everything that can be wrong ---------------------------------------------------

APPID = b"wx2c2769f8efd9abc2"
BAD_CIPHERTEXTS = {
    "bad base64": "!!!not-base64!!!",
    "urlsafe characters": aes(V5_KEY, frame(b"<xml/>", APPID))[:-4] + "-_-_",
    "empty": "====",
    "not a multiple of 32": aes(V5_KEY, b"0123456789abcdef" * 3),
    "pad byte zero": aes(V5_KEY, frame(b"<xml/>", APPID, pad_byte=0)),
    "pad byte over 32": aes(V5_KEY, frame(b"<xml/>", APPID, pad_byte=33)),
    "inconsistent padding": aes(V5_KEY, frame(b"<xml/>", APPID)[:-2] + b"\x07\x14"),
    "wrong appid": aes(V5_KEY, frame(b"<xml/>", b"wxffffffffffffffff")),
    "no appid": aes(V5_KEY, frame(b"<xml/>", b"")),
    "non-UTF-8 message": aes(V5_KEY, frame(b"<xml>\xff\xfe</xml>", APPID)),
    "non-UTF-8 appid": aes(V5_KEY, frame(b"<xml/>", b"\xffx2c2769f8efd9abc2")),
    "length field over the content": aes(V5_KEY, frame(b"<xml/>", APPID, length=10_000)),
    "length field just over": aes(V5_KEY, frame(b"<xml/>", APPID, length=6 + len(APPID) + 1)),
    "length field of 2**32-1": aes(V5_KEY, frame(b"<xml/>", APPID, length=2**32 - 1)),
    "too short for a length": aes(V5_KEY, b"a" * 16 + b"\x01\x02" + bytes([14]) * 14),
    "another key": aes("B" * 43, frame(b"<xml/>", APPID)),
}


def test_bad_ciphertext_cases_are_what_they_claim() -> None:
    assert len(BAD_CIPHERTEXTS["not a multiple of 32"]) == 64  # 48 bytes
    assert frame(b"<xml/>", APPID)[-1] == 20  # so "inconsistent padding" keeps the count
    good = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2")
    assert good.decrypt(aes(V5_KEY, frame(b"<xml/>", APPID))) == "<xml/>"


@pytest.mark.parametrize("case", sorted(BAD_CIPHERTEXTS))
def test_every_bad_ciphertext_is_refused_the_same_way(case: str) -> None:
    crypto = CallbackCrypto("spamtest", V5_KEY, "wx2c2769f8efd9abc2")
    with pytest.raises(DecryptRejected) as refused:
        crypto.decrypt(BAD_CIPHERTEXTS[case])
    assert refused.value.status == 403
    assert refused.value.code == "bad_ciphertext"


def test_decrypt_without_a_key_is_refused() -> None:
    with pytest.raises(DecryptRejected):
        CallbackCrypto("spamtest", None, "wx2c2769f8efd9abc2").decrypt(V5_ENCRYPT)


@pytest.mark.parametrize("key", ["short", "A" * 42, "A" * 44 + "=="])
def test_a_malformed_encoding_aes_key_is_refused_at_setup(key: str) -> None:
    with pytest.raises(ValueError):
        CallbackCrypto("spamtest", key, "wx2c2769f8efd9abc2")


def test_the_chained_cipher_gives_what_a_fresh_context_per_message_gives() -> None:
    """One open context for every message encrypts and decrypts each exactly as wechatpy's
    cipher (a new context per message) does, in whatever order messages come."""
    key, rng = os.urandom(32), random.Random(7)
    chained, fresh = ChainedCipher(key), WeChatCipher(key)
    for _ in range(200):
        message = os.urandom(16 * rng.randint(1, 64))
        if rng.random() < 0.5:
            assert chained.encrypt(message) == fresh.encrypt(message)
        else:
            assert chained.decrypt(message) == fresh.decrypt(message)


@pytest.mark.parametrize("size", [0, 15, 17, 33])
def test_the_chained_cipher_refuses_a_partial_block_and_stays_in_step(size: int) -> None:
    key = os.urandom(32)
    chained, fresh = ChainedCipher(key), WeChatCipher(key)
    for method in (chained.encrypt, chained.decrypt):
        with pytest.raises(ValueError, match="whole 16-byte blocks"):
            method(b"x" * size)
    block = os.urandom(32)
    assert chained.encrypt(block) == fresh.encrypt(block)
    assert chained.decrypt(block) == fresh.decrypt(block)
