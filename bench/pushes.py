"""Pre-generated OA pushes, each signed and encrypted as WeChat sends it in safe mode.

One line per request, `PATH?QUERY<TAB>BODY`, in the order the load generator sends them. Every line
is a distinct push (its own MsgId, or its own FromUserName + CreateTime for events) except the
deliberate retries: byte-identical copies of a line sent shortly before, as WeChat repeats a push.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bot.sandbox.pushes import encrypt, render_xml, sign

# Credentials of the benchmark's account (the values of tests/conftest.py base_settings).
OA_TOKEN = "spamtest"
OA_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OA_APPID = "wx2c2769f8efd9abc2"
OA_ORIGINAL_ID = "gh_3b1f2a6c9d07"
PER_SECOND = 100  # pushes sharing one CreateTime; their openids are all different
RETRY_WINDOW = 400  # a retry repeats one of this many preceding lines
TEXTS = ("你好，想了解一下你们的产品报价", "请问展会上的样品什么时候可以寄出？", "价格",
         "合作方式有哪些", "Can you send me the datasheet?",
         "我们公司需要200台，能否安排销售联系？")


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of push; what is left after retries, text and SCAN is subscribe."""

    text: float = 0.60
    scan: float = 0.15
    retries: float = 0.05
    scenes: int = 40
    people: int = 20_000
    location_only: bool = False  # every push a LOCATION report: no domain handler, no reply
    # every push a new follower's subscribe: "booth" through the booth codes, "unknown" through
    # a scene no code has (attribution skipped: what the booth code itself costs)
    follow: str | None = None


@dataclass
class PushFile:
    path: Path
    offsets: list[int]  # byte offset of each line
    retry: bytearray  # 1 where the line repeats an earlier one
    origin: dict[int, int] = field(default_factory=dict)  # a retry's line → the line it repeats
    kinds: dict[str, int] = field(default_factory=dict)
    generated_at: float = 0.0

    def __len__(self) -> int:
        return len(self.offsets)

    def distinct(self, first: int, count: int) -> int:
        """How many of lines [first, first + count) are pushes not sent before."""
        return len(self.pushes_of([(first, count)]))

    def pushes_of(self, runs: list[tuple[int, int]]) -> set[int]:
        """The distinct pushes that runs of lines (first, count) send, as the index of each
        push's first line: a retry whose first copy lies outside the runs (never sent) is the
        push's first delivery."""
        found: set[int] = set()
        for first, count in runs:
            for line in range(first, min(first + count, len(self.offsets))):
                found.add(self.origin.get(line, line))
        return found

    def offset(self, line: int) -> int:
        return self.offsets[line] if line < len(self.offsets) else self.path.stat().st_size


def _fields(index: int, openid: str, created: int, rng: random.Random, mix: Mix) -> dict[str, Any]:
    head: dict[str, Any] = {"ToUserName": OA_ORIGINAL_ID, "FromUserName": openid,
                            "CreateTime": created}
    roll, scene = rng.random(), f"booth{rng.randrange(mix.scenes):03d}"
    if mix.follow is not None:  # a new follower, through a booth code (or an unknown scene)
        scene = scene if mix.follow == "booth" else f"gone{scene[5:]}"  # no code has it
        return {**head, "MsgType": "event", "Event": "subscribe", "EventKey": f"qrscene_{scene}",
                "Ticket": f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"}
    if mix.location_only:  # what an OA receives when a follower opens the chat
        return {**head, "MsgType": "event", "Event": "LOCATION", "Latitude": "31.230416",
                "Longitude": f"121.{473701 + index % 1000}", "Precision": "65.000000"}
    if roll < mix.text:
        return {**head, "MsgType": "text", "Content": f"{rng.choice(TEXTS)} #{index}",
                "MsgId": 24_000_000_000_000_000 + index}
    if roll < mix.text + mix.scan:
        return {**head, "MsgType": "event", "Event": "SCAN", "EventKey": scene,
                "Ticket": f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"}
    if rng.random() < 0.75:  # a follow through a booth code; the rest follow from a search
        return {**head, "MsgType": "event", "Event": "subscribe", "EventKey": f"qrscene_{scene}",
                "Ticket": f"gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL{scene}"}
    return {**head, "MsgType": "event", "Event": "subscribe", "EventKey": ""}


def request_line(fields: dict[str, Any], timestamp: str) -> str:
    """The request WeChat makes for `fields` in safe mode (docs/wechat.md §1.2, §1.3)."""
    nonce = str(secrets.randbelow(10**10))
    encrypted = encrypt(OA_AES_KEY, OA_APPID, render_xml(fields))
    query = {"signature": sign(OA_TOKEN, timestamp, nonce), "timestamp": timestamp,
             "nonce": nonce, "openid": fields["FromUserName"], "encrypt_type": "aes",
             "msg_signature": sign(OA_TOKEN, timestamp, nonce, encrypted)}
    body = render_xml({"ToUserName": fields["ToUserName"], "Encrypt": encrypted})
    return f"/wechat/oa?{urlencode(query)}\t{body}\n"


def generate(path: Path, count: int, mix: Mix | None = None, seed: int | None = None) -> PushFile:
    """Writes `count` request lines to `path`; query timestamps are now, so the file is good for
    the 5 minutes WeChat's signatures stay fresh."""
    mix = mix or Mix()
    if mix.people < PER_SECOND:
        raise ValueError(f"at least {PER_SECOND} people are needed")
    rng = random.Random(seed)
    run = secrets.token_hex(3)  # openids differ between runs, like the people at two fairs
    people = [f"o{run}{n:07d}BenchOpenid{n % 97:02d}x" for n in range(mix.people)]
    now = int(time.time())
    timestamp, first_second = str(now), now - count // PER_SECOND - 1
    pushes = PushFile(path, [], bytearray(count), generated_at=time.time())
    recent: list[tuple[int, str]] = []
    offset = 0
    with path.open("wb") as out:
        for index in range(count):
            if index % PER_SECOND == 0 and mix.follow is None:
                senders = rng.sample(people, PER_SECOND)
            if recent and mix.follow is None and rng.random() < mix.retries:
                repeated, line = rng.choice(recent)
                pushes.retry[index] = 1
                pushes.origin[index] = repeated
                kind = "retry"
            else:
                sender = (senders[index % PER_SECOND] if mix.follow is None  # else all new
                          else f"o{run}{index:09d}BenchFollower")
                fields = _fields(index, sender,
                                 first_second + index // PER_SECOND, rng, mix)
                line = request_line(fields, timestamp)
                kind = str(fields.get("Event") or fields["MsgType"])
                recent.append((index, line))
                if len(recent) > RETRY_WINDOW:
                    recent.pop(0)
            pushes.kinds[kind] = pushes.kinds.get(kind, 0) + 1
            pushes.offsets.append(offset)
            offset += out.write(line.encode())
    return pushes
