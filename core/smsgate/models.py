"""Values that travel through smsgate: frozen attrs classes, structured and unstructured by cattrs."""

from __future__ import annotations

import datetime as _dt
import enum
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

# What a provider's declaration needs lives with it (provider.py), so that declaring a provider
# does not build every value class below; re-exported here, where they have always been.
from .provider import CHINA_TZ as CHINA_TZ, Operation as Operation
from .wire import load_json  # light (json, attrs); imported here, not per answer

if TYPE_CHECKING:
    import cattrs

    from .reporting import (Balance as Balance, CallbackRequest as CallbackRequest, CallbackResult as CallbackResult,
                            DayStatistics as DayStatistics, DeliveryReport as DeliveryReport,
                            InboundMessage as InboundMessage, PullQuery as PullQuery, SendStatistics as SendStatistics,
                            StatisticsQuery as StatisticsQuery, TaskSummary as TaskSummary)

_T = TypeVar("_T")

# The values of every call but a send live in smsgate.reporting and are read from here on first use
# (PEP 562): a send builds none of their ten attrs classes.
_REPORTING = frozenset({"Balance", "CallbackRequest", "CallbackResult", "DayStatistics", "DeliveryReport",
                        "InboundMessage", "PullQuery", "SendStatistics", "StatisticsQuery", "TaskSummary"})


def __getattr__(name: str) -> Any:
    if name in _REPORTING:
        from . import reporting

        value = getattr(reporting, name)
        globals()[name] = value  # later reads find it here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# an enum member read through its class costs about ten times a module global (the lookup goes
# through the enum's metaclass); the per-send paths read these instead
_SEND, _SEND_BATCH = Operation.SEND, Operation.SEND_BATCH


class Status(str, enum.Enum):
    """Normalised delivery status, kept beside the vendor's raw code."""

    DELIVERED = "delivered"
    FAILED = "failed"
    PENDING = "pending"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class Outcome(str, enum.Enum):
    """What became of one recipient of a send."""

    ACCEPTED = "accepted"  #: the vendor took it, with a message id
    REJECTED = "rejected"  #: certainly not sent; the reason says why
    UNKNOWN = "unknown"  #: the request may have reached the vendor; never resent automatically

    def __str__(self) -> str:
        return self.value


_ACCEPTED = Outcome.ACCEPTED  # read per send by SendResult.ok (see _SEND above)


