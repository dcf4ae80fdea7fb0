"""Scoring rules as data: a YAML file ops can read and edit (domain/scoring_rules.yaml holds the
defaults and explains every field). A file is validated whole when it is loaded: anything wrong
— an unknown field, a wrong type, a negative cap, a duplicate rule id, a bad regular expression —
refuses it with a message naming the line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

DEFAULTS = Path(__file__).with_name("scoring_rules.yaml")
PROFILE_FIELDS = ("name", "company", "title", "department", "industry", "company_size", "email",
                  "phone")
EVENTS = ("scan", "follow", "unfollow", "wecom_added", "read", "demo_request", "pricing_request",
          "webinar_signup", "webinar_attend", "form_submit")
CODE_KINDS = ("booth", "material", "salesperson", "partner")
MATERIAL_KINDS = ("article", "whitepaper", "case", "video", "webinar")
ATTRIBUTIONS = ("first_touch", "last_touch")
FIRST_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+")  # "1,000-4,999人" -> 1000


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def contains(text: str, word: str) -> bool:
    """Whether `word` is in `text`, case-insensitively. A word that begins or ends with a Latin
    letter or digit must begin or end a word there (CTO is not in Director, COO not in
    Coordinator, test not in Latest); Chinese has no spaces, so 经理 is found anywhere."""
    text, word = text.casefold(), word.casefold()
    start = 0
    while word and (at := text.find(word, start)) >= 0:
        end = at + len(word)
        if not (_latin(word[0]) and at > 0 and _latin(text[at - 1])) and not (
                _latin(word[-1]) and end < len(text) and _latin(text[end])):
            return True
        start = at + 1
    return False


class RulesError(ValueError):
    """A rules file that cannot be used: `str()` names the file and line."""


@dataclass(frozen=True)
class ProfileRule:
    id: str
    group: str
    field: str
    points: int
    contains: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    min: int | None = None
    present: bool = False
    label: str = ""

    def matches(self, value: str | None) -> bool:
        if value is None or value == "":
            return False
        if self.present:
            return True
        text = value.casefold()
        if self.contains and any(contains(value, word) for word in self.contains):
            return True
        if self.any_of and text in {word.casefold() for word in self.any_of}:
            return True
        if self.min is not None and (number := FIRST_NUMBER.search(value)) is not None:
            return int(number.group().replace(",", "")) >= self.min
        return False


@dataclass(frozen=True)
class BehaviorRule:
    id: str
    group: str
    on: str
    points: int
    cap: int
    per: str | None = None  # code | material
    window_hours: float | None = None  # None: once ever per `per`
    code_kind: str | None = None
    material_kind: str | None = None
    min_progress: float | None = None
    min_seconds: float | None = None
    label: str = ""


@dataclass(frozen=True)
class Rules:
    attribution: str
    half_life_days: float
    fit: int
    engagement: int
    nurture_tag: str | None
    other_offer_tag: str | None
    profile: tuple[ProfileRule, ...]
    behavior: tuple[BehaviorRule, ...]
    test_markers: tuple[str, ...] = ()
    competitor_domains: tuple[str, ...] = ()
    invalid_phones: tuple[re.Pattern[str], ...] = ()
    key_accounts: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @cached_property
    def behavior_on(self) -> dict[str, tuple[BehaviorRule, ...]]:
        """The behaviour rules by the event they count, in file order (scoring looks them up
        once per event)."""
        found: dict[str, list[BehaviorRule]] = {}
        for rule in self.behavior:
            found.setdefault(rule.on, []).append(rule)
        return {name: tuple(rules) for name, rules in found.items()}

    def label(self, rule_id: str) -> str:
        """A rule's label (for people: the opportunity page, the push), or its id."""
        for rule in (*self.profile, *self.behavior):
            if rule.id == rule_id:
                return rule.label or rule.id
        return rule_id


