"""Mainland China mobile numbers: normalising, validating, masking."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-()]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # ASCII digits only: \d would take any script's digits


def normalise_phone(raw: str) -> str | None:
    """Return the 11-digit mobile number, or None when ``raw`` is not a mainland mobile number.

    Accepted: ``13800138000``, ``+86 138-0013-8000``, ``86 13800138000``, ``0086-13800138000``, and
    the same in full-width characters. Digits of other scripts are refused.
    """
    if not isinstance(raw, str):
        return None
    # full-width digits and signs (１３８…, ＋８６) come from Chinese input methods: fold them to ASCII
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    return text if _MOBILE.fullmatch(text) else None


def mask_phone(phone: str) -> str:
    """``13800138000`` -> ``138****8000``; anything shorter is masked whole but for its ends."""
    phone = str(phone)
    if len(phone) >= 11:
        return phone[:3] + "****" + phone[-4:]
    if len(phone) > 4:
        return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]
    return "*" * len(phone)


#: a mobile number inside free text, with an optional +86/0086/86 prefix, not part of a longer number
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9])((?:\+86|0086|86)?1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")


def mask_phones_in(text: str) -> str:
    """Mask every mainland mobile number inside free text (vendor error texts, log previews):
    ``"号码13800138000无效"`` -> ``"号码138****8000无效"``."""
    return _MOBILE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", str(text))


def segments(text: str) -> int:
    """Number of SMS parts ``text`` costs: 70 characters fit one SMS, a longer text goes in parts of 67.

    Characters are counted as the carriers count them, in UCS-2/UTF-16 units: a Chinese character,
    a Latin letter and a digit are one each; an emoji outside the Basic Multilingual Plane is two.
    An empty text is 0 parts.
    """
    units = len(text.encode("utf-16-le")) // 2
    if units == 0:
        return 0
    if units <= 70:
        return 1
    return -(-units // 67)