def _freeze_params(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise TypeError(f"params must be a list or a mapping, not {type(value).__name__}")


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _recipients(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _freeze_personal(value: Any) -> Any:
    if value is None:
        return None
    return {str(k): (_freeze_params(v) if not isinstance(v, str) else v) for k, v in dict(value).items()}


@attrs.frozen(kw_only=True)
class Message:
    """One SMS request from the application.

    Content is either a template (``template_id`` plus ``params``, positional as a list or named
    as a mapping) or free ``text``. The personalised form sets ``personal``: a mapping phone ->
    params (template) or phone -> text (free text); its keys are the recipients.
    """

    to: tuple[str, ...] = attrs.field(converter=_recipients)
    template_id: str | None = None
    params: tuple[Any, ...] | dict[str, Any] | None = attrs.field(default=None, converter=_freeze_params)
    text: str | None = None
    sign_name: str | None = None
    extend_code: str | None = None
    biz_id: str | None = None
    send_at: _dt.datetime | None = None
    personal: dict[str, Any] | None = attrs.field(default=None, converter=_freeze_personal)
    #: idempotency key: the same key sent again answers from the send ledger, nothing is resent
    key: str | None = None

    @classmethod
    def personalised(cls, personal: Mapping[str, Any], **kwargs: Any) -> "Message":
        """Build the personalised form: ``personal`` maps each phone to its params or its text."""
        return cls(to=tuple(personal), personal=personal, **kwargs)

    @property
    def is_personalised(self) -> bool:
        return self.personal is not None

    @property
    def operation(self) -> Operation:
        return _SEND_BATCH if self.personal is not None else _SEND

    def content_for(self, phone: str) -> Any:
        """The params (template) or text (free text) that ``phone`` gets."""
        if self.personal is not None:
            return self.personal[phone]
        return self.params if self.template_id is not None else self.text

    def send_at_china(self) -> _dt.datetime | None:
        """``send_at`` in China Standard Time (naive datetimes are taken as China time)."""
        if self.send_at is None:
            return None
        if self.send_at.tzinfo is None:
            return self.send_at.replace(tzinfo=CHINA_TZ)
        return self.send_at.astimezone(CHINA_TZ)


@attrs.frozen
class Reason:
    """Why a recipient was rejected: the vendor's code and text (or the transport's).

    ``retry_at`` (Unix seconds) says when it may be sent again, where that is known (a phone over
    its quota: code ``RATE_LIMITED``).
    """

    code: str
    message: str
    not_sent: bool = True
    retry_at: float | None = attrs.field(default=None, kw_only=True)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


@attrs.frozen(kw_only=True)
class RecipientResult:
    phone: str
    outcome: Outcome
    message_id: str | None = None
    reason: Reason | None = None
    request_id: str | None = None
    #: the provider that sent it, when it differs from the SendResult's (routing, replays)
    provider: str | None = None
    #: a route's earlier attempts for this recipient, each at another provider and each proven
    #: not sent (rejected, ``reason.not_sent``), in order; empty when its first attempt was final
    earlier: tuple[RecipientResult, ...] = ()

    @property
    def attempts(self) -> tuple["RecipientResult", ...]:
        """Every attempt for this recipient, in order: the earlier ones, then this final outcome."""
        return (*self.earlier, attrs.evolve(self, earlier=()))

    def to_json_dict(self, provider: str) -> dict[str, Any]:
        """One entry of ``SendResult.to_json_dict()["recipients"]`` (``provider``: the result's),
        with every attempt (a route's failover shows as earlier attempts rejected not sent)."""
        return {**self._json(provider), "attempts": [a._json(provider) for a in self.attempts]}

    def _json(self, provider: str) -> dict[str, Any]:
        reason = self.reason
        return {"phone": self.phone, "provider": self.provider or provider, "outcome": self.outcome.value,
                "message_id": self.message_id, "request_id": self.request_id,
                "reason": None if reason is None else {"code": reason.code, "message": reason.message,
                                                       "not_sent": reason.not_sent}}


class _KeptPhones:
    """Where a :class:`RequestOutcome` cut from a bulk send's message keeps that message's tuple of
    phones (see :class:`KeptOutcomes`): a slot of the class, outside its attrs fields (so outside its
    init, eq, repr, pickling and cattrs), read only when the ``phones`` slot holds a ``range``."""

    __slots__ = ("_of",)


@attrs.frozen(kw_only=True)
class RequestOutcome(_KeptPhones):
    """One outcome shared by several phones (usually one request's answer): how a
    :class:`SendResult` keeps its outcomes without an object per recipient.

    Phone ``p`` of ``phones`` reads as ``RecipientResult(phone=p, outcome=outcome,
    message_id=message_ids.get(p, message_id), reason=reason, request_id=request_id,
    provider=provider, earlier=...)``, its earlier attempts each read the same way for ``p``;
    :meth:`results` builds exactly those.
    """

    phones: tuple[str, ...]
    outcome: Outcome
    message_id: str | None = None
    #: per-phone message ids (a vendor that gives one id per phone); a phone not in it has ``message_id``
    message_ids: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    reason: Reason | None = None
    request_id: str | None = None
    provider: str | None = None
    #: a route's earlier attempts, the same for every one of these phones, each at another provider
    #: and proven not sent, in order (each a stored outcome that may speak for more phones than these:
    #: phone ``p`` reads its own); empty when the first attempt was final
    earlier: tuple[RecipientResult | RequestOutcome, ...] = ()

    def results(self) -> list[RecipientResult]:
        """One :class:`RecipientResult` per phone, in order."""
        outcome, reason, request_id, provider = self.outcome, self.reason, self.request_id, self.provider
        ids, message_id = self.message_ids, self.message_id
        if self.earlier:
            earlier = self.earlier
            return [RecipientResult(phone=p, outcome=outcome, message_id=ids.get(p, message_id), reason=reason,
                                    request_id=request_id, provider=provider,
                                    earlier=tuple(attempt_for(e, p) for e in earlier)) for p in self.phones]
        if ids:
            return [RecipientResult(phone=p, outcome=outcome, message_id=ids.get(p, message_id), reason=reason,
                                    request_id=request_id, provider=provider) for p in self.phones]
        return [RecipientResult(phone=p, outcome=outcome, message_id=message_id, reason=reason,
                                request_id=request_id, provider=provider) for p in self.phones]

    def message_id_set(self) -> list[str]:
        """The distinct message ids of these phones, in order of first use."""
        if not self.message_ids:
            return [self.message_id] if self.message_id else []
        seen: dict[str, None] = {}
        ids, message_id = self.message_ids, self.message_id
        for p in self.phones:
            found = ids.get(p, message_id)
            if found:
                seen.setdefault(found)
        return list(seen)


# RequestOutcome.phones reads as a tuple whatever the slot holds: the slot attrs made for the field
# stays where the phones are stored, and the class reads it through a property. attrs' __init__,
# evolve, eq, hash, repr and pickling (and cattrs) all go through the property, so they see the
# tuple; the class stays frozen (its __setattr__ still refuses). A bulk send's kept outcome holds
# a range there, of the tuple in its ``_of`` slot (a range is no container the cyclic collector
# counts or walks: see KeptOutcomes).
_phones_slot = RequestOutcome.__dict__["phones"]
_get_phones, _set_phones = _phones_slot.__get__, _phones_slot.__set__
_get_of, _set_of = _KeptPhones.__dict__["_of"].__get__, _KeptPhones.__dict__["_of"].__set__


def _read_phones(self: RequestOutcome) -> tuple[str, ...]:
    phones = _get_phones(self)
    if type(phones) is range:
        return _get_of(self)[phones.start:phones.stop]  # type: ignore[no-any-return]
    return phones  # type: ignore[no-any-return]


setattr(RequestOutcome, "phones", property(_read_phones, _set_phones, doc="The phones this outcome speaks for."))

#: what a :class:`SendResult` stores: a phone's own outcome, or one outcome shared by several phones
OutcomePart = RecipientResult | RequestOutcome


def attempt_for(part: OutcomePart, phone: str) -> RecipientResult:
    """``phone``'s attempt in a stored outcome that speaks for it (without earlier attempts)."""
    if isinstance(part, RecipientResult):
        return part
    ids = part.message_ids
    return RecipientResult(phone=phone, outcome=part.outcome, message_id=ids.get(phone, part.message_id)
                           if ids else part.message_id, reason=part.reason, request_id=part.request_id,
                           provider=part.provider)


def part_phones(part: OutcomePart) -> tuple[str, ...]:
    """The phones one stored part speaks for."""
    return part.phones if type(part) is RequestOutcome else (part.phone,)  # type: ignore[union-attr]


def part_size(part: OutcomePart) -> int:
    """How many phones one stored part speaks for (a kept outcome's tuple of phones is not cut)."""
    return len(_get_phones(part)) if type(part) is RequestOutcome else 1


def expand(parts: Iterable[OutcomePart]) -> list[RecipientResult]:
    """Stored parts as one :class:`RecipientResult` per recipient, in order."""
    out: list[RecipientResult] = []
    for part in parts:
        if type(part) is RequestOutcome:
            out.extend(part.results())
        else:
            out.append(part)  # type: ignore[arg-type]
    return out


@attrs.frozen(kw_only=True, init=False, eq=False, repr=False)
class SendResult:
    """Every recipient's outcome. ``ok`` only when every recipient was accepted.

    Give either ``recipients`` (one :class:`RecipientResult` per recipient) or ``outcomes`` (the
    same as stored parts: a :class:`RequestOutcome` for phones sharing one outcome, a
    :class:`RecipientResult` for a phone with its own). A bulk send keeps one part per request;
    ``recipients`` builds the per-recipient objects on first read (and keeps them).
    """

    provider: str
    #: the outcomes as stored, in the recipients' order: per request (phones + one shared outcome)
    #: or per recipient; together they speak for every recipient exactly once
    outcomes: tuple[OutcomePart, ...]
    segments: int | None = None  #: SMS parts per recipient for free text (None for templates)
    #: the send's key in the ledger (the caller's, or one the ledger made up); None without a ledger
    key: str | None = None
    #: True when this result was read back from the ledger and nothing was sent this time
    replayed: bool = False

    def __init__(self, *, provider: str, recipients: Iterable[RecipientResult] | None = None,
                 outcomes: Iterable[OutcomePart] | None = None, segments: int | None = None,
                 key: str | None = None, replayed: bool = False):
        if (recipients is None) == (outcomes is None):
            raise TypeError("SendResult takes recipients or outcomes (one of them)")
        parts = tuple(recipients if outcomes is None else outcomes)  # type: ignore[arg-type]
        self.__attrs_init__(provider=provider, outcomes=parts, segments=segments, key=key,
                            replayed=replayed)

    @classmethod
    def _of_parts(cls, provider: str, outcomes: tuple[OutcomePart, ...] | KeptOutcomes, segments: int | None = None,
                  key: str | None = None) -> "SendResult":
        """``SendResult(provider=..., outcomes=...)`` for stored parts already in a tuple, or a bulk
        send's :class:`KeptOutcomes` (made into the tuple when ``outcomes`` is first read); every
        send ends here: made without the checks of ``__init__`` and its call through the class."""
        if cls is SendResult:
            return _build_result(provider, outcomes, segments, key, False)
        result = _new_object(cls)
        result.__attrs_init__(provider=provider, outcomes=outcomes,  # type: ignore[arg-type]  # (see _read_outcomes)
                              segments=segments, key=key, replayed=False)
        return result

    @functools.cached_property
    def recipients(self) -> tuple[RecipientResult, ...]:
        """One :class:`RecipientResult` per recipient, in the message's order (built on first read)."""
        parts = self.outcomes
        if all(type(p) is RecipientResult for p in parts):
            return parts  # type: ignore[return-value]
        return tuple(expand(parts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SendResult):
            return NotImplemented
        return (self.provider, self.segments, self.key, self.replayed) == \
            (other.provider, other.segments, other.key, other.replayed) and \
            (self.outcomes == other.outcomes or self.recipients == other.recipients)

    def __hash__(self) -> int:
        return hash((self.provider, self.recipients, self.segments, self.key, self.replayed))

    def __repr__(self) -> str:
        return (f"SendResult(provider={self.provider!r}, recipients={self.recipients!r}, "
                f"segments={self.segments!r}, key={self.key!r}, replayed={self.replayed!r})")

    def iter_outcomes(self) -> Iterator[OutcomePart]:
        """:attr:`outcomes` one at a time, without making a bulk send's kept columns into a tuple
        of outcomes that stays (each is made as it is read and can go): for a tally after a send."""
        return iter(_get_outcomes(self))

    @property
    def ok(self) -> bool:
        parts = _get_outcomes(self)  # (as stored: a bulk send's outcomes are not made for this)
        if type(parts) is KeptOutcomes:
            return parts.every(_ACCEPTED)
        for part in parts:  # a loop, not all() over a generator: asked after most sends
            if part.outcome is not _ACCEPTED:
                return False
        return bool(parts)

    def _phones(self, outcome: Outcome) -> list[str]:
        parts = _get_outcomes(self)
        if type(parts) is KeptOutcomes:
            return parts.phones_with(outcome)
        out: list[str] = []
        for part in parts:
            if part.outcome is outcome:
                if type(part) is RequestOutcome:
                    out.extend(part.phones)
                else:
                    out.append(part.phone)
        return out

    @property
    def accepted(self) -> list[str]:
        return self._phones(Outcome.ACCEPTED)

    @property
    def rejected(self) -> list[RecipientResult]:
        return expand(p for p in self.outcomes if p.outcome is Outcome.REJECTED)

    @property
    def unknown(self) -> list[str]:
        return self._phones(Outcome.UNKNOWN)

    @property
    def message_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for part in self.outcomes:
            if type(part) is RequestOutcome:
                for found in part.message_id_set():
                    seen.setdefault(found)
            elif part.message_id:
                seen.setdefault(part.message_id)
        return list(seen)

    @property
    def request_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for part in self.outcomes:
            if part.request_id:
                seen.setdefault(part.request_id)
        return list(seen)

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object."""
        return {
            "provider": self.provider,
            "ok": self.ok,
            "message_ids": self.message_ids,
            "accepted": self.accepted,
            "rejected": [_rejected_json(r) for r in self.rejected],
            "unknown": self.unknown,
            "request_ids": self.request_ids,
            "segments": self.segments,
            "key": self.key,
            "replayed": self.replayed,
            # each phone with its own outcome and id (message_ids alone cannot be matched to phones)
            "recipients": self._recipients_json(),
        }

    def _recipients_json(self) -> list[dict[str, Any]]:
        """``to_json_dict()["recipients"]`` from the stored outcomes: a shared outcome's entry is
        made once and copied per phone (the same entries ``RecipientResult.to_json_dict`` gives)."""
        provider = self.provider
        out: list[dict[str, Any]] = []
        for part in self.outcomes:
            if not isinstance(part, RequestOutcome):
                out.append(part.to_json_dict(provider))
                continue
            if part.earlier:  # a route's failover: each phone with its own attempts
                out.extend(r.to_json_dict(provider) for r in part.results())
                continue
            base = RecipientResult(phone="", outcome=part.outcome, message_id=part.message_id, reason=part.reason,
                                   request_id=part.request_id, provider=part.provider)._json(provider)
            ids, message_id = part.message_ids, part.message_id
            for phone in part.phones:
                one = {**base, "phone": phone, "message_id": ids.get(phone, message_id)} if ids else \
                    {**base, "phone": phone}
                out.append({**one, "attempts": [one]})  # one provider, one attempt
        return out


# SendResult.outcomes reads as a tuple whatever the slot holds (as RequestOutcome.phones does): a
# bulk send stores its KeptOutcomes there, made into the tuple of outcomes on first read and kept.
_get_outcomes, _set_outcomes = SendResult.__dict__["outcomes"].__get__, SendResult.__dict__["outcomes"].__set__


def _read_outcomes(self: SendResult) -> tuple[OutcomePart, ...]:
    parts = _get_outcomes(self)
    if type(parts) is not tuple:
        parts = tuple(parts)
        _set_outcomes(self, parts)
    return parts


setattr(SendResult, "outcomes", property(_read_outcomes, _set_outcomes, doc="The outcomes as stored, in order."))


def _rejected_json(r: RecipientResult) -> dict[str, Any]:
    row: dict[str, Any] = {"phone": r.phone, "reason": str(r.reason), "code": r.reason.code if r.reason else None}
    if r.reason is not None and r.reason.retry_at is not None:
        row["retry_at"] = _dt.datetime.fromtimestamp(round(r.reason.retry_at), CHINA_TZ).isoformat()
    return row


def builder(cls: type[_T], *, in_shape: bool = False, unset: tuple[str, ...] = ()) -> Callable[..., _T]:
    """A function making a ``cls`` from every field's value in field order, equal to ``cls(**fields)``
    and about 40% cheaper: ``builder(DeliveryReport)(provider, message_id, phone, status,
    raw_status, description, reported_at, biz_id, raw)``, for values a push makes by the hundred.
    attrs' ``__init__`` of a frozen class sets each field with ``object.__setattr__``, which finds
    the field through the class every time; the builder calls each slot's own setter. Only for a
    slotted attrs class whose ``__init__`` does nothing else (no validator, converter or
    ``__attrs_post_init__``); TypeError for any other. ``in_shape``: converters allowed, and not
    called: for the core's own values already in the shape they give (a request's headers as a
    tuple of pairs). ``unset``: slots that are no field and that ``__init__`` leaves unset too (a
    ``functools.cached_property``'s)."""
    fields = attrs.fields(cls)  # type: ignore[arg-type]  # TypeError for a class that is not attrs'
    names = [f.name for f in fields]
    if (set(getattr(cls, "__slots__", ())) - {"__weakref__", *unset} != set(names)
            or any(f.validator is not None or (f.converter is not None and not in_shape) for f in fields)
            or hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__")):
        raise TypeError(f"{cls.__name__} does more in its __init__ than set its fields")
    namespace: dict[str, Any] = {"cls": cls, "new": object.__new__}
    namespace.update((f"set_{name}", cls.__dict__[name].__set__) for name in names)
    # one line per field, as attrs writes __init__: a loop over the setters costs half the gain
    source = (f"def build({', '.join(names)}):\n    self = new(cls)\n"
              + "".join(f"    set_{name}(self, {name})\n" for name in names) + "    return self\n")
    exec(compile(source, f"<smsgate builder for {cls.__qualname__}>", "exec"), namespace)  # noqa: S102
    built: Callable[..., _T] = namespace["build"]
    return built


#: RequestOutcome(phones, outcome, message_id, message_ids, reason, request_id, provider, earlier)
_copy_outcome = builder(RequestOutcome)


class _NoIds(dict):  # type: ignore[type-arg]
    """An empty ``message_ids`` that refuses to be filled: one, shared by the kept outcomes of a bulk
    send's requests whose vendor gave no per-phone ids (an empty dict of each request's own would
    be one more object per request for the collector to count)."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("the message_ids of a RequestOutcome cannot be changed")

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore


_NO_IDS = _NoIds()


class MadeWhenRead(Sequence[_T]):
    """A sequence of ``len(self)`` items, item ``i`` made by ``self._item(i)`` each time it is read
    (a slice: a list of them): the requests cut from a bulk message, and the outcomes it keeps."""

    __slots__ = ()

    def _item(self, index: int) -> _T:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _T: ...

    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...

    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        count = len(self)
        if isinstance(index, slice):
            return list(map(self._item, range(*index.indices(count))))
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("request index out of range")
        return self._item(index)

    def __iter__(self) -> Iterator[_T]:
        return map(self._item, range(len(self)))


class KeptOutcomes(MadeWhenRead[RequestOutcome]):
    """A bulk send's outcomes, one per request, kept as columns and made when read.

    Request ``i`` spoke for ``to[i * size:(i + 1) * size]``, and its vendor gave one outcome for all
    of those phones. :meth:`keep` stores that outcome's fields, each in a list of its own; reading
    item ``i`` makes the :class:`RequestOutcome` again, equal to the one kept, that holds its phones
    as a range of ``to`` in its ``phones`` slot and ``to`` in a slot of its own: its ``phones`` read
    as the same tuple, cut when read. A tuple of each request's phones kept would be a second copy
    of the message's (8 MB at a million phones, fresh pages for the process to fault in) and a
    container whose every phone the cyclic collector visits once more.

    Why columns and not the outcomes: every object the cyclic collector counts that stays alive
    until the send ends brings the collector's next run nearer. A thousand requests passed its
    threshold (700) during the send, and a run then walked whatever the caller had made just
    before, such as its list of a million phones, once as young and again a generation older
    (35-65 ms on a send of 0.5 s). The columns hold strings, enum members and the shared empty
    ``message_ids`` (``None`` for no reason and ``()`` for no earlier attempts are shared too): no
    object per request that the collector counts, so a send of a million phones leaves it no more
    to count than one of a hundred. A :class:`SendResult` keeps this sequence as it is until its
    ``outcomes`` are read (``ok``, ``accepted`` and ``unknown`` read it without making them all).
    """

    __slots__ = ("to", "size", "_outcome", "_message_id", "_message_ids", "_reason", "_request_id", "_provider",
                 "_earlier")

    def __init__(self, to: tuple[str, ...], size: int):
        count = -(-len(to) // size)
        self.to, self.size = to, size
        self._outcome: list[Outcome | None] = [None] * count  # None: request not answered yet
        self._message_id: list[str | None] = [None] * count
        self._message_ids: list[Mapping[str, str]] = [_NO_IDS] * count
        self._reason: list[Reason | None] = [None] * count
        self._request_id: list[str | None] = [None] * count
        self._provider: list[str | None] = [None] * count
        self._earlier: list[tuple[RecipientResult | RequestOutcome, ...]] = [()] * count

    def keep(self, index: int, part: RequestOutcome) -> None:
        """Keep ``part``, request ``index``'s one outcome for all of its phones."""
        self._outcome[index] = part.outcome
        self._message_id[index] = part.message_id
        self._message_ids[index] = part.message_ids or _NO_IDS  # per-phone ids are kept as they came
        self._reason[index] = part.reason
        self._request_id[index] = part.request_id
        self._provider[index] = part.provider
        self._earlier[index] = part.earlier

    def complete(self) -> bool:
        """Whether every request's outcome was kept."""
        return None not in self._outcome

    def __len__(self) -> int:
        return len(self._outcome)

    def _item(self, index: int) -> RequestOutcome:
        outcome = self._outcome[index]
        if outcome is None:
            raise LookupError(f"request {index} has no outcome kept")
        start = index * self.size
        part = _copy_outcome(range(start, min(start + self.size, len(self.to))), outcome, self._message_id[index],
                             self._message_ids[index], self._reason[index], self._request_id[index],
                             self._provider[index], self._earlier[index])
        _set_of(part, self.to)
        return part

    def every(self, outcome: Outcome) -> bool:
        """Whether every request's outcome is ``outcome``."""
        return self._outcome.count(outcome) == len(self._outcome)

    def phones_with(self, outcome: Outcome) -> list[str]:
        """The phones whose outcome is ``outcome``, in order, without making the outcomes."""
        to, size = self.to, self.size
        out: list[str] = []
        for i, found in enumerate(self._outcome):
            if found is outcome:
                out.extend(to[i * size:(i + 1) * size])
        return out


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if type(value) is tuple and (not value or type(value[0]) is tuple):
        return value  # already in shape (the transport's answers, evolved requests)
    if isinstance(value, Mapping):
        value = value.items()
    # (from a list, not a generator: a tuple made from a generator is allocated at a guessed size
    # and shrunk, then freed to the free list of another size, so that until those lists fill up
    # each one counts towards the cyclic collector's next run as if it had stayed alive)
    return tuple([(str(k), str(v)) for k, v in value])


_new_object, _set_field = object.__new__, object.__setattr__


def _find_header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


@attrs.frozen(kw_only=True)
class HttpRequest:
    """An HTTP request a provider built. ``url`` is absolute; ``body`` is bytes."""

    method: str = "POST"
    url: str
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_headers)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return _find_header(self.headers, name)

    def with_headers(self, extra: Mapping[str, str]) -> "HttpRequest":
        """This request with ``extra`` headers, replacing any of the same name (in any case)."""
        # every signed request passes here: one loop over the new headers (str() only for what is
        # not a str already) gathering their names too, where two comprehensions were two more
        # function calls; the old headers read only to find a name given again
        added: list[tuple[str, str]] = []
        names: set[str] = set()
        for k, v in extra.items():
            if type(k) is not str:
                k = str(k)
            added.append((k, v if type(v) is str else str(v)))
            names.add(k.lower())
        headers = self.headers
        if headers:
            for name, _ in headers:
                if name.lower() in names:  # a name given again: the new value replaces the old
                    headers = tuple([h for h in headers if h[0].lower() not in names])
                    break
        if type(self) is not HttpRequest:
            return attrs.evolve(self, headers=headers + tuple(added))
        # the usual class, its fields set as its __init__ would (no validators; the headers are in
        # shape), without keyword parsing and the converter: every signed request is one of these
        return _request_in_shape(self.method, self.url, headers + tuple(added), self.body)

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).path


@attrs.frozen(kw_only=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_headers)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return _find_header(self.headers, name)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError (never RecursionError) when it is not JSON."""
        return load_json(self.body)

    @classmethod
    def _received(cls, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> "HttpResponse":
        """``HttpResponse(status=..., headers=..., body=...)`` for headers already in shape (the
        transport's, every answer): its fields set directly, without the converter and the keyword
        call through the class."""
        if cls is HttpResponse:
            return _response_in_shape(status, headers, body)
        response = _new_object(cls)
        _set_field(response, "status", status)
        _set_field(response, "headers", headers)
        _set_field(response, "body", body)
        return response

    @classmethod
    def of_json(cls, value: Any, status: int = 200) -> "HttpResponse":
        from .wire import json_text

        body = json_text(value).encode("utf-8")
        return cls(status=status, headers={"Content-Type": "application/json;charset=UTF-8"}, body=body)


#: HttpRequest(method, url, headers, body) and HttpResponse(status, headers, body) for headers
#: already a tuple of pairs: each slot's own setter, no converter (see builder)
_request_in_shape = builder(HttpRequest, in_shape=True)
#: SendResult(provider, outcomes, segments, key, replayed) from a tuple of parts (every send ends
#: here): each slot's own setter; ``recipients`` is made on first read, as with __init__
_build_result = builder(SendResult, unset=("recipients",))
_response_in_shape = builder(HttpResponse, in_shape=True)


@attrs.frozen(kw_only=True)
class SendReply:
    """What ``parse_response`` returns for a send request that the vendor accepted (in whole or part).

    Recipients listed in ``rejected`` are rejected with their reason (or unknown, when the reason's
    ``not_sent`` is False: a per-number failure that may still have reached a carrier); every other
    recipient of the request is accepted with ``message_ids[phone]`` if given, else ``message_id``.
    """

    message_id: str | None = None
    request_id: str | None = None
    message_ids: dict[str, str] = attrs.field(factory=dict)
    rejected: dict[str, Reason] = attrs.field(factory=dict)


def make_converter() -> cattrs.Converter:
    """A cattrs converter for vendor JSON: datetimes as ISO text, enums by value."""
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_unstructure_hook(_dt.datetime, lambda d: d.isoformat())
    converter.register_structure_hook(_dt.datetime, lambda v, _: _dt.datetime.fromisoformat(v))
    converter.register_unstructure_hook(bytes, lambda b: b.decode("utf-8", "replace"))
    # a SendResult in its public shape (one entry per recipient), however it stores its outcomes
    converter.register_unstructure_hook(SendResult, lambda r: {
        "provider": r.provider, "recipients": converter.unstructure(r.recipients, tuple[RecipientResult, ...]),
        "segments": r.segments, "key": r.key, "replayed": r.replayed})
    converter.register_structure_hook(SendResult, lambda d, _: SendResult(
        provider=d["provider"], recipients=converter.structure(d.get("recipients", ()), tuple[RecipientResult, ...]),
        segments=d.get("segments"), key=d.get("key"), replayed=bool(d.get("replayed", False))))
    return converter


_converter: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The shared cattrs converter (built on first use, so importing smsgate stays cheap)."""
    global _converter
    if _converter is None:
        _converter = make_converter()
    return _converter


def to_jsonable(value: Any) -> Any:
    """Unstructure any smsgate value (or list of them) into JSON-ready data."""
    return converter().unstructure(value)
