"""smsgate.models.builder: the same value as the class's own __init__, or a TypeError where that
__init__ does more than set the fields."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.models import DeliveryReport, HttpRequest, Status, builder

optional_text = st.none() | st.text(max_size=8)


@settings(max_examples=200, deadline=None, database=None)
@given(provider=st.text(max_size=6), message_id=optional_text, phone=optional_text, status=st.sampled_from(Status),
       raw_status=optional_text, description=optional_text, reported_at=optional_text, biz_id=optional_text,
       raw=st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3))
def test_a_built_report_is_the_report_its_init_makes(provider, message_id, phone, status, raw_status, description,
                                                      reported_at, biz_id, raw):
    built = builder(DeliveryReport)(provider, message_id, phone, status, raw_status, description, reported_at,
                                    biz_id, raw)
    made = DeliveryReport(provider=provider, message_id=message_id, phone=phone, status=status,
                          raw_status=raw_status, description=description, reported_at=reported_at, biz_id=biz_id,
                          raw=raw)
    assert type(built) is DeliveryReport
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert attrs.asdict(built, recurse=False) == attrs.asdict(made, recurse=False)
    assert built.raw is raw
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.phone = "x"  # type: ignore[misc]


@attrs.frozen
class Checked:
    a: int = attrs.field(validator=attrs.validators.instance_of(int))


@attrs.frozen
class Converted:
    a: int = attrs.field(converter=int)


@attrs.frozen
class AfterInit:
    a: int

    def __attrs_post_init__(self) -> None:
        pass


@attrs.frozen(slots=False)
class NoSlots:
    a: int


@attrs.frozen(cache_hash=True)
class CachedHash:
    a: int


@pytest.mark.parametrize("cls", [Checked, Converted, AfterInit, NoSlots, CachedHash])
def test_a_class_whose_init_does_more_has_no_builder(cls):
    with pytest.raises(TypeError, match="does more in its __init__"):
        builder(cls)


def test_in_shape_allows_converters_and_does_not_call_them():
    built = builder(Converted, in_shape=True)("7")
    assert built.a == "7"  # taken as given: the caller promises the converted shape
    for cls in (Checked, AfterInit, NoSlots, CachedHash):
        with pytest.raises(TypeError, match="does more in its __init__"):
            builder(cls, in_shape=True)


header_names = st.sampled_from(["Content-Type", "content-type", "X-Nonce", "x-nonce", "X-Sign", "Accept"])


@settings(max_examples=300, deadline=None, database=None)
@given(headers=st.lists(st.tuples(header_names, st.text(max_size=4)), max_size=4),
       extra=st.dictionaries(header_names | st.integers(0, 3), st.text(max_size=4) | st.integers(), max_size=4),
       subclass=st.booleans())
def test_with_headers_replaces_names_in_any_case_and_adds_the_rest_in_order(headers, extra, subclass):
    cls = SignedRequest if subclass else HttpRequest
    request = cls(method="PUT", url="http://vendor.example/send", headers=tuple(headers), body=b"{}")
    names = {str(k).lower() for k in extra}
    expected = cls(method="PUT", url="http://vendor.example/send", body=b"{}",
                   headers=tuple(h for h in headers if h[0].lower() not in names)
                   + tuple((str(k), str(v)) for k, v in extra.items()))
    got = request.with_headers(extra)
    assert type(got) is cls and got == expected and got.headers == expected.headers
    assert all(type(k) is str and type(v) is str for k, v in got.headers)
    assert request.headers == tuple(headers)  # the request itself is unchanged


@attrs.frozen(kw_only=True)
class SignedRequest(HttpRequest):
    pass
