"""Scoring rules as data: the shipped defaults load, and every kind of bad file is refused with a
message naming the file and the line where the problem is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from domain import rules
from domain.rules import RulesError

GOOD = """\
attribution: first_touch
half_life_days: 30
thresholds:
  fit: 20
  engagement: 40
routing:
  nurture_tag: 培育中
profile:
  - {id: title_manager, field: title, points: 6, contains: [经理]}
behavior:
  - id: code_scan
    on: scan
    points: 3
    cap: 9
    per: code
    window_hours: 24
cleaning:
  invalid_phones:
    - '^1(\\d)\\1{9}$'
"""
# line numbers in GOOD: 9 the profile rule, 11 `- id: code_scan`, 12 `on`, 14 `cap`, 19 the regex


def refused(text: str, source: str = "rules.yaml") -> str:
    with pytest.raises(RulesError) as caught:
        rules.parse(text, source)
    return str(caught.value)


def line_of(message: str) -> int:
    found = re.search(r", line (\d+):", message)
    assert found, message
    return int(found.group(1))


def test_the_shipped_defaults_load():
    loaded = rules.load()
    assert loaded.source == str(rules.DEFAULTS)
    assert loaded.attribution == "first_touch" and loaded.half_life_days == 30.0
    assert (loaded.fit, loaded.engagement) == (20, 40)
    assert (loaded.nurture_tag, loaded.other_offer_tag) == ("培育中", "其他方案")
    ids = [rule.id for rule in (*loaded.profile, *loaded.behavior)]
    assert len(ids) == len(set(ids))
    assert {"title_vp", "title_director", "title_manager", "company_500", "phone_bound"} <= set(
        ids)
    assert {"booth_scan", "code_scan", "follow", "whitepaper_read", "demo_request"} <= set(ids)
    booth = next(r for r in loaded.behavior if r.id == "booth_scan")
    assert (booth.on, booth.code_kind, booth.points, booth.cap, booth.per, booth.window_hours) \
        == ("scan", "booth", 5, 10, "code", 24.0)
    assert "测试" in loaded.test_markers and loaded.competitor_domains == ("competitor.example",)
    assert any(p.search("13800138000") for p in loaded.invalid_phones)
    assert not any(p.search("13912345678") for p in loaded.invalid_phones)
    assert loaded.key_accounts == ()
    assert loaded.label("whitepaper_read") == "读完白皮书" and loaded.label("nope") == "nope"


def test_a_good_file_parses_and_loads_from_a_path(tmp_path: Path):
    parsed = rules.parse(GOOD, "mine.yaml")
    assert parsed.source == "mine.yaml"
    assert [r.id for r in parsed.profile] == ["title_manager"]
    assert parsed.profile[0].group == "title_manager"  # a rule is its own group by default
    assert parsed.other_offer_tag is None and parsed.test_markers == ()
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert rules.load(path) == parsed


def test_an_optional_section_left_empty_is_no_section():
    text = ("thresholds: {fit: 1, engagement: 1}\nprofile:\nbehavior:\nrouting:\n"
            "cleaning:\n  # test_markers: [测试]\n  invalid_phones:\nkey_accounts:\n")
    parsed = rules.parse(text)
    assert (parsed.profile, parsed.behavior, parsed.key_accounts, parsed.invalid_phones) == (
        (), (), (), ())
    assert parsed.nurture_tag is None and parsed.test_markers == ()
    assert "`thresholds` must be a mapping" in refused(text.replace("{fit: 1, engagement: 1}",
                                                                    ""))


def test_an_unknown_field_at_the_top_is_refused_on_its_line():
    message = refused(GOOD + "colour: red\n")
    assert message.startswith("rules.yaml, line 20: unknown field `colour` in the rules file")


def test_an_unknown_field_inside_a_rule_is_refused_on_its_line():
    text = GOOD.replace("    per: code\n", "    colour: red\n    per: code\n")
    message = refused(text)
    assert line_of(message) == 15 and "unknown field `colour` in a behaviour rule" in message
    # a value that starts on the next line: the key's line
    text = GOOD.replace("    per: code\n", "    colours:\n      - red\n    per: code\n")
    assert line_of(refused(text)) == 15
    flow = GOOD.replace("contains: [经理]}", "contains: [经理], weight: 2}")
    message = refused(flow)
    assert line_of(message) == 9 and "unknown field `weight` in a profile rule" in message


def test_a_negative_cap_is_refused():
    message = refused(GOOD.replace("cap: 9", "cap: -1"))
    assert message == ("rules.yaml, line 14: `cap` in behaviour rule `code_scan` must be from "
                       "0 to 100000")


def test_a_duplicate_rule_id_names_both_lines():
    text = GOOD.replace("  - id: code_scan", "  - id: title_manager")
    message = refused(text)
    assert message == ("rules.yaml, line 11: duplicate rule id `title_manager` "
                       "(first on line 9)")


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("points: 3", "points: many", 13, "`points` in behaviour rule `code_scan` must be a whole"),
    ("points: 3", "points: 2.5", 13, "must be a whole number"),
    ("cap: 9", "cap: true", 14, "`cap` in behaviour rule `code_scan` must be a whole number"),
    ("window_hours: 24", "window_hours: soon", 16, "`window_hours` in behaviour rule"),
    ("fit: 20", "fit: [20]", 4, "`fit` in `thresholds` must be a whole number"),
    ("contains: [经理]", "contains: 经理", 9, "`contains` in profile rule `title_manager` must be"),
    ("contains: [经理]", "contains: [[经理]]", 9, "every item of `contains` must be text"),
    ("half_life_days: 30", "half_life_days: 0", 2, "`half_life_days` in the rules file must be"),
    ("  - id: code_scan", "  - id: Code-Scan", 11, "rule id 'Code-Scan' must be lower-case"),
])
def test_a_wrong_type_or_value_is_refused_on_its_line(old, new, line, words):
    message = refused(GOOD.replace(old, new))
    assert line_of(message) == line and words in message, message


def test_an_unknown_event_is_refused():
    message = refused(GOOD.replace("on: scan", "on: jump"))
    assert line_of(message) == 12
    assert "`on` in behaviour rule `code_scan` must be one of scan, follow" in message
    assert message.endswith("not 'jump'")


def test_code_kind_needs_on_scan():
    text = GOOD.replace("on: scan", "on: follow").replace("    per: code\n",
                                                          "    code_kind: booth\n")
    message = refused(text)
    assert message == "rules.yaml, line 15: `code_kind` in behaviour rule `code_scan` needs " \
                      "`on: scan`"
    reading = GOOD.replace("    per: code\n", "    min_progress: 0.9\n")
    assert "`min_progress` in behaviour rule `code_scan` needs `on: read`" in refused(reading)


def test_a_bad_regular_expression_is_refused_on_its_line():
    text = GOOD + "    - '^1380013800\\d$'\n    - '(['\n"
    message = refused(text)
    assert line_of(message) == 21
    assert "invalid_phones: '([' is not a regular expression" in message


def test_invalid_yaml_is_refused_with_its_line():
    message = refused(GOOD + "key_accounts: [华东精密\n")
    assert message.startswith("rules.yaml, line ") and "not valid YAML" in message
    assert line_of(refused("thresholds:\n  fit: 1\n   engagement: 2\n")) == 3
    assert "not valid YAML" in refused("a: 1\n---\nb: 2\n")  # one document only


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_refused(text):
    assert refused(text) == "rules.yaml, line 1: the file is empty"


def test_a_file_that_is_not_rules_is_refused():
    assert refused("- a\n- b\n") == ("rules.yaml, line 1: the rules file must be a mapping of "
                                     "fields")
    assert refused("thresholds: {fit: 1, engagement: 1}\nprofile: []\n") == (
        "rules.yaml, line 1: the rules file needs `behavior`")
    assert "`thresholds` needs `engagement`" in refused(GOOD.replace("  engagement: 40\n", ""))
    assert line_of(refused(GOOD + "profile: []\n")) == 20  # a key given twice
    assert "gives no points" in refused(GOOD.replace("points: 3", "points: 0"))


def test_values_yaml_cannot_make_are_refused_not_crashed():
    for bad in ("label: !!python/object:os.system x", "label: !!int abc",
                "label: 2026-13-45"):
        message = refused(GOOD.replace("    per: code\n", f"    {bad}\n    per: code\n"))
        assert line_of(message) == 15 and "cannot be read as a value" in message, message


def test_aliases_that_never_end_are_refused():
    assert refused("a: &x [*x]\n") == ("rules.yaml, line 1: an alias refers to the value it is "
                                       "part of")
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef", strict=True))
    assert "more than 100000 values" in refused(laughs)
    assert "nested too deeply" in refused("a: " + "[" * 3000 + "]" * 3000 + "\n")
    shared = GOOD.replace("contains: [经理]", "contains: &m [经理]") + "key_accounts: *m\n"
    assert rules.parse(shared).key_accounts == ("经理",)  # an ordinary alias is fine


def test_a_file_that_cannot_be_read_names_itself(tmp_path: Path):
    with pytest.raises(RulesError, match=r"missing\.yaml: cannot be read"):
        rules.load(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"attribution: \xff\n")
    with pytest.raises(RulesError, match=r"latin\.yaml: cannot be read"):
        rules.load(latin)
    broken = tmp_path / "broken.yaml"
    broken.write_text(GOOD.replace("cap: 9", "cap: -1"), encoding="utf-8")
    with pytest.raises(RulesError, match=rf"^{re.escape(str(broken))}, line 14: "):
        rules.load(broken)