# --- reading YAML with line numbers ------------------------------------------------------------


class _Node:
    """A YAML value with the line it starts on (1-based)."""

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line


MAX_NODES = 100_000  # values in a rules file, aliases counted each time they are used


def _convert(node: yaml.Node, within: frozenset[int] = frozenset(),
             count: list[int] | None = None) -> _Node:
    """`node` as values with lines; a value of a mapping takes the line of its key (where a
    reader looks for it, even when the value starts on the next line)."""
    line = node.start_mark.line + 1
    count = count if count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES:
        raise _Bad(line, f"the file holds more than {MAX_NODES} values (aliases included)")
    if id(node) in within:
        raise _Bad(line, "an alias refers to the value it is part of")
    inner = within | {id(node)}
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Bad(key_node.start_mark.line + 1, "a key must be a plain name")
            if key in mapping:
                raise _Bad(key_node.start_mark.line + 1, f"`{key}` is given twice")
            value = _convert(value_node, inner, count)
            mapping[key] = _Node(value.value, key_node.start_mark.line + 1)
        return _Node(mapping, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(item, inner, count) for item in node.value], line)
    return _Node(_scalar(node), line)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise _Bad(node.start_mark.line + 1, f"{node.value!r} cannot be read as a value "
                                             f"({problem})") from None
    finally:
        loader.dispose()


