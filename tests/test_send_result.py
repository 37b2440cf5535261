"""SendResult keeps outcomes per request (a request's phones and one shared outcome) and builds one
RecipientResult per recipient only when asked. Each recipient must still get exactly the outcome
the per-recipient rules give it: spelled out here phone by phone, independently of the pipeline,
for mixed answers (per-phone rejections, per-phone message ids, failed requests), quota refusals
in the middle of the message, routes with failover and replays from the ledger."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given, settings, strategies as st

import attrs

from smsgate.models import OutcomePart, expand, part_phones
from smsgate import (Gateway, Message, Outcome, ProviderError, Reason, RecipientResult, RequestOutcome,
                     SendReply, SendResult, converter, hookimpl, to_jsonable)

PHONES = [f"139{i:08d}" for i in range(50)]
BLACK = Reason(code="BLACK", message="blacklisted")
LATE = Reason(code="TIMEOUT", message="carrier timeout", not_sent=False)


def phones_of(request):
    return json.loads(request.body)["phones"]


class Scripted:
    """The vendor's answers, decided per request from the phones it carries (index = place in PHONES):
    0-9 all accepted; 10-19 accepted, even ones with an id of their own; 20-29 one refused (not
    sent) and one failed on the way (unknown), the rest accepted; 30-39 the request refused (not
    sent); 40-49 an answer that proves nothing (unknown)."""

    def __init__(self, limit=10):
        self.limit = limit

    @hookimpl(tryfirst=True)
    def request_limit(self, ctx, operation):
        return self.limit

    @hookimpl(tryfirst=True)
    def parse_response(self, ctx, operation, request, response):
        phones = phones_of(request)
        group = PHONES.index(phones[0]) // 10
        rid = f"R{group}"
        if group == 0:
            return SendReply(message_id="A0", request_id=rid)
        if group == 1:
            return SendReply(message_id="A1", request_id=rid,
                             message_ids={p: f"id-{p}" for p in phones if PHONES.index(p) % 2 == 0})
        if group == 2:
            return SendReply(message_id="A2", request_id=rid, rejected={PHONES[21]: BLACK, PHONES[23]: LATE})
        if group == 3:
            raise ProviderError("refused", code="E3", vendor_message="refused", not_sent=True, request_id=rid)
        raise ProviderError("garbled", code="E4", vendor_message="garbled", not_sent=False, request_id=rid)


def expected(phone: str) -> RecipientResult:
    """The per-recipient rules, one phone at a time (what the pipeline built before the storage changed)."""
    i = PHONES.index(phone)
    group, rid = i // 10, f"R{i // 10}"
    if group == 0:
        return RecipientResult(phone=phone, outcome=Outcome.ACCEPTED, message_id="A0", request_id=rid)
    if group == 1:
        return RecipientResult(phone=phone, outcome=Outcome.ACCEPTED, request_id=rid,
                               message_id=f"id-{phone}" if i % 2 == 0 else "A1")
    if group == 2:
        if i == 21:
            return RecipientResult(phone=phone, outcome=Outcome.REJECTED, reason=BLACK, request_id=rid)
        if i == 23:
            return RecipientResult(phone=phone, outcome=Outcome.UNKNOWN, reason=LATE, request_id=rid)
        return RecipientResult(phone=phone, outcome=Outcome.ACCEPTED, message_id="A2", request_id=rid)
    if group == 3:
        return RecipientResult(phone=phone, outcome=Outcome.REJECTED, request_id=rid,
                               reason=Reason(code="E3", message="refused", not_sent=True))
    return RecipientResult(phone=phone, outcome=Outcome.UNKNOWN, request_id=rid,
                           reason=Reason(code="E4", message="garbled", not_sent=False))


def gateway(plugin, **config):
    gw = Gateway({"providers": {"loopback": {}}, **config})
    gw.plugins.register(plugin)
    return gw


def same_as_per_recipient(result: SendResult, recipients: list[RecipientResult]) -> None:
    """Every public reading of ``result`` equals that of a result built one recipient at a time."""
    old = SendResult(provider=result.provider, recipients=recipients, segments=result.segments, key=result.key,
                     replayed=result.replayed)
    assert result.recipients == tuple(recipients)
    for name in ("ok", "accepted", "rejected", "unknown", "message_ids", "request_ids"):
        assert getattr(result, name) == getattr(old, name), name
    assert result.to_json_dict() == old.to_json_dict()
    assert result == old and hash(result) == hash(old)


def test_each_recipient_gets_the_outcome_the_per_recipient_rules_give(smsgate_outbox):
    with gateway(Scripted()) as gw:
        result = gw.send(Message(to=PHONES, text="hi"))
    same_as_per_recipient(result, [expected(p) for p in PHONES])
    # stored per request: the two refused/unknown phones of request 2 on their own, the rest shared
    assert [len(p.phones) if isinstance(p, RequestOutcome) else 1 for p in result.outcomes] == \
        [10, 10, 1, 1, 1, 1, 6, 10, 10]
    assert not result.ok and result.accepted == [p for p in PHONES if expected(p).outcome is Outcome.ACCEPTED]


def test_quota_refusals_in_the_middle_keep_the_message_order(smsgate_outbox):
    limits = {"limits": {"per_phone": ["1/minute"]}}
    with gateway(Scripted(limit=10), **limits) as gw:
        gw.send(Message(to=[PHONES[3], PHONES[27]], text="first"))  # uses their quota (request 0: accepted)
        result = gw.send(Message(to=PHONES[:30], text="hi"))
    got = {r.phone: r for r in result.recipients}
    assert [r.phone for r in result.recipients] == PHONES[:30]  # the message's order, refused ones in place
    for phone in (PHONES[3], PHONES[27]):
        assert got[phone].outcome is Outcome.REJECTED and got[phone].reason.code == "RATE_LIMITED"
    # the others were cut into requests of 10 without the refused two: each decided by its first phone
    assert got[PHONES[0]] == expected(PHONES[0]) and got[PHONES[21]] == expected(PHONES[21])
    assert len(result.recipients) == 30 and len(result.accepted) + len(result.rejected) + len(result.unknown) == 30
    same_as_per_recipient(result, list(result.recipients))


def test_a_replay_from_the_ledger_answers_every_recipient_the_same(smsgate_outbox, tmp_path):
    ledger = {"ledger": {"url": f"sqlite:///{tmp_path}/ledger.sqlite3"}}
    with gateway(Scripted(), **ledger) as gw:
        first = gw.send(Message(to=PHONES, text="hi", key="bulk-1"))
        sent = len(smsgate_outbox)
        again = gw.send(Message(to=PHONES, text="hi", key="bulk-1"))
    assert len(smsgate_outbox) == sent  # nothing sent the second time
    assert again.replayed and again.key == first.key == "bulk-1"
    assert again.recipients == first.recipients == tuple(expected(p) for p in PHONES)
    same_as_per_recipient(again, [expected(p) for p in PHONES])


def test_a_route_fails_over_only_what_was_not_sent(smsgate_outbox):
    config = {"providers": {"a": {"provider": "loopback", "api_key": "key-a"},
                            "b": {"provider": "loopback", "api_key": "key-b"}},
              "routes": {"r": {"providers": ["a", "b"]}}}
    gw = Gateway(config)
    gw.plugins.register(ScriptedAt("key-a"))
    with gw:
        result = gw.send(Message(to=PHONES, text="hi"), route="r")
    assert result.provider == "a"
    for r in result.recipients:
        first = expected(r.phone)
        if first.outcome is Outcome.REJECTED:  # proven not sent at a: accepted at b, with a's refusal before
            assert r.outcome is Outcome.ACCEPTED and r.provider == "b" and r.message_id
            assert r.earlier == (attrs_evolve(first, provider="a"),)
        else:
            assert r == first  # final at a: accepted or unknown never moves
    assert len(result.recipients) == 50
    # stored as the requests gave them: what stayed at a as a's; the moved phones as b's requests
    # gave them ([21, 30..38] and [39], b taking 10 a request), cut where their earlier attempts
    # differ, each run sharing its earlier attempt (a's refusal, itself stored once)
    assert result.outcomes[0] == RequestOutcome(phones=tuple(PHONES[:10]), outcome=Outcome.ACCEPTED,
                                                message_id="A0", request_id="R0")
    moved = [p for p in result.outcomes if p.provider == "b"]
    assert [part_phones(p) for p in moved] == [(PHONES[21],), tuple(PHONES[30:39]), (PHONES[39],)]
    assert all(isinstance(p, RequestOutcome) and len(p.earlier) == 1 for p in moved)
    assert moved[1].earlier[0] is moved[2].earlier[0] and moved[1].earlier[0].phones == tuple(PHONES[30:40])
    assert len(result.outcomes) == 10


class ScriptedAt(Scripted):
    """:class:`Scripted` for the loopback account ``api_key`` only; the others answer as the loopback does."""

    def __init__(self, api_key):
        super().__init__()
        self.api_key = api_key

    @hookimpl(tryfirst=True)
    def parse_response(self, ctx, operation, request, response):
        if ctx.config.api_key != self.api_key:
            return None
        return Scripted.parse_response(self, ctx, operation, request, response)


def attrs_evolve(result, **changes):
    import attrs

    return attrs.evolve(result, **changes)


def test_stored_and_per_recipient_results_are_the_same_value():
    shared = RequestOutcome(phones=("13800138000", "13800138001"), outcome=Outcome.ACCEPTED, message_id="m",
                            message_ids={"13800138001": "m1"}, request_id="r")
    alone = RecipientResult(phone="13800138002", outcome=Outcome.REJECTED, reason=BLACK)
    stored = SendResult(provider="p", outcomes=[shared, alone], key="k")
    per_recipient = [RecipientResult(phone="13800138000", outcome=Outcome.ACCEPTED, message_id="m", request_id="r"),
                     RecipientResult(phone="13800138001", outcome=Outcome.ACCEPTED, message_id="m1", request_id="r"),
                     alone]
    same_as_per_recipient(stored, per_recipient)
    assert stored.message_ids == ["m", "m1"]
    again = pickle.loads(pickle.dumps(stored))  # a result crosses processes (Celery, multiprocessing)
    assert again == stored and again.recipients == stored.recipients
    assert "13800138001" in repr(stored)  # the repr lists every recipient, as before
    # cattrs sees the public shape: one entry per recipient, and back
    data = json.loads(json.dumps(to_jsonable(stored)))
    assert list(data) == ["provider", "recipients", "segments", "key", "replayed"]
    assert data == json.loads(json.dumps(to_jsonable(SendResult(provider="p", recipients=per_recipient, key="k"))))
    assert converter().structure(data, SendResult) == stored
    with pytest.raises(TypeError):
        SendResult(provider="p")


def test_already_normal_numbers_keep_their_order_and_lose_only_duplicates():
    from smsgate.sending.pipeline import normalise_recipients

    ascending = Message(to=PHONES, text="hi")
    assert normalise_recipients(ascending) is ascending  # nothing to change: the same message
    for to in ([PHONES[0], PHONES[0], PHONES[1]], [PHONES[2], PHONES[1], PHONES[2]], [PHONES[1], PHONES[0]]):
        assert normalise_recipients(Message(to=to, text="hi")).to == tuple(dict.fromkeys(to))
    # not all plain normal numbers: each goes through normalise_phone, in order
    assert normalise_recipients(Message(to=[PHONES[1], "+86 " + PHONES[0], PHONES[1]], text="hi")).to == (
        PHONES[1], PHONES[0])


def test_bulk_numbers_are_checked_every_one_across_chunks():
    """The bulk check reads the phones a chunk at a time, each chunk joined into one text for one
    regex call: every phone is still checked, whatever chunk it falls in, and one that is not a
    plain normal number (or hides two numbers) goes through normalise_phone and is named."""
    from smsgate import ValidationError
    from smsgate.sending.pipeline import _CHUNK, normalise_recipients

    count = 2 * _CHUNK + 5
    phones = [f"138{i:08d}" for i in range(count)]
    ascending = Message(to=phones, text="hi")
    assert normalise_recipients(ascending) is ascending
    for at in (0, _CHUNK - 1, _CHUNK, 2 * _CHUNK, count - 1):
        for bad in ("1380013800", "12800138000", "13800138000,13800138001", "13800138000 ", "１３８００１３８０００",
                    "1380013800,", ",3800138000", "13a00138000", "23800138000", "10800138000", "13800138٠٠٠"):
            to = list(phones)
            to[at] = bad
            if bad in ("13800138000 ", "１３８００１３８０００"):  # not plain, but a number once normalised
                assert normalise_recipients(Message(to=to, text="hi")).to[at] == "13800138000"
                continue
            with pytest.raises(ValidationError) as err:
                normalise_recipients(Message(to=to, text="hi"))
            assert err.value.invalid == (bad,), (at, bad)
    # a long and a short number side by side keep the joined length: both named
    to = list(phones)
    to[_CHUNK + 1:_CHUNK + 3] = ["138001380001", "1380013800"]
    with pytest.raises(ValidationError) as err:
        normalise_recipients(Message(to=to, text="hi"))
    assert err.value.invalid == ("138001380001", "1380013800")
    # not a plain str: each goes through normalise_phone, which refuses what is not text at all
    for odd in (int(phones[_CHUNK + 7]), phones[_CHUNK + 7].encode()):
        to = list(phones)
        to[_CHUNK + 7] = odd
        with pytest.raises(ValidationError) as err:
            normalise_recipients(Message(to=to, text="hi"))
        assert err.value.invalid == (str(odd),)
    subclassed = list(phones)
    subclassed[_CHUNK + 7] = type("Phone", (str,), {})(phones[_CHUNK + 7])
    assert normalise_recipients(Message(to=subclassed, text="hi")).to == tuple(phones)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789,1379 a\u0663\uff11", min_size=9, max_size=13), min_size=1, max_size=40),
       st.integers(min_value=0, max_value=39))
def test_the_bulk_check_is_the_regex_of_a_normal_number(noise, seed):
    """The chunk check (joined bytes, C-level passes) says yes exactly when every phone matches
    ``1[3-9][0-9]{9}``, the definition of a normal number, for phones that are nearly normal."""
    import re

    from smsgate.sending.pipeline import _normal_chunk

    normal = [f"13{(seed * 7919 + i) % 10**9:09d}" for i in range(len(noise))]
    for phones in (noise, normal, [*normal[:seed % len(normal)], *noise[:1], *normal[seed % len(normal):]]):
        expected = all(re.fullmatch(r"1[3-9][0-9]{9}", p, flags=re.ASCII) for p in phones)
        assert _normal_chunk(tuple(phones)) is expected, phones


def test_bulk_duplicates_and_order_across_chunks():
    from smsgate.sending.pipeline import _CHUNK, normalise_recipients

    phones = [f"138{i:08d}" for i in range(2 * _CHUNK + 5)]
    for at in (_CHUNK, 2 * _CHUNK, len(phones) - 1):  # a phone repeated right after itself, at a chunk's start
        to = list(phones)
        to[at] = to[at - 1]
        assert normalise_recipients(Message(to=to, text="hi")).to == tuple(dict.fromkeys(to))
    # out of order across a chunk boundary, no duplicates: kept as given
    swapped = list(phones)
    swapped[_CHUNK - 1], swapped[_CHUNK] = swapped[_CHUNK], swapped[_CHUNK - 1]
    message = Message(to=swapped, text="hi")
    assert normalise_recipients(message) is message


def test_outcomes_are_put_in_the_messages_order_and_none_is_lost():
    from smsgate.sending.pipeline import in_order

    to = tuple(PHONES[:6])
    parts = [RequestOutcome(phones=to[0:3], outcome=Outcome.ACCEPTED, message_id="a"),
             RecipientResult(phone=to[3], outcome=Outcome.REJECTED, reason=BLACK),
             RequestOutcome(phones=to[4:6], outcome=Outcome.ACCEPTED, message_id="b")]
    assert in_order("p", to, parts) == parts
    # equal phones that are other objects (a plugin's own strings) are in order too
    copies = [RequestOutcome(phones=tuple("".join(p) for p in to[0:3]), outcome=Outcome.ACCEPTED, message_id="a"),
              *parts[1:]]
    assert in_order("p", list(to), copies) == copies
    # out of order: arranged in the message's order, a shared outcome cut into runs
    assert expand(in_order("p", to, [parts[2], parts[0], parts[1]])) == expand(parts)
    mixed = in_order("p", (to[0], to[4], to[1], to[2], to[3], to[5]), parts)
    assert [part_phones(p) for p in mixed] == [(to[0],), (to[4],), to[1:3], (to[3],), (to[5],)]
    for lost in ([parts[0], parts[2]], parts[:2], [parts[0], parts[1], attrs.evolve(parts[2], phones=to[4:5])]):
        with pytest.raises(ProviderError, match="no outcome for [12] recipient"):
            in_order("p", to, lost)
    # a part for a phone the message does not have is not one of its outcomes
    extra = RequestOutcome(phones=(PHONES[40],), outcome=Outcome.ACCEPTED)
    assert in_order("p", to, [*parts, extra]) == parts


def test_requests_are_cut_as_they_are_read():
    from smsgate.sending.pipeline import Requests, plan

    message = Message(to=PHONES[:25], text="hi")
    requests = plan(message, 10)
    assert isinstance(requests, Requests) and len(requests) == 3
    assert len(requests.answers) == 3 and not requests.answers.complete()  # nothing kept before it is sent
    assert [r.to for r in requests] == [tuple(PHONES[0:10]), tuple(PHONES[10:20]), tuple(PHONES[20:25])]
    assert [r.to for r in requests] == [r.to for r in requests[0:3]] == [requests[i].to for i in (-3, -2, -1)]
    assert all(r.text == "hi" for r in requests)
    with pytest.raises(IndexError):
        requests[3]
    with pytest.raises(IndexError):
        requests[-4]
    personal = plan(Message.personalised({p: f"hi {i}" for i, p in enumerate(PHONES[:3])}), 2)
    assert [r.personal for r in personal] == [{PHONES[0]: "hi 0", PHONES[1]: "hi 1"}, {PHONES[2]: "hi 2"}]
    assert plan(message, 25) == [message]  # one request: the message itself


def test_outcomes_of_the_requests_sent_are_merged_as_they_are_and_checked_otherwise():
    """merge takes the requests' kept outcomes as they are only when every request was answered with
    one outcome for its very phones (kept as columns, see KeptOutcomes); anything else is put in
    order phone by phone, and a recipient without an outcome is still an error."""
    from smsgate.models import KeptOutcomes, _get_of, _get_outcomes, _get_phones
    from smsgate.sending.pipeline import merge, plan

    message = Message(to=PHONES[:25], text="hi")
    requests = plan(message, 10)
    for i, r in enumerate(requests):  # each request's answer, for the very tuple it was sent
        requests.keep(i, r, [RequestOutcome(phones=r.to, outcome=Outcome.ACCEPTED, message_id=f"m{i}")])
    answers = [RequestOutcome(phones=tuple(PHONES[i:min(i + 10, 25)]), outcome=Outcome.ACCEPTED, message_id=f"m{i // 10}")
               for i in (0, 10, 20)]
    sent = requests.outcomes()
    assert sent is requests.answers and type(sent) is KeptOutcomes
    # read as they were answered, their phones a range of the message's (no tuple of their own)
    assert list(sent) == answers and [o.phones for o in sent] == [a.phones for a in answers]
    assert sent[-1] == answers[2] and sent[0:2] == answers[:2]
    assert all(type(_get_phones(o)) is range and _get_of(o) is message.to for o in sent)
    assert requests.answered_by(message.to, sent)
    merged = merge("p", message, sent, requests=requests)
    assert _get_outcomes(merged) is sent  # kept as columns until read
    assert merged.ok and merged.accepted == PHONES[:25] and merged.unknown == []
    assert merged.outcomes == tuple(answers) and type(_get_outcomes(merged)) is tuple  # made once, then kept
    # equal outcomes, not the ones kept: checked (and in order)
    assert not requests.answered_by(message.to, answers)
    assert merge("p", message, answers, requests=requests).outcomes == tuple(answers)
    # out of order, one request answered twice and another not at all, another message's phones
    swapped = [sent[1], sent[0], sent[2]]
    assert not requests.answered_by(message.to, swapped)
    assert expand(merge("p", message, swapped, requests=requests).outcomes) == expand(answers)
    with pytest.raises(ProviderError, match="no outcome for 5 recipient"):
        merge("p", message, [sent[0], sent[1], sent[1]], requests=requests)
    other = Message(to=PHONES[:25], text="hi")
    assert not requests.answered_by(other.to, sent)
    # requests not all answered (never sent through these requests): checked
    unread = plan(message, 10)
    with pytest.raises(LookupError, match="request 0 has no outcome"):
        unread.answers[0]
    assert not unread.answered_by(message.to, unread.answers)
    assert merge("p", message, sent, requests=unread).outcomes == tuple(answers)
    # an answer other than one outcome for the request's very phones is kept as it is, in its place
    r = requests[1]
    split: list[OutcomePart] = [RequestOutcome(phones=r.to[:5], outcome=Outcome.ACCEPTED),
                                RequestOutcome(phones=r.to[5:], outcome=Outcome.UNKNOWN)]
    requests.keep(1, r, split)
    assert requests.outcomes() == [answers[0], *split, answers[2]]
    assert not requests.answered_by(message.to, requests.outcomes())
    copy: list[OutcomePart] = [RequestOutcome(phones=tuple(list(r.to)), outcome=Outcome.ACCEPTED)]
    requests.keep(1, r, copy)
    assert requests.outcomes() == [answers[0], *copy, answers[2]]
    requests.keep(1, r, [RequestOutcome(phones=r.to, outcome=Outcome.ACCEPTED, message_id="m1")])
    assert requests.outcomes() is requests.answers  # answered again with one outcome for its phones


class TenARequest:
    """Ten phones a request, each answered with the loopback's answer to the first (kept nowhere)."""

    answer = None

    @hookimpl(tryfirst=True)
    def request_limit(self, ctx, operation):
        return 10

    @hookimpl(tryfirst=True)
    def transmit(self, ctx, request):
        from smsgate.default_plugins import loopback

        if self.answer is None:
            self.answer = loopback.transmit(ctx, request)
        return self.answer


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_bulk_send_keeps_no_object_per_request_for_the_collector(smsgate_outbox, concurrency):
    """Each object the collector counts that a send keeps alive brings its next run nearer, and a run
    while the caller's list of phones is young walks all of it: a send of 2,000 requests leaves the
    collector no more to count than one of 200, in one thread or several. Its result reads the same as one made phone by
    phone, and still pickles, copies and compares as that."""
    import copy
    import gc

    from smsgate.models import KeptOutcomes, _get_outcomes

    counted = {}
    for requests in (200, 2000):
        phones = [f"137{i:08d}" for i in range(requests * 10)]
        with gateway(TenARequest(), providers={"loopback": {"max_concurrency": concurrency}}) as gw:
            gw.send(Message(to=phones[:20], text="warm"))  # imports, the plugin's first calls
            gc.collect()
            gc.disable()
            try:
                before = gc.get_count()[0]
                result = gw.send(Message(to=phones, text="hi"))
                counted[requests] = gc.get_count()[0] - before
            finally:
                gc.enable()
        assert type(_get_outcomes(result)) is KeptOutcomes  # kept as columns: every request answered whole
        assert result.ok and result.accepted == phones and not result.unknown
    assert counted[2000] - counted[200] < 100, counted  # (one object per request: 1,800 more)
    # a result made phone by phone reads the same; the columns become outcomes when first read
    assert len(result.outcomes) == 2000 and type(_get_outcomes(result)) is tuple
    one = result.outcomes[3]
    assert one.phones == tuple(phones[30:40]) and one.message_id and one.message_ids == {}
    with pytest.raises(TypeError, match="cannot be changed"):
        one.message_ids["13800138000"] = "x"  # type: ignore[index]  # shared by every kept outcome
    for twin in (pickle.loads(pickle.dumps(one)), copy.copy(one), copy.deepcopy(one), attrs.evolve(one)):
        assert twin == one and twin.phones == tuple(phones[30:40])
    with gateway(TenARequest()) as gw:
        lazy = gw.send(Message(to=phones, text="hi"))
    assert type(_get_outcomes(lazy)) is KeptOutcomes
    assert type(_get_outcomes(lazy)) is KeptOutcomes
    twin = pickle.loads(pickle.dumps(lazy))
    assert twin.recipients == lazy.recipients and len(twin.outcomes) == 2000


