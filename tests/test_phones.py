import pytest

from smsgate import mask_phone, normalise_phone, segments


@pytest.mark.parametrize("raw", ["13800138000", "+8613800138000", "+86 138 0013 8000", "86 13800138000",
                                 "0086-138-0013-8000", "138-0013-8000", " 13800138000 ", "+86(138)00138000",
                                 "１３８００１３８０００", "＋８６ 138００138000", "138\u300000138000"])
def test_accepted_forms(raw):
    assert normalise_phone(raw) == "13800138000"


@pytest.mark.parametrize("raw", ["", "1380013800", "138001380001", "12800138000", "23800138000", "abc",
                                 "+8513800138000", "010-12345678", "8613800138", "+86 1380013800x",
                                 "13800١٣٨٠٠٠", "1380013800\u0669"])
def test_refused_forms(raw):
    assert normalise_phone(raw) is None


def test_non_string_refused():
    assert normalise_phone(13800138000) is None


def test_mask():
    assert mask_phone("13800138000") == "138****8000"
    assert "0013" not in mask_phone("13800138000")


@pytest.mark.parametrize("n,parts", [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_segments_boundaries(n, parts):
    assert segments("字" * n) == parts
    assert segments("a" * n) == parts


def test_segments_count_utf16_units():
    assert segments("😀" * 35) == 1
    assert segments("😀" * 36) == 2