class _Bad(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Reader:
    """The fields of one mapping: each read once, the rest unknown."""

    def __init__(self, node: _Node, what: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(node.value, dict):
            raise _Bad(node.line, f"{what} must be a mapping of fields")
        self.node, self.what = node, what
        for name, value in node.value.items():
            if name not in allowed:
                raise _Bad(value.line, f"unknown field `{name}` in {what} "
                                       f"(allowed: {', '.join(allowed)})")

    def has(self, name: str) -> bool:
        return name in self.node.value

    def line(self, name: str) -> int:
        return self.node.value[name].line if name in self.node.value else self.node.line

    def get(self, name: str, kind: type | tuple[type, ...], *, required: bool = False,
            default: Any = None) -> Any:
        if name not in self.node.value or self.node.value[name].value is None:
            if required:
                raise _Bad(self.node.line, f"{self.what} needs `{name}`")
            return default
        value = self.node.value[name].value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            value = object()  # a bool is no number here
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            names = " or ".join({"str": "text", "int": "a whole number", "float": "a number",
                                 "bool": "true or false", "list": "a list"}.get(k.__name__,
                                                                                k.__name__)
                                for k in kinds)
            raise _Bad(self.line(name), f"`{name}` in {self.what} must be {names}")
        return value

    def words(self, name: str) -> tuple[str, ...]:
        if not self.has(name) or self.node.value[name].value is None:  # left empty: none
            return ()
        node = self.node.value[name]
        if not isinstance(node.value, list):
            raise _Bad(node.line, f"`{name}` in {self.what} must be a list")
        words = []
        for item in node.value:
            if isinstance(item.value, bool) or not isinstance(item.value, str | int | float):
                raise _Bad(item.line, f"every item of `{name}` must be text")
            text = str(item.value).strip()
            if not text:
                raise _Bad(item.line, f"an item of `{name}` is empty")
            words.append(text)
        return tuple(words)

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = False,
               default: str | None = None) -> str | None:
        value = self.get(name, str, required=required, default=default)
        if value is not None and value not in options:
            raise _Bad(self.line(name), f"`{name}` in {self.what} must be one of "
                                        f"{', '.join(options)}, not {value!r}")
        return value

    def number(self, name: str, *, low: float | None = None, high: float | None = None,
               whole: bool = False, required: bool = False,
               default: float | None = None) -> Any:
        value = self.get(name, int if whole else float, required=required, default=default)
        if value is None:
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = (f"at least {low:g}" if high is None else
                      f"from {low:g} to {high:g}" if low is not None else f"at most {high:g}")
            raise _Bad(self.line(name), f"`{name}` in {self.what} must be {bounds}")
        return value


TOP = ("attribution", "half_life_days", "thresholds", "routing", "profile", "behavior",
       "cleaning", "key_accounts")
PROFILE_KEYS = ("id", "label", "group", "field", "points", "contains", "in", "min", "present")
BEHAVIOR_KEYS = ("id", "label", "group", "on", "points", "cap", "per", "window_hours", "code_kind",
                 "material_kind", "min_progress", "min_seconds")
RULE_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _rule_id(reader: _Reader, seen: dict[str, int]) -> str:
    rule_id = reader.get("id", str, required=True)
    if not RULE_ID.fullmatch(rule_id):
        raise _Bad(reader.line("id"), f"rule id {rule_id!r} must be lower-case letters, digits "
                                      "and _ (at most 64)")
    if rule_id in seen:
        raise _Bad(reader.line("id"), f"duplicate rule id `{rule_id}` (first on line "
                                      f"{seen[rule_id]})")
    seen[rule_id] = reader.line("id")
    return rule_id


def _label(reader: _Reader) -> str:
    label = reader.get("label", str, default="")
    if len(label) > 32:
        raise _Bad(reader.line("label"), f"`label` in {reader.what} is over 32 characters")
    return label.strip()


def _profile_rule(node: _Node, seen: dict[str, int]) -> ProfileRule:
    r = _Reader(node, "a profile rule", PROFILE_KEYS)
    rule_id = _rule_id(r, seen)
    r.what = f"profile rule `{rule_id}`"
    rule = ProfileRule(
        id=rule_id, group=r.get("group", str, default=rule_id),
        field=r.choice("field", PROFILE_FIELDS, required=True) or "",
        points=r.number("points", low=-1000, high=1000, whole=True, required=True),
        contains=r.words("contains"), any_of=r.words("in"),
        min=r.number("min", low=0, whole=True), present=r.get("present", bool, default=False),
        label=_label(r))
    if not (rule.contains or rule.any_of or rule.min is not None or rule.present):
        raise _Bad(node.line, f"{r.what} needs one of `contains`, `in`, `min` or `present`")
    return rule


def _behavior_rule(node: _Node, seen: dict[str, int]) -> BehaviorRule:
    r = _Reader(node, "a behaviour rule", BEHAVIOR_KEYS)
    rule_id = _rule_id(r, seen)
    r.what = f"behaviour rule `{rule_id}`"
    rule = BehaviorRule(
        id=rule_id, group=r.get("group", str, default=rule_id),
        on=r.choice("on", EVENTS, required=True) or "",
        points=r.number("points", low=-1000, high=1000, whole=True, required=True),
        cap=r.number("cap", low=0, high=100_000, whole=True, required=True),
        per=r.choice("per", ("code", "material")),
        window_hours=r.number("window_hours", low=0.001, high=24 * 366 * 10),
        code_kind=r.choice("code_kind", CODE_KINDS),
        material_kind=r.choice("material_kind", MATERIAL_KINDS),
        min_progress=r.number("min_progress", low=0, high=1),
        min_seconds=r.number("min_seconds", low=0, high=86_400), label=_label(r))
    if rule.points == 0:
        raise _Bad(r.line("points"), f"{r.what} gives no points")
    if rule.code_kind and rule.on != "scan":
        raise _Bad(r.line("code_kind"), f"`code_kind` in {r.what} needs `on: scan`")
    reading = ("material_kind", "min_progress", "min_seconds")
    for name in reading:
        if r.has(name) and rule.on != "read":
            raise _Bad(r.line(name), f"`{name}` in {r.what} needs `on: read`")
    return rule


def parse(text: str, source: str = "<rules>") -> Rules:
    """The rules in `text`; RulesError naming `source` and the line when they are not valid."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise RulesError(f"{source}, line {line}: not valid YAML ({exc.problem})") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML ({exc})") from None
    except RecursionError:
        raise RulesError(f"{source}: values are nested too deeply") from None
    try:
        if document is None:
            raise _Bad(1, "the file is empty")
        return _rules(_convert(document), source)
    except _Bad as bad:
        raise RulesError(f"{source}, line {bad.line}: {bad.message}") from None
    except RecursionError:
        raise RulesError(f"{source}: values are nested too deeply") from None


def _rules(root: _Node, source: str) -> Rules:
    top = _Reader(root, "the rules file", TOP)
    for name in ("thresholds", "profile", "behavior"):
        if not top.has(name):
            raise _Bad(root.line, f"the rules file needs `{name}`")
    thresholds = _Reader(top.node.value["thresholds"], "`thresholds`", ("fit", "engagement"))
    routing = _section(top, "routing", ("nurture_tag", "other_offer_tag"))
    cleaning = _section(top, "cleaning", ("test_markers", "competitor_domains", "invalid_phones"))
    seen: dict[str, int] = {}
    profile = [_profile_rule(node, seen) for node in _items(top, "profile")]
    behavior = [_behavior_rule(node, seen) for node in _items(top, "behavior")]
    phones = []
    for pattern, line in _lines(cleaning, "invalid_phones"):
        try:
            phones.append(re.compile(pattern))
        except re.error as exc:
            raise _Bad(line, f"invalid_phones: {pattern!r} is not a regular expression "
                             f"({exc})") from None
    tag_limit = 32
    tags = {}
    for name in ("nurture_tag", "other_offer_tag"):
        tag = routing.get(name, str) if routing is not None else None
        if tag is not None and not 0 < len(tag.strip()) <= tag_limit:
            raise _Bad(routing.line(name) if routing else root.line,
                       f"`{name}` must be 1 to {tag_limit} characters")
        tags[name] = tag.strip() if tag else None
    return Rules(
        attribution=top.choice("attribution", ATTRIBUTIONS, default="first_touch") or "",
        half_life_days=top.number("half_life_days", low=0.01, high=3650, default=30.0),
        fit=thresholds.number("fit", low=0, high=100_000, whole=True, required=True),
        engagement=thresholds.number("engagement", low=0, high=100_000, whole=True,
                                     required=True),
        nurture_tag=tags["nurture_tag"], other_offer_tag=tags["other_offer_tag"],
        profile=tuple(profile), behavior=tuple(behavior),
        test_markers=cleaning.words("test_markers") if cleaning else (),
        competitor_domains=tuple(d.lower().lstrip("@") for d in (
            cleaning.words("competitor_domains") if cleaning else ())),
        invalid_phones=tuple(phones), key_accounts=top.words("key_accounts"), source=source)


def _section(top: _Reader, name: str, allowed: tuple[str, ...]) -> _Reader | None:
    """An optional section; left empty (every line of it commented out) it is not there."""
    if not top.has(name) or top.node.value[name].value is None:
        return None
    return _Reader(top.node.value[name], f"`{name}`", allowed)


def _items(top: _Reader, name: str) -> list[_Node]:
    node = top.node.value[name]
    if node.value is None:
        return []
    if not isinstance(node.value, list):
        raise _Bad(node.line, f"`{name}` must be a list of rules")
    return node.value


def _lines(reader: _Reader | None, name: str) -> list[tuple[str, int]]:
    if reader is None or not reader.words(name):
        return []
    words = reader.words(name)
    return list(zip(words, (item.line for item in reader.node.value[name].value), strict=True))


def load(path: str | Path | None = None) -> Rules:
    """The rules of the file at `path` (the shipped defaults when None)."""
    target = Path(path) if path else DEFAULTS
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{target}: cannot be read ({exc.__class__.__name__}: "
                         f"{getattr(exc, 'strerror', None) or exc})") from None
    return parse(text, str(target))
