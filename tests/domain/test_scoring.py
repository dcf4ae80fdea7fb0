"""Scores as pure functions of a person's log: caps, repeat windows per code and per material,
groups that take only the best rule, behaviour points halving every half-life, profile groups and
`min` on a company size, and the quadrant thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import opportunities, rules, scoring
from domain.scoring import Entry, Event, Log
from models import Prospect, ScoreEntry

RULES = rules.load()
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
CODES = {1: "booth", 2: "booth", 3: "booth", 7: "material"}  # kinds by id
MATERIALS = {10: "whitepaper", 11: "whitepaper", 12: "article"}


def at(hours: float = 0.0) -> datetime:
    return T0 + timedelta(hours=hours)


def scan(iid: int, code_id: int, hours: float = 0.0, kind: str = "booth") -> Event:
    return Event("scan", iid, at(hours), code_id=code_id, code_kind=kind)


def read(iid: int, material_id: int, hours: float = 0.0, kind: str = "whitepaper",
         progress: float = 1.0, seconds: float = 60.0) -> Event:
    return Event("read", iid, at(hours), material_id=material_id, material_kind=kind,
                 progress=progress, seconds=seconds)


def earned(events: list[Event], using: rules.Rules = RULES) -> list[tuple[str, int, int]]:
    return [(e.rule, e.points, e.interaction_id or 0)
            for e in scoring.behavior_entries(using, events)]


def custom(behavior: str, profile: str = "[]") -> rules.Rules:
    return rules.parse("thresholds: {fit: 10, engagement: 10}\n"
                       f"profile: {profile}\nbehavior:\n{behavior}", "test.yaml")


def fit(**profile: str | None) -> list[tuple[str, int]]:
    found = scoring.profile_entries(RULES, profile, has_phone=False, sources={}, now=T0)
    return [(e.rule, e.points) for e in found]


# --- caps --------------------------------------------------------------------------------------

def test_a_rule_never_gives_past_its_cap():
    # booth_scan: 5 a code, at most 10 in all — a third booth earns nothing
    assert earned([scan(1, 1), scan(2, 2), scan(3, 3)]) == [("booth_scan", 5, 1),
                                                            ("booth_scan", 5, 2)]
    # the last step is cut to what the cap leaves
    partial = custom("  - {id: step, on: form_submit, points: 4, cap: 10, window_hours: 1}\n")
    forms = [Event("form_submit", i, at(i)) for i in range(1, 5)]
    assert earned(forms, partial) == [("step", 4, 1), ("step", 4, 2), ("step", 2, 3)]


def test_a_negative_rule_is_capped_in_absolute_value():
    events = [Event("unfollow", 1, at(0)), Event("unfollow", 2, at(100)),
              Event("unfollow", 3, at(1000))]
    assert earned(events) == [("unfollow", -5, 1)]
    twice = custom("  - {id: gone, on: unfollow, points: -4, cap: 6, window_hours: 1}\n")
    assert earned(events, twice) == [("gone", -4, 1), ("gone", -2, 2)]


# --- repeat windows ----------------------------------------------------------------------------

def test_a_code_counts_once_per_window_and_each_code_apart():
    events = [scan(1, 1, 0), scan(2, 1, 23.9), scan(3, 2, 23.9)]
    assert earned(events) == [("booth_scan", 5, 1), ("booth_scan", 5, 3)]
    roomy = custom("  - {id: s, on: scan, points: 1, cap: 100, per: code, window_hours: 24}\n")
    again = [scan(1, 1, 0), scan(2, 1, 23.9), scan(3, 1, 24), scan(4, 1, 47.9), scan(5, 1, 48)]
    assert earned(again, roomy) == [("s", 1, 1), ("s", 1, 3), ("s", 1, 5)]


def test_a_material_counts_once_ever_without_a_window():
    events = [read(1, 10, 0), read(2, 10, 24 * 365), read(3, 11, 1)]
    assert earned(events) == [("whitepaper_read", 15, 1), ("whitepaper_read", 15, 3)]


def test_a_window_without_per_is_for_the_rule_as_a_whole():
    events = [Event("pricing_request", 1, at(0), material_id=10),
              Event("pricing_request", 2, at(2), material_id=11),
              Event("pricing_request", 3, at(24))]
    assert earned(events) == [("pricing_request", 20, 1), ("pricing_request", 20, 3)]
    assert earned([Event("demo_request", 1, at(0)), Event("demo_request", 2, at(500))]) == [
        ("demo_request", 50, 1)]


def test_events_count_in_the_order_they_happened():
    events = [scan(2, 1, 5), scan(1, 1, 0)]  # given out of order
    assert earned(events) == [("booth_scan", 5, 1)]


# --- groups ------------------------------------------------------------------------------------

def test_a_group_takes_only_its_best_rule():
    # a booth code is also a code: booth_scan (5), not code_scan (3) besides
    assert earned([scan(1, 1)]) == [("booth_scan", 5, 1)]
    assert earned([scan(1, 7, kind="material")]) == [("code_scan", 3, 1)]
    # a whitepaper is also material: 15, not 15 + 10
    assert earned([read(1, 10)]) == [("whitepaper_read", 15, 1)]
    assert earned([read(1, 12, kind="article")]) == [("material_read", 10, 1)]
    # rules of other groups add up
    subscribe = {"id": 5, "kind": "event.subscribe", "code_id": 1, "received_at": at(),
                 "payload": {}}
    events = scoring.events_of(subscribe, CODES, MATERIALS)
    assert [e.name for e in events] == ["scan", "follow"]
    assert earned(events) == [("booth_scan", 5, 5), ("follow", 5, 5)]


def test_a_read_counts_only_when_read_far_and_long_enough():
    assert earned([read(1, 10, progress=0.89)]) == []
    assert earned([read(1, 10, seconds=9.9)]) == []
    assert earned([read(1, 10, progress=0.9, seconds=10)]) == [("whitepaper_read", 15, 1)]
    row = {"id": 8, "kind": "mp.read", "code_id": None, "received_at": at(),
           "payload": {"material_id": 11, "progress": 1.0, "seconds": 31.5}}
    [event] = scoring.events_of(row, CODES, MATERIALS)
    assert (event.name, event.material_kind, event.progress, event.seconds) == (
        "read", "whitepaper", 1.0, 31.5)


# --- decay -------------------------------------------------------------------------------------

def rows(*items: tuple[int, str, float, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": iid, "kind": kind, "code_id": None, "received_at": at(hours),
             "payload": payload} for iid, kind, hours, payload in items]


def test_behaviour_points_halve_after_one_half_life_and_profile_points_do_not():
    log = Log(rows((1, "mp.action", 0, {"action": "demo_request"}),
                   (2, "mp.action", 0, {"action": "pricing_request"}),
                   (3, "mp.profile", 0, {})),
              {"title": "市场总监", "company_size": "500-999"}, has_phone=False)
    fresh = scoring.compute(RULES, log, {}, {}, at())
    assert (fresh.profile, fresh.behavior) == (14, 70)
    half = scoring.compute(RULES, log, {}, {}, at(24 * 30))
    assert (half.profile, half.behavior) == (14, 35)
    assert half.entries == fresh.entries  # the ledger keeps points as earned
    quarter = scoring.compute(RULES, log, {}, {}, at(24 * 60))
    assert quarter.behavior == round(70 / 4)


def test_a_stored_ledger_decays_when_read():
    stored = [ScoreEntry(rule="demo_request", kind="behavior", points=50, interaction_id=1,
                         at=at()),
              ScoreEntry(rule="title_vp", kind="profile", points=10, interaction_id=2, at=at())]
    assert scoring.score_now(RULES, stored, at()).behavior == 50
    later = scoring.score_now(RULES, stored, at(24 * 30))
    assert (later.profile, later.behavior, later.total) == (10, 25, 35)
    assert scoring.decayed(RULES, [Entry("x", "behavior", 40, 1, at())], at(24 * 30)) \
        == pytest.approx(20.0)


# --- profile -----------------------------------------------------------------------------------

def test_a_profile_group_counts_its_best_rule_only():
    assert fit(title="副总经理") == [("title_vp", 10)]  # also a 经理: the VP rule only
    assert fit(title="市场总监") == [("title_director", 8)]
    assert fit(title="销售经理") == [("title_manager", 6)]
    assert fit(title="VP of Sales", department="Marketing") == [("title_vp", 10),
                                                                ("department_buyer", 4)]
    assert fit(title="实习生") == [] and fit(title="") == [] and fit(title=None) == []


def test_a_latin_word_counts_only_as_a_whole_word():
    assert fit(title="Marketing Director") == [("title_director", 8)]  # CTO is not in it
    assert fit(title="Marketing Coordinator") == []  # nor COO
    assert fit(title="CTO") == [("title_vp", 10)] and fit(title="CTO办公室主任") == [
        ("title_vp", 10)]
    assert fit(title="Vice-President, Sales") == [("title_vp", 10)]
    assert fit(department="IT部") == [("department_buyer", 4)]
    assert fit(department="Quality Audit") == []  # no IT in it


def test_cleaning_and_key_accounts_match_words():
    assert opportunities.cleaned(RULES, Prospect(company="测试公司"), None) == "test data"
    assert opportunities.cleaned(RULES, Prospect(name="Test User"), None) == "test data"
    assert opportunities.cleaned(RULES, Prospect(company="Latest Robotics"), None) is None
    assert opportunities.cleaned(RULES, Prospect(email="a@sub.competitor.example"),
                                 None) == "competitor email domain"
    assert opportunities.cleaned(RULES, Prospect(), "13800138000") == "invalid phone"
    assert opportunities.cleaned(RULES, Prospect(), "13912345678") is None
    accounts = rules.parse("thresholds: {fit: 1, engagement: 1}\nprofile:\nbehavior:\n"
                           "key_accounts: [华东精密, GE]\n")
    assert opportunities.key_account(accounts, Prospect(company="华东精密股份")) == "华东精密"
    assert opportunities.key_account(accounts, Prospect(company="GE Healthcare")) == "GE"
    assert opportunities.key_account(accounts, Prospect(company="Orange SA")) is None


@pytest.mark.parametrize(("size", "rule"), [
    ("500-999人", ("company_500", 6)), ("500-999", ("company_500", 6)),
    ("1000人以上", ("company_1000", 8)), ("1,000-4,999人", ("company_1000", 8)),
    ("100-499", ("company_100", 3)), ("50-99人", None), ("几百人", None),
])
def test_min_reads_the_first_number_of_a_company_size(size, rule):
    assert fit(company_size=size) == ([rule] if rule else [])


def test_profile_rows_name_the_interaction_that_gave_the_field():
    log = Log(rows((3, "mp.profile", 0, {}), (4, "mp.phone", 1, {}), (6, "mp.profile", 2, {})),
              {"title": "CTO"}, has_phone=True)
    score = scoring.compute(RULES, log, {}, {}, at(3))
    assert [(e.rule, e.points, e.interaction_id) for e in score.entries] == [
        ("title_vp", 10, 6), ("phone_bound", 10, 4)]
    assert score.profile == 20 and score.behavior == 0 and score.quadrant == scoring.NURTURE


# --- quadrants ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("profile", "behavior", "quadrant"), [
    (20, 40, scoring.OPPORTUNITY), (200, 400, scoring.OPPORTUNITY),
    (20, 39, scoring.NURTURE), (19, 40, scoring.OTHER_OFFER), (19, 39, scoring.POOL),
    (0, 0, scoring.POOL), (-5, -5, scoring.POOL),
])
def test_the_quadrant_thresholds(profile, behavior, quadrant):
    assert scoring.quadrant(RULES, profile, behavior) == quadrant


def test_the_booth_story_scores_into_the_opportunity_quadrant():
    log = Log(rows((1, "event.subscribe", 0, {}), (2, "mp.login", 0.1, {}),
                   (3, "mp.profile", 0.2, {}), (4, "mp.phone", 0.3, {}),
                   *((5 + n, "mp.read", 0.4 + n / 10,
                      {"material_id": 10 + n, "progress": 1.0, "seconds": 30.0})
                     for n in range(3))),
              {"title": "市场总监", "company_size": "500-999"}, has_phone=True)
    log.rows[0]["code_id"] = 1
    score = scoring.compute(RULES, log, CODES, {10: "whitepaper", 11: "whitepaper",
                                                12: "whitepaper"}, at(1))
    assert (score.profile, score.behavior, score.quadrant) == (24, 55, scoring.OPPORTUNITY)
    assert [e.rule for e in score.entries] == [
        "title_director", "company_500", "phone_bound", "booth_scan", "follow",
        "whitepaper_read", "whitepaper_read", "whitepaper_read"]