def test_a_replay_keeps_the_message_order_when_requests_do_not(smsgate_outbox, tmp_path):
    """Quota refusals in the middle are recorded as a request after the others: the replay still
    answers in the message's order, as the send did."""
    config = {"limits": {"per_phone": ["1/minute"]}, "ledger": {"url": f"sqlite:///{tmp_path}/ledger.sqlite3"}}
    with gateway(Scripted(limit=10), **config) as gw:
        gw.send(Message(to=[PHONES[3], PHONES[27]], text="first"))  # uses their quota
        first = gw.send(Message(to=PHONES[:30], text="hi", key="middle"))
        again = gw.send(Message(to=PHONES[:30], text="hi", key="middle"))
    def seen(result):  # (the ledger keeps no retry_at: a replay's refusals lack it)
        return [(r.phone, r.outcome, r.message_id, r.reason and r.reason.code) for r in result.recipients]

    assert again.replayed and [r.phone for r in again.recipients] == PHONES[:30]
    assert seen(again) == seen(first)


def test_a_ledger_record_is_once_each_only_when_every_phone_is_in_one_request():
    from smsgate.sending.ledger import LedgerRequest, SendRecord

    def record(*requests, recipients=4):
        return SendRecord(key="k", fingerprint="f", provider="p", recipients=recipients, segments=None,
                          created_at=0.0, requests=tuple(
                              LedgerRequest(key="k", request_index=i, provider="p", vendor="v", phones=tuple(phones),
                                            outcome="accepted") for i, phones in enumerate(requests)))

    assert record(PHONES[0:2], PHONES[2:4]).once_each()
    assert not record(PHONES[0:2], PHONES[1:3]).once_each()  # a phone in two requests (failover), one missing
    assert not record(PHONES[0:2], PHONES[2:5]).once_each()  # more phones than the send had
    assert not record(PHONES[0:2], PHONES[2:3]).once_each()  # one missing
