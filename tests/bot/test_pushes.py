"""bot.pushes: parsing a push once, classifying it, keying it for de-duplication."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.events import ScanEvent, SubscribeScanEvent, TemplateSendJobFinishEvent
from wechatpy.messages import TextMessage

from bot.pushes import (
    MalformedPush,
    classify,
    dedup_key,
    element_fields,
    flat_fields,
    guard,
    parse_body,
)
from tests.bot.test_callbacks_oa import DECLARATIONS, MALFORMED

TEXT = ("<xml>\n  <ToUserName><![CDATA[toUser]]></ToUserName>\n  <FromUserName><![CDATA[fromUser]]>"
        "</FromUserName>\n  <CreateTime>1348831860</CreateTime>\n  <MsgType><![CDATA[text]]>"
        "</MsgType>\n  <Content><![CDATA[this is a test]]></Content>\n  <MsgId>1234567890123456"
        "</MsgId>\n</xml>")
QR_SUBSCRIBE = ("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
                "</FromUserName>\n<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]>"
                "</MsgType>\n<Event><![CDATA[subscribe]]></Event>\n<EventKey><![CDATA[qrscene_123123]]>"
                "</EventKey>\n<Ticket><![CDATA[TICKET]]></Ticket></xml>")
SCAN = ("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]>"
        "</FromUserName>\n<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[SCAN]]></Event>\n<EventKey><![CDATA[SCENE_VALUE]]></EventKey>\n"
        "<Ticket><![CDATA[TICKET]]></Ticket></xml>")
TEMPLATE_DONE = ("<xml>\n<ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>\n"
                 "<FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>\n<CreateTime>1395658920"
                 "</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA["
                 "TEMPLATESENDJOBFINISH]]></Event>\n<MsgID>200163836</MsgID>\n<Status><![CDATA["
                 "success]]></Status>\n</xml>")
CONTACT = ("<xml>\n  <ToUserName><![CDATA[toUser]]></ToUserName>\n  <FromUserName><![CDATA[sys]]>"
           "</FromUserName>\n  <CreateTime>1403610513</CreateTime>\n  <MsgType><![CDATA[event]]>"
           "</MsgType>\n  <Event><![CDATA[change_external_contact]]></Event>\n  "
           "<ChangeType><![CDATA[add_external_contact]]></ChangeType>\n  "
           "<UserID><![CDATA[zhangsan]]></UserID>\n  "
           "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mAAAA]]></ExternalUserID>\n  <State>"
           "<![CDATA[teststate]]></State>\n  <WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>\n"
           "</xml>")


def test_parse_xml_and_json_alike() -> None:
    xml = parse_body(TEXT)
    assert xml["MsgId"] == "1234567890123456" and xml["Content"] == "this is a test"
    json_fields = parse_body(b'{"MsgType": "text", "CreateTime": 1348831860, "MsgId": 5}')
    assert json_fields == {"MsgType": "text", "CreateTime": "1348831860", "MsgId": "5"}
    assert parse_body(b"  \n" + TEXT.encode() + b"\n")["MsgType"] == "text"


@pytest.mark.parametrize("case", sorted(DECLARATIONS))
def test_guard_refuses_declarations(case: str) -> None:
    with pytest.raises(MalformedPush):
        guard(DECLARATIONS[case].encode())
    with pytest.raises(MalformedPush):
        parse_body(DECLARATIONS[case])


def test_guard_lets_the_xml_declaration_and_cdata_through() -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?><xml><Content><![CDATA[<!-- a -->]]></Content>' \
           b"<MsgType>text</MsgType></xml>"
    guard(body)
    assert parse_body(body)["Content"] == "<!-- a -->"


@pytest.mark.parametrize("body", [b"\xff\xfe<\x00x\x00", b"<xml>\x00</xml>",
                                  b"<xml>\xc3\x28</xml>"])
def test_guard_refuses_what_is_not_utf8(body: bytes) -> None:
    with pytest.raises(MalformedPush):
        guard(body)


@pytest.mark.parametrize("case", sorted(set(MALFORMED) - {"no msgtype", "empty msgtype",
                                                          "json without msgtype"}))
def test_parse_refuses_malformed(case: str) -> None:
    with pytest.raises(MalformedPush):
        parse_body(MALFORMED[case])


def test_classify_messages_and_events() -> None:
    text = classify("oa", parse_body(TEXT))
    assert (text.kind, text.actor, text.scene) == ("message.text", "fromUser", None)
    assert text.dedup_key == "msg:1234567890123456"
    assert isinstance(text.message, TextMessage)

    subscribe = classify("oa", parse_body(QR_SUBSCRIBE))
    assert (subscribe.kind, subscribe.scene) == ("event.subscribe", "123123")
    assert isinstance(subscribe.message, SubscribeScanEvent)
    assert subscribe.message.scene_id == "123123"

    scan = classify("oa", parse_body(SCAN))
    assert (scan.kind, scan.scene) == ("event.scan", "SCENE_VALUE")
    assert isinstance(scan.message, ScanEvent)

    done = classify("oa", parse_body(TEMPLATE_DONE))
    assert done.kind == "event.templatesendjobfinish" and done.get("MsgID") == "200163836"
    assert isinstance(done.message, TemplateSendJobFinishEvent)

    contact = classify("wecom", parse_body(CONTACT))
    assert contact.kind == "event.change_external_contact.add_external_contact"
    assert (contact.actor, contact.scene) == ("woAJ2GCAAAXtWyujaWJHDDGi0mAAAA", "teststate")


def test_plain_subscribe_and_empty_event_key_have_no_scene() -> None:
    fields = {"FromUserName": "o1", "CreateTime": "1", "MsgType": "event", "Event": "subscribe",
              "EventKey": None}
    assert classify("oa", fields).scene is None
    assert classify("oa", {**fields, "EventKey": "not_a_qrscene"}).scene is None
    assert classify("oa", {**fields, "Event": "SCAN", "EventKey": ""}).scene is None


def test_missing_msgtype_is_malformed() -> None:
    with pytest.raises(MalformedPush):
        classify("oa", {"FromUserName": "o1"})


def test_dedup_key_follows_wechats_retry_rules() -> None:
    event = {"FromUserName": "o1", "CreateTime": "100", "MsgType": "event", "Event": "subscribe"}
    assert dedup_key(event) == dedup_key(dict(event))  # a retry is the same push
    assert dedup_key(event) == dedup_key({**event, "Ticket": "other"})
    # one person, one second, but different events or keys: not a retry
    keys = {dedup_key(event),
            dedup_key({**event, "Event": "SCAN"}),
            dedup_key({**event, "EventKey": "qrscene_1"}),
            dedup_key({**event, "EventKey": "qrscene_2"}),
            dedup_key({**event, "CreateTime": "101"}),
            dedup_key({**event, "FromUserName": "o2"}),
            dedup_key({**event, "Event": "change_external_contact", "ChangeType": "a"}),
            dedup_key({**event, "Event": "change_external_contact", "ChangeType": "b"}),
            dedup_key({**event, "Event": "TEMPLATESENDJOBFINISH", "MsgID": "1"}),
            dedup_key({**event, "Event": "TEMPLATESENDJOBFINISH", "MsgID": "2"})}
    assert len(keys) == 10
    assert dedup_key({"MsgId": "42", "CreateTime": "1"}) == dedup_key({"MsgId": "42",
                                                                      "CreateTime": "9"})
    assert len(max(keys, key=len)) <= 191  # fits the column



@pytest.mark.parametrize("xml", [
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
    "<CreateTime>1409304348</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[你好 <b> & ]]></Content><MsgId>6054768590064713728</MsgId></xml>",
    "<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[pic_photo_or_album]]></Event>"
    "<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum><![CDATA[a]]></PicMd5Sum></item>"
    "<item><PicMd5Sum><![CDATA[b]]></PicMd5Sum></item></PicList></SendPicsInfo>"
    "<EventKey></EventKey></xml>",
    "<xml>\n  <MsgType>event</MsgType>\n  <Event>subscribe</Event>\n</xml>",
])
def test_fields_are_what_xmltodict_gives(xml: str) -> None:
    """wechatpy reads pushes through xmltodict; the faster parse must give the same fields."""
    import xmltodict

    assert parse_body(xml.encode()) == xmltodict.parse(xml)["xml"]


# --- the fast reading of flat pushes ------------------------------------------------------------

TRICKY = st.sampled_from(["]", "]]", "]]>", ">", "<", "&", "&amp;", "\r", "\r\n", "\n", " ",
                          "\t", "\x01", "\x0b", "\ufffe", "<![CDATA[", "你好", "a", "0", "/"])
CONTENT = st.lists(st.one_of(TRICKY, st.text(max_size=4)), max_size=6).map("".join)
NAME = st.sampled_from(["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "_x",
                        "a1", "1a", "xml", "Event"])
GAP = st.sampled_from(["", " ", "\n", "\r\n", "\t ", "x", "&amp;"])


@st.composite
def flat_documents(draw: st.DrawFn) -> str:
    leaves = []
    for _ in range(draw(st.integers(0, 5))):
        name, content = draw(NAME), draw(CONTENT)
        style = draw(st.sampled_from(["cdata", "plain", "empty", "twice"]))
        if style == "cdata":
            leaf = f"<{name}><![CDATA[{content}]]></{name}>"
        elif style == "twice":
            leaf = f"<{name}><![CDATA[{content}]]><![CDATA[{content}]]></{name}>"
        elif style == "empty":
            leaf = f"<{name}></{name}>"
        else:
            leaf = f"<{name}>{content}</{name}>"
        leaves.append(draw(GAP) + leaf)
    return "<xml>" + "".join(leaves) + draw(GAP) + "</xml>"


def parsed_by_expat(text: str) -> object:
    try:
        root = ElementTree.fromstring(text.encode())
    except ElementTree.ParseError:
        return "refused"
    return element_fields(root)


@settings(max_examples=1500, deadline=None)
@given(flat_documents())
def test_flat_reading_agrees_with_the_xml_parser(text: str) -> None:
    fields = flat_fields(text)
    if fields is not None:  # read fast: exactly what the parser gives
        assert fields == parsed_by_expat(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ToUserName", "Content", "MsgId", "Event"]),
                          st.text(alphabet=st.characters(codec="utf-8", exclude_characters="]\r",
                                                         exclude_categories=["Cs", "Cc"]),
                                  max_size=20)), min_size=1, max_size=6))
def test_what_wechat_sends_is_read_fast(leaves: list[tuple[str, str]]) -> None:
    """CDATA leaves of any text without `]` or CR: the fast path takes them all."""
    text = "<xml>" + "".join(f"<{n}><![CDATA[{v}]]></{n}>" for n, v in leaves) + "</xml>"
    if "\ufffe" in text or "\uffff" in text:
        return
    fields = flat_fields(text)
    assert fields is not None and fields == parsed_by_expat(text)


@pytest.mark.parametrize("text", [
    "<xml></xml>", "<xml> </xml>", "<xml><a>1</a>x</xml>", "<xml><a><b>1</b></a></xml>",
    "<xml><a>x &amp; y</a></xml>", "<xml><a>1\r\n2</a></xml>", "<xml><a/></xml>",
    "<root><a>1</a></root>", "<xml><a>1</b></xml>", "<xml><a><![CDATA[x]]>]]></a></xml>",
])
def test_anything_else_is_left_to_the_xml_parser(text: str) -> None:
    assert flat_fields(text) is None


def test_a_typical_push_is_read_fast() -> None:
    text = ("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]>"
            "</FromUserName><CreateTime>1409304348</CreateTime><MsgType><![CDATA[event]]>"
            "</MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_x]]>"
            "</EventKey><Ticket><![CDATA[t]]></Ticket></xml>")
    assert flat_fields(text) == parsed_by_expat(text) == parse_body(text)
