"""Signed, expiring links: what they carry, and that nothing else reads as one of them."""

from __future__ import annotations

import base64

import pytest

from bot.signing import ExpiringIds, SignedIds

KEY = "test-secret-key-0123456789abcdef"
NOW = 1_800_000_000.0


@pytest.fixture
def links() -> ExpiringIds:
    return ExpiringIds(KEY, b"opportunity-page", ttl=3600)


def test_a_link_carries_its_id_and_holder_until_it_expires(links):
    token = links.issue(42, 7, now=NOW)
    assert links.read(token, now=NOW) == (42, 7, False)
    assert links.read(token, now=NOW + 3599) == (42, 7, False)
    assert links.read(token, now=NOW + 3600) == (42, 7, True)


def test_a_link_for_nobody_in_particular_has_no_holder(links):
    assert links.read(links.issue(42, now=NOW), now=NOW) == (42, None, False)


def test_the_largest_ids_fit(links):
    big = 2**63 - 1
    token = links.issue(big, big, now=NOW)
    assert len(token) <= ExpiringIds.MAX_TOKEN
    assert links.read(token, now=NOW) == (big, big, False)


def test_a_tampered_forged_or_foreign_link_reads_as_nothing(links):
    token = links.issue(42, 7, now=NOW)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for at in range(len(raw)):  # every byte changed, one at a time
        changed = raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:]
        forged = base64.urlsafe_b64encode(changed).rstrip(b"=").decode()
        assert links.read(forged, now=NOW) == (None, None, False), at
    body = b"42.8." + raw.split(b".")[2].split(b":")[0]  # another holder, the same MAC
    mac = raw.partition(b":")[2]
    assert links.read(base64.urlsafe_b64encode(body + b":" + mac).decode(), now=NOW) == (
        None, None, False)
    other = ExpiringIds("another-secret-key-0123456789abcd", b"opportunity-page", ttl=3600)
    cursor = ExpiringIds(KEY, b"cursor", ttl=3600)
    for token_of_another in (other.issue(42, 7, now=NOW), cursor.issue(42, 7, now=NOW)):
        assert links.read(token_of_another, now=NOW) == (None, None, False)
    for nonsense in (None, "", "x" * 200, "é" * 10, "====", token + "A"):
        assert links.read(nonsense, now=NOW) == (None, None, False)


def test_a_link_of_the_earlier_form_reads_without_a_holder(links):
    earlier = SignedIds(KEY, b"opportunity-page")
    token = earlier.issue(42 * ExpiringIds.SPAN + int(NOW) + 3600)
    assert links.read(token, now=NOW) == (42, None, False)
    assert links.read(token, now=NOW + 3600) == (42, None, True)
