"""Identical inbound SMS: separate events within one push; across pushes, [receiver] inbound_dedup."""

from __future__ import annotations

import pytest

from smsgate import ConfigError, Gateway, InboundMessage, Receiver
from smsgate.receiving import Spool


def reply(text="Y", phone="13800138000"):
    return InboundMessage(provider="p", phone=phone, content=text, received_at="2409181130", service_code="01")


def test_identical_replies_in_one_push_are_two_events(tmp_path):
    with Spool(tmp_path / "s.sqlite3") as spool:
        put = spool.put([reply(), reply(), reply("N")])
        assert (put.stored, put.duplicates) == (3, 0)
        assert [e.event.content for e in spool.events()] == ["Y", "Y", "N"]


def test_by_default_a_resent_push_is_stored_once_and_matched_copy_by_copy(tmp_path):
    with Spool(tmp_path / "s.sqlite3") as spool:
        spool.put([reply(), reply()])
        again = spool.put([reply(), reply()])  # the vendor's retry after our 2xx was lost
        assert (again.stored, again.duplicates) == (0, 2)
        assert spool.contains_all([reply(), reply()])
        # a third identical reply in a later push is new; one more of the two is taken as resent
        later = spool.put([reply(), reply(), reply()])
        assert (later.stored, later.duplicates) == (1, 2)
        assert spool.counts()["events"] == 3


def test_with_none_every_inbound_of_every_push_is_new(tmp_path):
    with Spool(tmp_path / "s.sqlite3", inbound_dedup="none") as spool:
        spool.put([reply(), reply()])
        again = spool.put([reply()])
        assert again.stored == 1 and spool.counts()["events"] == 3
        assert not spool.contains_all([reply()])


def test_reports_are_unchanged_by_the_setting(tmp_path):
    from smsgate import DeliveryReport, Status

    report = DeliveryReport(provider="p", message_id="m1", phone="13800138000", status=Status.DELIVERED)
    with Spool(tmp_path / "s.sqlite3", inbound_dedup="none") as spool:
        assert spool.put([report, report]).stored == 1
        assert spool.put([report]).duplicates == 1


def test_the_receiver_takes_the_setting_from_its_table(tmp_path):
    gw = Gateway({"providers": {"loopback": {}}, "receiver": {"inbound_dedup": "none"}})
    with Receiver(gw, spool=tmp_path / "a.sqlite3") as receiver:
        assert receiver.spool.inbound_dedup == "none"
    with Receiver(Gateway({"providers": {"loopback": {}}}), spool=tmp_path / "b.sqlite3") as receiver:
        assert receiver.spool.inbound_dedup == "retries"
    with pytest.raises(ConfigError) as err:
        Receiver(Gateway({"providers": {"loopback": {}}, "receiver": {"inbound_dedup": "always"}}),
                 spool=tmp_path / "c.sqlite3")
    assert "inbound_dedup" in str(err.value)
    with pytest.raises(ValueError):
        Spool(tmp_path / "d.sqlite3", inbound_dedup="sometimes")
