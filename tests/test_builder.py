"""smsgate.models.builder: the same value as the class's own __init__, or a TypeError where that
__init__ does more than set the fields."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.models import DeliveryReport, Status, builder

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
