"""The message pipeline: validate -> plan batches -> build_request -> sign -> transmit -> parse_response
-> merge, so that every recipient ends with an outcome."""

from __future__ import annotations

import contextvars
import logging
import operator
import re
from itertools import count, islice
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ProviderError, SmsError, TransportError, ValidationError
from ..hookspecs import hookimpl
from ..models import (
    HttpRequest,
    KeptOutcomes,
    MadeWhenRead,
    Message,
    Operation,
    OutcomePart,
    Outcome,
    Reason,
    RecipientResult,
    RequestOutcome,
    SendReply,
    SendResult,
    builder,
    part_phones,
)
from ..phones import mask_phone, mask_phones_in, normalise_phone, segments
from ..log import strip_userinfo
from .trace import RequestTrace, log as _trace_log
from .transport import deadline_passed

# enum members read through their class cost about ten times a module global (the per-send paths)
_SENDS, _ACCEPTED = (Operation.SEND, Operation.SEND_BATCH), Outcome.ACCEPTED
#: RequestOutcome(phones, outcome, message_id, message_ids, reason, request_id, provider, earlier),
#: made for every accepted request: without the keyword call through the class
_accepted_outcome = builder(RequestOutcome)
_LOG_PHONES = 10  # masked phones listed per log line at most
_NORMAL = re.compile(r"1[3-9][0-9]{9}")  # an already-normal number (what normalise_phone returns)


def normalise_recipients(message: Message) -> Message:
    """Normalise every phone to 11 digits, drop duplicates (first wins), and refuse the message
    with one ValidationError naming every bad number."""
    if not message.to:
        raise ValidationError("no recipients: give at least one phone number", field="to")
    given = message.personal
    if given is None:
        # the usual bulk input: already-normal ASCII numbers, taken as they are; anything else goes
        # through normalise_phone below, in order
        to = message.to
        if len(to) == 1:  # one recipient (most sends): no sets, maps or duplicates to look at
            if type(to[0]) is str and _NORMAL.fullmatch(to[0]):
                return message
        normal, ascending = _already_normal(to)
        if normal:
            # no duplicates: kept as given. Numbers in ascending order (a list read with ORDER BY) have
            # none; otherwise a set (cheaper than a dict) tells
            if ascending or len(set(to)) == len(to):
                return message
            return attrs.evolve(message, to=tuple(dict.fromkeys(to)))
    bad: list[str] = []
    seen: dict[str, None] = {}
    personal: dict[str, Any] | None = None if given is None else {}
    for raw in message.to:
        phone = normalise_phone(raw)
        if phone is None:
            bad.append(str(raw))
            continue
        if personal is not None and given is not None:
            content = given[raw]
            if phone in personal and personal[phone] != content:
                raise ValidationError(
                    f"phone number {raw!r} appears twice with different content", invalid=(str(raw),), field="personal"
                )
            personal[phone] = content
        seen.setdefault(phone)
    if bad:
        listed = ", ".join(repr(b) for b in bad)
        raise ValidationError(
            f"{len(bad)} invalid phone number{'s' if len(bad) > 1 else ''} (mainland China mobile "
            f"numbers, 11 digits starting 13-19, optional +86/86/0086): {listed}",
            invalid=tuple(bad),
            field="to",
        )
    to = tuple(seen)
    if to == message.to and personal == message.personal:
        return message
    return attrs.evolve(message, to=to, personal=personal)


#: phones checked together: a chunk's string objects stay in the CPU caches across its checks, where
#: one pass after another over a million of them (64 MB) would read each from memory every time
_CHUNK = 1024


def _already_normal(to: tuple[Any, ...]) -> tuple[bool, bool]:
    """(every phone is a plain ``str`` already in normal form, and they are in strictly ascending
    order). Checked a chunk at a time, every check on a chunk before the next chunk is read."""
    ascending = True
    last = ""  # below every number
    for start in range(0, len(to), _CHUNK):
        chunk = to[start:start + _CHUNK]
        # a str subclass, bytes, an int: normalise_phone decides (a list's count, cheaper than a set)
        if list(map(type, chunk)).count(str) != len(chunk) or not _normal_chunk(chunk):
            return False, False
        if ascending:
            ascending = last < chunk[0] and all(map(operator.lt, chunk, islice(chunk, 1, None)))
            last = chunk[-1]
    return True, ascending


