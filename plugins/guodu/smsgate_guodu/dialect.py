"""Guodu's wire details: Java-style URL encoding of ``Content``, ``SendTime``, the ResultCode table.

Kept free of smsgate imports beyond the models so that the plugin and its simulator share it.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

#: bytes Java's URLEncoder leaves as they are; everything else but the space becomes %XX
_JAVA_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")
#: what a correctly encoded Content may contain
ENCODED_ALPHABET = re.compile(r"[A-Za-z0-9*\-._+%]*")
_HEX = "0123456789ABCDEF"


def java_urlencode(text: str) -> str:
    """``URLEncoder.encode(text, "UTF-8")`` as Java writes it.

    Letters, digits and ``* - . _`` stay; a space becomes ``+``; every other UTF-8 byte becomes
    ``%XX`` in upper-case hex. Python's ``quote_plus`` differs on ``~`` (Java encodes it) and on
    ``*`` (Java keeps it), so it is not used. A lone surrogate is written as ``?`` (``%3F``), as
    Java's encoder replaces it.
    """
    out = []
    for byte in text.encode("utf-8", errors="replace"):
        if byte in _JAVA_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append("%" + _HEX[byte >> 4] + _HEX[byte & 0x0F])
    return "".join(out)


def java_urldecode(text: str) -> str:
    """``URLDecoder.decode(text, "UTF-8")``: ``+`` is a space, ``%XX`` a byte; a ``%`` not followed
    by two hex digits is an error (Java throws IllegalArgumentException, here ValueError)."""
    buf = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "+":
            buf.append(0x20)
            i += 1
        elif ch == "%":
            pair = text[i + 1:i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise ValueError(f"incomplete or invalid escape at position {i}")
            buf.append(int(pair, 16))
            i += 3
        else:
            buf.extend(ch.encode("utf-8"))
            i += 1
    return buf.decode("utf-8", errors="replace")


def java_length(text: str) -> int:
    """``text.length()`` as Java counts it: UTF-16 code units, so a character beyond the Basic
    Multilingual Plane (most emoji) counts 2. The 500-character limit is counted so."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


#: the whole sender number (spnumber + account identity + AppendID) is at most this many digits
MAX_SENDER_DIGITS = 20


def send_time(value: _dt.datetime | None) -> str:
    """``SendTime``: ``YYYYMMDDHHMMSS`` (China time, already converted), or empty for "now"."""
    return "" if value is None else value.strftime("%Y%m%d%H%M%S")


def valid_send_time(value: str) -> bool:
    if value == "":
        return True
    if not re.fullmatch(r"\d{14}", value):
        return False
    try:
        _dt.datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


#: ResultCode -> (the document's meaning, English gloss)
RESULT_CODES: dict[str, tuple[str, str]] = {
    "00": ("批量短信提交成功", "batch submitted"),
    "01": ("个性短信提交成功", "personalised messages submitted"),
    "03": ("单条短信提交成功", "single message submitted"),
    "02": ("IP验证失败", "source IP not allowed for this account"),
    "04": ("用户名错误", "wrong OperID (account name)"),
    "05": ("密码错误", "wrong OperPass"),
    "06": ("参数有误", "invalid parameters"),
    "07": ("SendTime格式错误", "SendTime is not YYYYMMDDHHMMSS"),
    "08": ("短信内容为空", "Content is empty"),
    "09": ("手机号码为空", "DesMobile is empty"),
    "10": ("AppendID格式错误", "invalid AppendID"),
    "-1": ("提交异常", "submission error at the vendor"),
}

ACCEPTED_CODES = frozenset({"00", "01", "03"})
#: refusals of the account, password or source IP
AUTH_CODES = frozenset({"02", "04", "05"})
#: the request was checked and refused before anything was queued: certainly not sent
NOT_SENT_CODES = frozenset({"02", "04", "05", "06", "07", "08", "09", "10"})


def normalise_code(value: Any) -> str | None:
    """ResultCode as the document writes it (``"00"``, ``"-1"``); a number is tolerated."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value < 0 else f"{value:02d}"
    if isinstance(value, str):
        text = value.strip()
        return text or None
    return None


def describe(code: str) -> str:
    """``"05 密码错误 (wrong OperPass)"``, or a plain note for a code the document does not list."""
    meaning = RESULT_CODES.get(code)
    if meaning is None:
        return f"{code} (a ResultCode the document does not list)"
    return f"{meaning[0]} ({meaning[1]})"


