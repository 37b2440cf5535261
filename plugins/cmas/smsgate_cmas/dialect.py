"""云MAS HTTPS wire format: the base64 envelope and the md5 ``mac``.

Every request body is the base64 text of the UTF-8 JSON object. Send requests carry a ``mac``:
the lowercase hex md5 of some of the fields concatenated, with no separator, in the order the
document lists them (the account password ``secretKey`` takes part but never travels in a send).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from smsgate.wire import load_json

SUBMIT_PATH = "/sms/submit"
TMPSUBMIT_PATH = "/sms/tmpsubmit"
REPORT_PATH = "/sms/report"
DELIVER_PATH = "/sms/deliver"

#: the fields the ``mac`` covers, in the document's order (``secretKey`` comes from the config)
SUBMIT_MAC_FIELDS = ("ecName", "apId", "secretKey", "mobiles", "content", "sign", "addSerial")
TMPSUBMIT_MAC_FIELDS = ("ecName", "apId", "secretKey", "templateId", "mobiles", "params", "sign", "addSerial")


def json_text(value: Any) -> str:
    """Compact JSON text, Chinese kept as characters (the form the vendor's examples use)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_body(fields: Mapping[str, Any]) -> bytes:
    """The request body: base64 of the JSON text (UTF-8), keys in the given order."""
    return base64.b64encode(json_text(dict(fields)).encode("utf-8"))


def decode_body(body: bytes) -> dict[str, Any]:
    """The JSON object inside a base64 body. Raises ValueError when it is not one."""
    try:
        raw = base64.b64decode(body.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"body is not base64: {exc}") from None
    data = load_json(raw)
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    return data


def mac(values: Mapping[str, Any], order: Sequence[str]) -> str:
    """Lowercase hex md5 of ``values`` concatenated in ``order`` (missing values count as "")."""
    text = "".join("" if values.get(name) is None else str(values[name]) for name in order)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def submit_mac(ec_name: str, ap_id: str, secret_key: str, mobiles: str, content: str, sign: str,
               add_serial: str) -> str:
    """``mac`` of ``/sms/submit`` (one-to-one, many-to-one and, with ``mobiles`` empty, many-to-many)."""
    return mac({"ecName": ec_name, "apId": ap_id, "secretKey": secret_key, "mobiles": mobiles,
                "content": content, "sign": sign, "addSerial": add_serial}, SUBMIT_MAC_FIELDS)


def tmpsubmit_mac(ec_name: str, ap_id: str, secret_key: str, template_id: str, mobiles: str, params: str,
                  sign: str, add_serial: str) -> str:
    """``mac`` of ``/sms/tmpsubmit``."""
    return mac({"ecName": ec_name, "apId": ap_id, "secretKey": secret_key, "templateId": template_id,
                "mobiles": mobiles, "params": params, "sign": sign, "addSerial": add_serial},
               TMPSUBMIT_MAC_FIELDS)


def mac_fields_for(path: str) -> tuple[str, ...] | None:
    """Which mac field order a path uses (None: the call carries no mac)."""
    if path.endswith(TMPSUBMIT_PATH):
        return TMPSUBMIT_MAC_FIELDS
    if path.endswith(SUBMIT_PATH):
        return SUBMIT_MAC_FIELDS
    return None


def template_params(params: Any) -> str:
    """``params`` of ``/sms/tmpsubmit``: a JSON array of strings as text; ``[""]`` when there are none."""
    values = [] if params is None else ["" if p is None else str(p) for p in params]
    return json_text(values or [""])


def decode_answer(body: bytes) -> Any:
    """The vendor's answer: JSON text. A base64-wrapped JSON answer is accepted too, since the
    document says nothing about how answers are encoded."""
    text = body.decode("utf-8").strip()
    try:
        return load_json(text)
    except ValueError:
        pass
    try:
        raw = base64.b64decode(text, validate=True)
        return load_json(raw)
    except (binascii.Error, ValueError):
        raise ValueError("answer is neither JSON nor base64 JSON") from None
