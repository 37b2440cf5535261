"""Content encoding, SendTime and the ResultCode table, against known outputs.

The expected encodings were produced by java.net.URLEncoder.encode(s, "UTF-8") (OpenJDK)."""

from __future__ import annotations

import datetime as dt

import pytest

from smsgate_guodu import dialect

JAVA_URLENCODER = [
    # the document's own examples
    ("中文短信abc", "%E4%B8%AD%E6%96%87%E7%9F%AD%E4%BF%A1abc"),
    ("测试消息1", "%E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1"),
    # the "done when" text
    ("您好 A&B+C 100%", "%E6%82%A8%E5%A5%BD+A%26B%2BC+100%25"),
    ("& + % = space", "%26+%2B+%25+%3D+space"),
    # where Java and Python's quote_plus differ: '*' kept, '~' encoded
    ("*-._~!'()", "*-._%7E%21%27%28%29"),
    ("a/b?c#d:e;f,g@h$", "a%2Fb%3Fc%23d%3Ae%3Bf%2Cg%40h%24"),
    ("【国都】验证码123456，5分钟内有效。",
     "%E3%80%90%E5%9B%BD%E9%83%BD%E3%80%91%E9%AA%8C%E8%AF%81%E7%A0%81123456"
     "%EF%BC%8C5%E5%88%86%E9%92%9F%E5%86%85%E6%9C%89%E6%95%88%E3%80%82"),
    ("tab\tnl\n", "tab%09nl%0A"),
    ("😀", "%F0%9F%98%80"),
    ("éü", "%C3%A9%C3%BC"),
    ("", ""),
]


@pytest.mark.parametrize("text,encoded", JAVA_URLENCODER)
def test_encoding_matches_java_urlencoder(text, encoded):
    assert dialect.java_urlencode(text) == encoded


@pytest.mark.parametrize("text,encoded", JAVA_URLENCODER)
def test_decoding_reverses_encoding(text, encoded):
    assert dialect.java_urldecode(encoded) == text


def test_encoded_content_stays_in_the_encoded_alphabet():
    for text, encoded in JAVA_URLENCODER:
        assert dialect.ENCODED_ALPHABET.fullmatch(encoded)
    assert not dialect.ENCODED_ALPHABET.fullmatch("您好")
    assert not dialect.ENCODED_ALPHABET.fullmatch("a b")


def test_lone_surrogate_is_written_as_question_mark_like_java():
    assert dialect.java_urlencode("a\ud800b") == "a%3Fb"


@pytest.mark.parametrize("bad", ["100%", "%E6%8", "%G1", "abc%"])
def test_decoder_refuses_broken_escapes_like_java(bad):
    with pytest.raises(ValueError):
        dialect.java_urldecode(bad)


def test_send_time_format():
    china = dt.timezone(dt.timedelta(hours=8))
    assert dialect.send_time(None) == ""
    assert dialect.send_time(dt.datetime(2024, 9, 18, 9, 5, 7, tzinfo=china)) == "20240918090507"
    assert dialect.valid_send_time("")
    assert dialect.valid_send_time("20240918090507")
    assert not dialect.valid_send_time("2024-09-18 09:05:07")
    assert not dialect.valid_send_time("20241318090507")


def test_result_code_table_is_complete():
    assert set(dialect.RESULT_CODES) == {"00", "01", "03", "02", "04", "05", "06", "07", "08", "09", "10", "-1"}
    assert dialect.ACCEPTED_CODES | dialect.NOT_SENT_CODES | {"-1"} == set(dialect.RESULT_CODES)
    assert not dialect.ACCEPTED_CODES & dialect.NOT_SENT_CODES


@pytest.mark.parametrize("raw,code", [("00", "00"), (" 03 ", "03"), (0, "00"), (3, "03"), (10, "10"), (-1, "-1"),
                                      ("-1", "-1"), (None, None), ("", None), (True, None), ([], None)])
def test_result_code_normalised(raw, code):
    assert dialect.normalise_code(raw) == code


def test_mask_phones_in_text():
    from smsgate.phones import mask_phones_in

    assert mask_phones_in('[{"mobile":"13800138000"}] 813800138000 +8613900139000') == \
        '[{"mobile":"138****8000"}] 813800138000 +86139****9000'