def _normal_chunk(chunk: tuple[str, ...]) -> bool:
    """Whether every phone of ``chunk`` (plain strs) is in normal form: 11 ASCII digits, 13-19 first.

    Told from the chunk joined by commas, as bytes, in a few passes that each run in C (a regex over
    the joined text took 2.3 times as long): the text is ASCII; a comma after every 11 characters
    (the join's, at 11, 23, ...), and no other comma (there are ``count - 1`` in all), so each
    phone is 11 characters without a comma; nothing but digits and commas; and every phone's first
    two characters, read with a step of 12, are 1 and then 3-9."""
    count = len(chunk)
    joined = ",".join(chunk)
    if len(joined) != 12 * count - 1 or not joined.isascii():
        return False
    data = joined.encode("ascii")
    return (data[11::12] == b"," * (count - 1) and data.count(b",") == count - 1
            and not data.translate(None, b"0123456789,")
            and data[::12] == b"1" * count and not data[1::12].translate(None, b"3456789"))


def check_content(message: Message, capabilities: Any, provider: str) -> None:
    """The provider-independent content rules, then the provider's declared capabilities."""
    # (each field read once, and the usual template send's params checked without building lists:
    # every send passes here)
    template_id, text, personal = message.template_id, message.text, message.personal
    is_template = template_id is not None
    if is_template:
        if text is not None:
            raise ValidationError("give either a template id or a text, not both", field="text")
        if not (template_id if type(template_id) is str else str(template_id)).strip():
            raise ValidationError("template id is empty", field="template_id")
        if not capabilities.templates:
            raise ValidationError(f"provider {provider!r} does not send templates; send a text instead",
                                  field="template_id")
    else:
        if text is None and personal is None:
            raise ValidationError("nothing to send: give a template id or a text", field="template_id")
        if not capabilities.text:
            raise ValidationError(f"provider {provider!r} sends only templates; give a template id", field="text")
    if message.send_at is not None and not capabilities.scheduling:
        raise ValidationError(f"provider {provider!r} cannot schedule a send time", field="send_at")
    if personal is not None:
        if Operation.SEND_BATCH not in capabilities.operations:
            raise ValidationError(f"provider {provider!r} has no personalised send", field="personal")
        for phone, content in personal.items():
            if is_template and isinstance(content, str):
                raise ValidationError(f"personalised params for {phone!r} must be a list or mapping",
                                      field="personal")
            if not is_template and not isinstance(content, str):
                raise ValidationError(f"personalised text for {phone!r} must be a string", field="personal")
    if not is_template:
        for text in (list(personal.values()) if personal is not None else [text or ""]):
            if not text.strip():
                raise ValidationError("text is empty", field="text")
            if capabilities.max_text_length and len(text) > capabilities.max_text_length:
                raise ValidationError(
                    f"text is {len(text)} characters; provider {provider!r} takes at most "
                    f"{capabilities.max_text_length}",
                    field="text",
                )
        return
    for params in ((message.params,) if personal is None else personal.values()):
        if isinstance(params, dict) and not capabilities.named_params:
            raise ValidationError(f"provider {provider!r} takes positional params (a list), not named ones",
                                  field="params")
        if isinstance(params, tuple) and params and not capabilities.positional_params:
            raise ValidationError(f"provider {provider!r} takes named params (a mapping), not a list",
                                  field="params")


