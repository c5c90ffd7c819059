"""The packets' JSON module (gateway/transports/safe_json.py): the standard library's text for every
payload, its errors for what JSON cannot encode, and one encoder made once for the compact form."""

import datetime
import json
import math

import pytest

from gateway.transports import safe_json

PAYLOADS = [
    ["receive-personal-message", {"ChatId": "c", "Content": "héllo ✓ \u2028 \ud83d\ude00", "Seq": 3}],
    [{"ok": True, "data": {"Id": "m", "Duplicate": False, "Rev": None, "n": 2.5, "big": 10**30}}],
    {"nested": [[[{"a": []}]]], "": "", "esc": '"\\/\b\f\n\r\t</script>'},
    [math.inf, -math.inf],
    "text",
    7,
    None,
    [],
    {1: "int key", False: "bool key", None: "none key", 2.5: "float key"},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_compact_form_is_the_standard_librarys(payload):
    assert safe_json.dumps(payload, separators=(",", ":")) == json.dumps(payload, separators=(",", ":"))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_other_arguments_go_to_the_standard_library(payload):
    assert safe_json.dumps(payload) == json.dumps(payload)
    assert safe_json.dumps(payload, separators=(",", ":"), ensure_ascii=False) == json.dumps(
        payload, separators=(",", ":"), ensure_ascii=False
    )


def test_what_json_cannot_encode_fails_the_same_way_and_the_encoder_goes_on():
    circular: list = []
    circular.append(circular)
    for bad, error in (
        (["x", {"body": b"\x00"}], TypeError),
        ({"at": datetime.datetime.now(datetime.UTC)}, TypeError),
        ({(1, 2): "tuple key"}, TypeError),
        (circular, ValueError),
    ):
        with pytest.raises(error):
            safe_json.dumps(bad, separators=(",", ":"))
        # An error part way through leaves nothing behind: the next payload encodes as before.
        assert safe_json.dumps(["x", [1, {"a": [2]}]], separators=(",", ":")) == '["x",[1,{"a":[2]}]]'


def test_the_compact_form_makes_no_encoder_per_call(monkeypatch):
    made = []
    real_init = json.JSONEncoder.__init__

    def counting_init(self, *args, **kwargs):
        made.append(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(json.JSONEncoder, "__init__", counting_init)
    safe_json.dumps(["x", {"a": 1}], separators=(",", ":"))
    assert made == []
    safe_json.dumps(["x", {"a": 1}], separators=(",", ":"), sort_keys=True)
    assert len(made) == 1


def test_a_document_nested_too_deeply_is_a_value_error():
    with pytest.raises(ValueError):
        safe_json.loads("[" * 100_000)
    assert safe_json.loads('["x",{"a":1}]') == ["x", {"a": 1}]


@pytest.mark.parametrize(
    "text",
    [
        '2["x",{"a":[1,2.5,null,true,"\\u00e9"]}]',
        '2["x"]  ',  # trailing spaces: loads takes them
        '2["x"] x',  # extra data
        '2["x"',
        "2[",
        "2[" + "[" * 100_000,
        "2[NaN,Infinity,-Infinity,1e400]",
        '2["\\ud800"]',
        '2["a\tb"]',  # a control character: strict mode refuses it
    ],
)
def test_loads_at_answers_what_loads_answers_for_the_rest_of_the_text(text):
    try:
        expected = safe_json.loads(text[1:])
    except ValueError as exc:
        with pytest.raises(type(exc)):
            safe_json.loads_at(text, 1)
        return
    got = safe_json.loads_at(text, 1)
    assert json.dumps(got) == json.dumps(expected)


def test_loads_at_copies_nothing_for_a_whole_document(monkeypatch):
    monkeypatch.setattr(safe_json, "loads", lambda *a, **k: pytest.fail("copied"))
    assert safe_json.loads_at('42["x",{"a":1}]', 2) == ["x", {"a": 1}]