def _text(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationError(f"template variables must be text or numbers, not {type(value).__name__}",
                              field=field)
    return value if isinstance(value, str) else str(value)


def _texts(params: Any, field: str) -> Any:
    if isinstance(params, Mapping):
        return {str(k): _text(v, field) for k, v in params.items()}
    return tuple(_text(v, field) for v in params or ())


def text_params(message: Message) -> Message:
    """``message`` with its template variables (``params``, or every ``personal`` entry; positional
    or named) as text, numbers written as decimal text; anything else is refused with a
    ValidationError naming the field. For providers whose vendor takes the variables as strings."""
    if message.personal is not None:
        personal = {p: _texts(v, "personal") for p, v in message.personal.items()}
        return message if personal == message.personal else attrs.evolve(message, personal=personal)
    params = _texts(message.params, "params")
    if message.params is None or params == message.params:
        return message
    return attrs.evolve(message, params=params)


def plan(message: Message, limit: int) -> Sequence[Message]:
    """Cut the recipients into requests of at most ``limit`` phones each (see :class:`Requests`)."""
    limit = max(1, int(limit))
    if len(message.to) <= limit:
        return [message]
    return Requests(message, limit)


class Requests(MadeWhenRead[Message]):
    """``message`` cut into requests of at most ``limit`` phones, each request's message made when
    it is read, that is as it is sent.

    Made all at once, before the first was sent, the requests of a large send were cut out of the
    message's phones in one pass and joined into each request's body in another: at a million
    phones (64 MB of string objects) each pass read every phone from memory. Made one at a time, a
    request's phones are still in the CPU caches when its body is built, and its message is freed
    once it was sent. A request's one shared outcome is kept in :attr:`answers` as columns
    (:class:`~smsgate.models.KeptOutcomes`: no object per request for the cyclic collector), so its
    tuple of phones is freed with it too; :func:`merge` takes those as they are when every request
    was answered so."""

    __slots__ = ("message", "limit", "answers", "others")

    def __init__(self, message: Message, limit: int):
        self.message, self.limit = message, limit
        #: each request's one shared outcome, as :meth:`keep` kept it
        self.answers = KeptOutcomes(message.to, limit)
        #: the outcomes of a request answered otherwise (per phone, or not for its very phones)
        self.others: dict[int, list[OutcomePart]] = {}

    def __len__(self) -> int:
        return len(self.answers)

    def _item(self, index: int) -> Message:
        start = index * self.limit
        return only(self.message, self.message.to[start:start + self.limit])

    def keep(self, index: int, request: Message, results: list[OutcomePart]) -> None:
        """Keep ``results``, the outcomes of request ``index`` (``request``, as this sequence made
        it): one outcome shared by all of the request's very phones in :attr:`answers`, any other
        answer as it is; :meth:`outcomes` gives them back in order."""
        if len(results) == 1 and type(results[0]) is RequestOutcome and results[0].phones is request.to:
            self.answers.keep(index, results[0])
            self.others.pop(index, None)
        else:
            self.others[index] = results

    def outcomes(self) -> Sequence[OutcomePart]:
        """Every kept request's outcomes, in request order: :attr:`answers` itself when each request
        was answered with one outcome for its phones (most bulk sends)."""
        if not self.others:
            return self.answers
        out: list[OutcomePart] = []
        for i in range(len(self.answers)):
            other = self.others.get(i)
            if other is None:
                out.append(self.answers[i])
            else:
                out.extend(other)
        return out

    def answered_by(self, to: tuple[str, ...], results: Sequence[OutcomePart]) -> bool:
        """Whether ``results`` are :attr:`answers`, complete (so they speak for ``to``, this
        message's phones, in order, each once), told without reading a phone."""
        return results is self.answers and self.message.to is to and self.answers.complete()


def only(message: Message, phones: Sequence[str]) -> Message:
    """``message`` to ``phones`` (some of its recipients) only."""
    phones = tuple(phones)
    if phones == message.to:
        return message
    personal = None if message.personal is None else {p: message.personal[p] for p in phones}
    return attrs.evolve(message, to=phones, personal=personal)


def _masked(phones: Sequence[str]) -> list[str]:
    return [mask_phone(p) for p in phones[:_LOG_PHONES]]


def _traced_request(hooks: Any, ctx: Any, operation: Operation, payload: Any, invalid_raises: bool) -> Any:
    """:func:`_run_request` with its debug trace (``smsgate -vv``): one ``smsgate.request`` event."""
    trace = RequestTrace(ctx, operation)
    try:
        result = _run_request(hooks, ctx, operation, payload, trace, invalid_raises)
    except (ProviderError, TransportError) as exc:
        trace.emit("not_sent" if exc.not_sent else "unknown", code=getattr(exc, "code", None) or type(exc).__name__,
                   error=str(exc))
        raise
    except Exception as exc:
        trace.emit("error", error=f"{type(exc).__name__}: {exc}")
        raise
    codes = sorted({r.code for r in result.rejected.values() if r.code}) if isinstance(result, SendReply) else []
    trace.emit("ok", code=",".join(codes) or None)
    return result


def _run_request(hooks: Any, ctx: Any, operation: Operation, payload: Any, trace: RequestTrace | None,
                 invalid_raises: bool) -> Any:
    unsigned = None
    try:
        request = hooks.build_request(ctx=ctx, operation=operation, payload=payload)
        if not isinstance(request, HttpRequest):
            raise ProviderError(f"provider {ctx.provider!r} built no request for {operation.value}",
                                code="PLUGIN", not_sent=True, provider=ctx.provider)
        unsigned = request
        signed = hooks.sign(ctx=ctx, operation=operation, request=request)
    except SmsError as exc:
        if isinstance(exc, ValidationError) and not invalid_raises:  # nothing left the process
            raise ProviderError(str(exc), code="INVALID", not_sent=True, provider=ctx.provider) from None
        raise
    except Exception as exc:  # a plugin bug before sending: nothing left the process
        raise ProviderError(f"provider {ctx.provider!r} failed to build or sign the request: "
                            f"{type(exc).__name__}: {exc}", code="PLUGIN", not_sent=True,
                            provider=ctx.provider) from None
    if signed is not None:
        request = signed
    # From here on the request may have left: only a TransportError or ProviderError that says so
    # proves it did not; anything else raised (a wrapper's or a plugin's) leaves the outcome unknown.
    if trace is not None:
        trace.sent(unsigned, request)
    try:
        response = hooks.transmit(ctx=ctx, request=request)
    except (TransportError, ProviderError):
        if trace is not None:
            trace.answered(None)
        raise
    except Exception as exc:
        if trace is not None:
            trace.answered(None)
        raise TransportError(f"sending failed: {type(exc).__name__}: {exc}", not_sent=False) from None
    if trace is not None:
        trace.answered(response)
    try:
        result = hooks.parse_response(ctx=ctx, operation=operation, request=request, response=response)
    except ProviderError:
        raise
    except Exception as exc:  # the answer could not be understood: it may still have been taken
        raise ProviderError(
            f"could not understand the answer of provider {ctx.provider!r} (HTTP {response.status}): "
            f"{type(exc).__name__}: {exc}",
            code=f"HTTP{response.status}",
            not_sent=False,
            provider=ctx.provider,
        ) from None
    if result is None:
        raise ProviderError(
            f"provider {ctx.provider!r} could not parse the answer (HTTP {response.status})",
            code=f"HTTP{response.status}",
            not_sent=False,
            provider=ctx.provider,
        )
    return result


def call_vendor(hooks: Any, ctx: Any, operation: Operation, payload: Any) -> Any:
    """One vendor call through the ``vendor_request`` hook, so wrappers (metrics, tracing) see it whole."""
    return hooks.vendor_request(ctx=ctx, operation=operation, payload=payload, hooks=hooks)


@hookimpl(trylast=True)
def vendor_request(ctx: Any, operation: Operation, payload: Any, hooks: Any) -> Any:
    """The core's ``vendor_request``: build_request -> sign -> transmit -> parse_response for one
    vendor call (traced at debug level). A ValidationError while building becomes a not-sent
    ProviderError for a send (its recipients get an outcome); a query's bad input raises as it is."""
    invalid_raises = operation not in _SENDS
    # a trace only when the debug level is on: without a reader (the usual case) the request runs
    # with nothing collected for it
    if not _trace_log.is_enabled(logging.DEBUG):
        return _run_request(hooks, ctx, operation, payload, None, invalid_raises)
    return _traced_request(hooks, ctx, operation, payload, invalid_raises)


def _unknown(batch: Message, provider: str, log: Any, code: str, message: str,
             request_id: str | None = None) -> list[OutcomePart]:
    log.warning("smsgate.send.unknown", provider=provider, recipients=len(batch.to), phones=_masked(batch.to),
                code=code, error=mask_phones_in(message), request_id=request_id)
    reason = Reason(code=code, message=strip_userinfo(message), not_sent=False)
    return [RequestOutcome(phones=batch.to, outcome=Outcome.UNKNOWN, reason=reason, request_id=request_id)]


def _rejected(phones: tuple[str, ...], reason: Reason, request_id: str | None = None) -> list[OutcomePart]:
    """Every phone of a request rejected for one reason (one shared outcome, no object per phone)."""
    return [RequestOutcome(phones=phones, outcome=Outcome.REJECTED, reason=reason, request_id=request_id)]


#: called before a request leaves with (request index, batch); a Reason refuses the request
Gate = Callable[[int, Message], "Reason | None"]


def _gated(gate: Gate, batch: Message, index: int, log: Any) -> list[OutcomePart] | None:
    """The outcomes of a request its gate refused (nothing left), or None: it may go."""
    try:
        reason = gate(index, batch)
    except Exception as exc:  # before sending: nothing left the process
        reason = Reason(code="PLUGIN", message=f"{type(exc).__name__}: {exc}", not_sent=True)
    if reason is None:
        return None
    log.warning("smsgate.send.not_sent", recipients=len(batch.to), phones=_masked(batch.to), code=reason.code,
                error=reason.message)
    return _rejected(batch.to, reason)


def send_outcomes(hooks: Any, make_ctx: Callable[[int], Any], operation: Operation, batch: Message,
                  index: int, log: Any, journal: Any = None, gate: Gate | None = None) -> list[OutcomePart]:
    """:func:`request_outcomes` of request ``index``, in the context ``make_ctx(index)`` makes."""
    try:
        ctx = make_ctx(index)
    except Exception as exc:  # as request_outcomes takes anything unexpected
        results = _unknown(batch, "?", log, "ERROR", f"{type(exc).__name__}: {exc}")
        if journal is not None:
            journal.after(index, results)
        return results
    return request_outcomes(hooks, ctx, operation, batch, index, log, journal, gate)


def request_outcomes(hooks: Any, ctx: Any, operation: Operation, batch: Message, index: int, log: Any,
                     journal: Any = None, gate: Gate | None = None) -> list[OutcomePart]:
    """One request's outcomes, for every recipient of ``batch`` in order (stored parts: one shared
    outcome for the phones that share it, see :class:`RequestOutcome`). Never raises: whatever goes wrong
    becomes rejected (proven not sent) or unknown, so no other request's outcomes are lost.

    ``journal`` (the send ledger's, when there is one) records the request before it leaves -- if
    it cannot, the request does not leave -- and its outcomes after. ``gate`` (the limits' request
    rate) may then still refuse it before it leaves."""
    provider = "?"
    try:
        provider = ctx.provider
        refused = None if journal is None else journal.before(index, batch.to)
        if refused is not None:
            return _rejected(batch.to, refused)
        gated = None if gate is None else _gated(gate, batch, index, log)
        if gated is not None:
            results = gated
        elif deadline_passed(ctx.extras.get("deadline")):  # queued past the send's deadline: never started
            reason = Reason(code="DEADLINE", message="send_timeout reached before this request was sent",
                            not_sent=True)
            log.warning("smsgate.send.not_sent", provider=provider, recipients=len(batch.to),
                        phones=_masked(batch.to), error=reason.message)
            results = _rejected(batch.to, reason)
        else:
            results = _send_outcomes(hooks, ctx, operation, batch, log)
    except Exception as exc:  # anything unexpected: it may have happened after sending
        results = _unknown(batch, provider, log, "ERROR", f"{type(exc).__name__}: {exc}")
    if journal is not None:
        journal.after(index, results)
    return results


def _send_outcomes(hooks: Any, ctx: Any, operation: Operation, batch: Message, log: Any) -> list[OutcomePart]:
    provider = ctx.provider
    try:
        reply = hooks.vendor_request(ctx=ctx, operation=operation, payload=batch, hooks=hooks)  # (call_vendor)
    except TransportError as exc:
        if exc.not_sent:
            reason = Reason(code="CONNECT", message=strip_userinfo(str(exc)), not_sent=True)
            log.warning("smsgate.send.not_sent", provider=provider, recipients=len(batch.to),
                        phones=_masked(batch.to), attempts=exc.attempts, error=mask_phones_in(str(exc)))
            return _rejected(batch.to, reason)
        return _unknown(batch, provider, log, "TRANSPORT", str(exc))
    except ProviderError as exc:
        code = exc.code or type(exc).__name__
        reason = Reason(code=code, message=strip_userinfo(exc.vendor_message or str(exc)), not_sent=exc.not_sent)
        if exc.not_sent:
            log.warning("smsgate.send.rejected", provider=provider, recipients=len(batch.to),
                        phones=_masked(batch.to), code=code, error=mask_phones_in(str(exc)),
                        request_id=exc.request_id)
            return _rejected(batch.to, reason, exc.request_id)
        return _unknown(batch, provider, log, code, reason.message, exc.request_id)
    if not isinstance(reply, SendReply):
        return _unknown(batch, provider, log, "PLUGIN",
                        f"provider {provider!r}: parse_response returned {type(reply).__name__}, not SendReply")
    message_id, request_id, ids = reply.message_id, reply.request_id, reply.message_ids
    if not reply.rejected:  # the usual answer: every recipient accepted, one shared outcome
        if log.is_enabled(logging.INFO):
            log.info("smsgate.send.accepted", provider=provider, recipients=len(batch.to),
                     phones=_masked(batch.to), message_id=message_id, request_id=request_id)
        return [_accepted_outcome(batch.to, _ACCEPTED, message_id, ids, None, request_id, None, ())]
    # some phones refused: runs of accepted phones share one outcome, each refused phone has its own
    results: list[OutcomePart] = []
    accepted: list[str] = []
    run: list[str] = []
    refusals = reply.rejected

    def close_run() -> None:
        if run:
            results.append(RequestOutcome(phones=tuple(run), outcome=Outcome.ACCEPTED, message_id=message_id,
                                          message_ids=ids, request_id=request_id))
            run.clear()

    for phone in batch.to:
        refused = refusals.get(phone)
        if refused is None:
            run.append(phone)
            accepted.append(phone)
            continue
        close_run()
        # a per-number failure that does not prove the number unsent (a vendor timeout) is unknown
        outcome = Outcome.REJECTED if refused.not_sent else Outcome.UNKNOWN
        results.append(RecipientResult(phone=phone, outcome=outcome, reason=refused, request_id=request_id))
    close_run()
    if accepted and log.is_enabled(logging.INFO):
        log.info("smsgate.send.accepted", provider=provider, recipients=len(accepted),
                 phones=_masked(accepted), message_id=message_id, request_id=request_id)
    for not_sent, event in ((True, "smsgate.send.rejected"), (False, "smsgate.send.unknown")):
        phones = [p for p in batch.to if p in refusals and refusals[p].not_sent is not_sent]
        if phones:
            log.warning(event, provider=provider, recipients=len(phones), phones=_masked(phones),
                        request_id=request_id)
    return results


def execute_send(hooks: Any, make_ctx: Callable[[int], Any], operation: Operation, batches: Sequence[Message],
                 max_concurrency: int, log: Any, journal: Any = None, gate: Gate | None = None,
                 start: int = 0) -> Sequence[OutcomePart]:
    """Send every batch (concurrently, at most ``max_concurrency`` at once) and merge the outcomes.
    The batches are requests ``start``, ``start + 1``, ... of the send (a route's later attempts
    continue the numbering of the earlier ones)."""
    # the outcomes of Requests are kept by them (see Requests.keep), and read back in order at the end
    requests = batches if type(batches) is Requests else None  # (type: see merge)
    keep = None if requests is None else requests.keep

    def sent(i: int, batch: Message) -> list[OutcomePart]:
        results = send_outcomes(hooks, make_ctx, operation, batch, start + i, log, journal, gate)
        if keep is None:
            return results
        keep(i, batch, results)
        return []

    if len(batches) <= 1 or max_concurrency <= 1:  # (one request: flow.run_requests sends it itself)
        out: list[OutcomePart] = []
        for i, batch in enumerate(batches):
            out.extend(sent(i, batch))
        return out if requests is None else requests.outcomes()
    from concurrent.futures import ThreadPoolExecutor

    # Each worker takes the next request until none is left, rather than a task per request given
    # to the pool up front: the requests of Requests are then made as they are sent, as in one
    # thread, and a bulk send holds no future, lock and message per request until its end (objects
    # the cyclic collector counts, see KeptOutcomes).
    total = len(batches)
    answered: list[list[OutcomePart]] = [[] for _ in range(total)]  # (empty for what Requests kept)
    numbers = count()  # (its next() is one step under the GIL: shared by the workers)
    context = contextvars.copy_context()  # the send's context variables (its tracing span, bound log fields)

    def work() -> None:
        for i in numbers:
            if i >= total:
                return
            answered[i] = context.copy().run(sent, i, batches[i])  # (a copy per request, as a task each had)

    workers = min(max_concurrency, total)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smsgate-send") as pool:
        for fut in [pool.submit(work) for _ in range(workers)]:
            fut.result()
    if requests is not None:
        return requests.outcomes()
    return [part for results in answered for part in results]


def merge(provider: str, message: Message, results: Sequence[OutcomePart], key: str | None = None,
          requests: Sequence[Message] | None = None) -> SendResult:
    """The send's result: ``results`` (stored parts, see :class:`RequestOutcome`) in the message's
    order. Raises ProviderError, never a silent loss, when a recipient has no outcome.
    ``requests``: the requests ``results`` answer, when they were all of ``message``'s."""
    # (type, not isinstance: Requests is a Sequence, and isinstance of a plain list against an ABC
    # runs the ABC's Python __instancecheck__ on every send)
    to = message.to
    parts: tuple[OutcomePart, ...]
    if _one_for_all(to, results):
        parts = (results[0],)  # (most sends)
    elif type(requests) is Requests and requests.answered_by(to, results):
        # each request's outcome, in order: nothing to check phone by phone, and kept as columns
        return SendResult._of_parts(provider, requests.answers, message_segments(message), key)
    else:
        parts = tuple(in_order(provider, to, results))
    return SendResult._of_parts(provider, parts, message_segments(message), key)


def in_order(provider: str, to: Sequence[str], results: Sequence[OutcomePart]) -> list[OutcomePart]:
    """``results`` arranged in the order of ``to``, one outcome per phone (a phone given twice: the
    later wins), without an object per recipient: a shared outcome is cut into the runs of phones
    that stay together."""
    to = tuple(to)  # (the message's own tuple: no copy)
    if _one_for_all(to, results):
        return list(results)  # (most sends)
    if covers_in_order(to, results):  # the usual case: in order, all there, once each
        return list(results)
    owner: dict[str, int] = {}
    for i, part in enumerate(results):
        for phone in part_phones(part):
            owner[phone] = i
    missing = [p for p in to if p not in owner]
    if missing:  # a provider bug must never lose a recipient silently
        raise ProviderError(f"provider {provider!r} returned no outcome for {len(missing)} recipient(s)",
                            not_sent=False, provider=provider)
    out: list[OutcomePart] = []
    run: list[str] = []
    current = -1
    for phone in to:
        i = owner[phone]
        if i != current and run:
            out.append(_cut(results[current], run))
            run = []
        current = i
        run.append(phone)
    if run:
        out.append(_cut(results[current], run))
    return out


def _one_for_all(to: tuple[str, ...], results: Sequence[OutcomePart]) -> bool:
    """Whether ``results`` is one request's shared outcome for every phone of ``to``, in order."""
    return len(results) == 1 and type(results[0]) is RequestOutcome and results[0].phones == to


def covers_in_order(to: tuple[str, ...], results: Sequence[OutcomePart]) -> bool:
    """Whether ``results`` speak for ``to``'s phones in its order, each once. Compared a part at a
    time against a slice of ``to``: a request's phones are usually the very objects of ``to``, which
    tuple equality takes without comparing their text, and each slice is read while it is in the
    CPU caches (two lists of a million phones, made, compared and freed, went over them four times)."""
    start = 0
    for part in results:
        phones = part_phones(part)
        end = start + len(phones)
        if to[start:end] != phones:
            return False
        start = end
    return start == len(to)


def _cut(part: OutcomePart, phones: list[str]) -> OutcomePart:
    """The part of ``part`` that speaks for ``phones`` (some or all of its phones)."""
    if type(part) is not RequestOutcome:
        return part
    if len(phones) == len(part.phones) and tuple(phones) == part.phones:
        return part
    return attrs.evolve(part, phones=tuple(phones))


def message_segments(message: Message) -> int | None:
    """SMS parts per recipient for free text (the longest text's); None for templates."""
    if message.template_id is not None:
        return None
    texts = list(message.personal.values()) if message.personal is not None else [message.text or ""]
    return max(segments(t) for t in texts)
