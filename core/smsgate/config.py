"""Configuration: TOML files, environment overrides, and each provider's attrs Config class.

File layout::

    [providers.juse]            # table name = provider name ...
    app_id = "adrm"
    app_secret = "..."

    [providers.juse-test]       # ... or any name, with `provider` naming the plugin
    provider = "juse"
    base_url = "https://msgtest.gooeto.com/api"

Every value can be overridden by ``SMSGATE_<NAME>_<FIELD>`` (name upper-cased, ``-`` -> ``_``),
e.g. ``SMSGATE_JUSE_APP_SECRET``. Such a variable may also supply a key the file leaves out.
"""

from __future__ import annotations

import os
import re
import sys
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import ConfigError

SECRET = "smsgate_secret"


def secret(**kwargs: Any) -> Any:
    """An attrs field for a secret: kept out of repr, logs and error messages."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata[SECRET] = True
    return attrs.field(repr=False, metadata=metadata, **kwargs)


def is_secret(field: attrs.Attribute[Any]) -> bool:
    return bool(field.metadata.get(SECRET))


class InvalidValue(ValueError):
    """Raised by a Config class's own checks: names the field and says what is wrong, never quoting
    the value (it may be a secret). ``structure_config`` turns it into a ConfigError."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


#: base_url schemes: the web, and the in-process loopback vendor (``memory://``)
URL_SCHEMES = ("http", "https", "memory")
#: connect attempts are retried at most this often (each pause at most 2 s, within send_timeout)
MAX_CONNECT_RETRIES = 10


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """Keys every provider has. A plugin's Config class subclasses this and adds its own.

    A subclass gives ``base_url`` a default by redeclaring it (``base_url: str = "https://..."``).
    """

    base_url: str
    verify_tls: bool = True  #: False switches certificate checks off, with a logged warning
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    connect_retries: int = 2  #: extra attempts when the connection could not be made at all
    max_concurrency: int = 4  #: requests of one send in flight at once
    #: send requests allowed, shared by every process on the limits store ("300/second"); None:
    #: the plugin's documented rate (``Capabilities.rate``); "none": no limit
    rate: str | None = None
    #: the most one send may take; requests still open then are ``unknown``, not started ones rejected
    send_timeout: float = 60.0

    def __attrs_post_init__(self) -> None:
        import math
        from urllib.parse import urlsplit

        parts = urlsplit(str(self.base_url))
        if not parts.scheme or not parts.netloc:
            raise InvalidValue("base_url", "must be an absolute URL such as https://host:port/path")
        if parts.scheme not in URL_SCHEMES:
            # anything else would fail before sending, yet be reported as "may have been sent"
            raise InvalidValue("base_url", f"must start with http:// or https://, not {parts.scheme}://")
        if parts.scheme in ("http", "https"):
            try:
                parts.port  # noqa: B018 - raises on a port that is not a number
            except ValueError:
                raise InvalidValue("base_url", "has a port that is not a number") from None
        for name in ("connect_timeout", "read_timeout", "send_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidValue(name, "must be a finite number of seconds, more than 0")
        if not 0 <= self.connect_retries <= MAX_CONNECT_RETRIES:
            raise InvalidValue("connect_retries", f"must be between 0 and {MAX_CONNECT_RETRIES}")
        if self.max_concurrency < 1:
            raise InvalidValue("max_concurrency", "must be 1 or more")
        if self.rate is not None and self.rate != "none":
            from .sending.limits.rates import parse_rate

            try:
                parse_rate(self.rate)
            except ValueError:
                raise InvalidValue("rate", 'must be a rate such as "300/second" or "10/15 seconds", or "none"') from None


def config_fields(cls: type) -> dict[str, attrs.Attribute[Any]]:
    return {f.name: f for f in attrs.fields(cls)}


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               tuple: "a list", dict: "a table"}


def _type_name(tp: Any) -> str:
    """A type in words a config file's author reads (no Python syntax)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        words = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(words)
    word = _TYPE_WORDS.get(origin or tp)
    if word:
        return word
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_VALUE_WORDS = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                "list": "a list", "dict": "a table", "datetime": "a date-time", "date": "a date", "time": "a time"}


def _resolved_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - unresolvable annotations: fall back to raw ones
        return {f.name: f.type for f in attrs.fields(cls)}


def _from_env(text: str, tp: Any) -> Any:
    """Environment values are text; turn them into the field's type (or fail)."""
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        if text == "":
            return None
        tp = args[0]
    if tp is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError("not a boolean")
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if typing.get_origin(tp) in (list, tuple) or tp in (list, tuple):
        # a list from the environment is comma-separated: SMSGATE_X_ALLOW=1.2.3.4,5.6.7.0/24
        item_args = typing.get_args(tp)
        item = item_args[0] if item_args else str
        return [_from_env(part.strip(), item) for part in text.split(",") if part.strip()]
    return text


def _check_type(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_check_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is Any:
        return True
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, Mapping)
    return True


def env_prefix(name: str) -> str:
    return "SMSGATE_" + name.upper().replace("-", "_").replace(".", "_") + "_"


def did_you_mean(word: str, known: Any) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``known``, else nothing."""
    import difflib

    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choices(field: attrs.Attribute[Any], tp: Any) -> list[str] | None:
    """The allowed values of a choice field: an ``attrs.validators.in_`` or an Enum type."""
    import enum

    options = getattr(field.validator, "options", None)
    if options is not None:
        return [str(o) for o in options]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [str(m.value) for m in tp]
    return None


def structure_config(name: str, cls: type, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                     *, section: str | None = None) -> Any:
    """Build ``cls`` from ``raw`` plus ``SMSGATE_<NAME>_<FIELD>`` overrides.

    Raises :class:`ConfigError` naming the provider and field for every unknown key, missing key,
    wrong type or refused value at once. Values never appear in the message (they may be
    secrets), except the allowed values of a choice field. ``section`` (e.g. ``[receiver]``)
    names a table that is not a provider's; it takes no environment overrides.
    """
    environ = {} if section else (os.environ if environ is None else environ)
    where = section or f"provider {name!r}"
    fields = config_fields(cls)
    types = _resolved_types(cls)
    data = {k: v for k, v in raw.items() if section or k != "provider"}
    problems: list[ConfigError] = []

    def problem(field: str, text: str) -> None:
        if section:  # "[receiver] spool must be ...", "[receiver] unknown key ..."
            message = f"{section} {text.replace(f'field {field!r}', field, 1)}"
        else:
            message = f"{where}: {text}"
        problems.append(ConfigError(message, provider=None if section else name, field=field))

    for key in sorted(set(data) - set(fields)):
        problem(key, f"unknown key {key!r}{did_you_mean(key, fields)} (known keys: {', '.join(sorted(fields))})")
        del data[key]
    prefix = env_prefix(name)
    for fname in fields if not section else ():
        var = prefix + fname.upper()
        if var in environ:
            try:
                data[fname] = _from_env(environ[var], types.get(fname, str))
            except ValueError:  # the value itself is never echoed: it may be a secret
                problem(fname, f"field {fname!r} from {var} is not a valid {_type_name(types.get(fname))}")
    for fname, field in fields.items():
        if field.default is attrs.NOTHING and fname not in data:
            hint = f"set it in {section}" if section else f"set it in [providers.{name}] or {prefix + fname.upper()}"
            problem(fname, f"missing key {fname!r} ({hint})")
    for fname, value in list(data.items()):
        tp = types.get(fname, Any)
        if not _check_type(value, tp):
            given = type(value).__name__
            problem(fname, f"field {fname!r} must be {_type_name(tp)}, not {_VALUE_WORDS.get(given, given)}")
            del data[fname]
    for fname, text in _refused_by_field_checks(fields, types, data):
        problem(fname, text)
    if problems:
        raise ConfigError.combine(problems)
    built = _plain_build(cls, fields, types, data)
    if built is not None:
        return built
    from .models import converter

    try:
        return converter().structure(data, cls)
    except Exception as exc:  # a check across fields in the plugin's class refused a value
        own = _own_check(exc)
        if own is not None:
            raise ConfigError(f"{where}: field {own.field!r} {own.problem}", provider=name,
                              field=own.field) from None
        failed = _failed_field(exc, fields)
        raise ConfigError(
            f"{where}: invalid value for field {failed!r}" if failed
            else f"{where}: invalid configuration value ({type(exc).__name__})", provider=name, field=failed
        ) from None


_PLAIN = (str, int, bool)


def _plain_build(cls: type, fields: Mapping[str, attrs.Attribute[Any]], types: Mapping[str, Any],
                 data: Mapping[str, Any]) -> Any:
    """``cls(**data)`` when every value is text, a number or a boolean for a field of that type (what
    cattrs would build, each value checked above): most configs, built without importing cattrs.
    None when a value needs structuring, or building refuses one (cattrs then says which)."""
    values: dict[str, Any] = {}
    for fname, value in data.items():
        field, tp = fields[fname], types.get(fname, Any)
        if not field.init or getattr(field, "alias", fname) != fname:
            return None
        if value is None and _check_type(None, tp):
            values[fname] = None
            continue
        args = typing.get_args(tp) if typing.get_origin(tp) is not None else ()
        if args and type(None) in args and len(args) == 2:  # Optional[X]
            tp = args[0] if args[1] is type(None) else args[1]
        if tp is float and type(value) in (int, float):
            values[fname] = float(value)
        elif tp in _PLAIN and type(value) is tp:
            values[fname] = value
        else:
            return None
    try:
        return cls(**values)
    except Exception:
        return None


def _refused_by_field_checks(fields: Mapping[str, attrs.Attribute[Any]], types: Mapping[str, Any],
                             data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Run each field's own converter and validator on its value alone: every field refused, with
    what its check says (unless that would show a secret value) and the allowed values of a
    choice field."""
    refused = []
    for fname, field in fields.items():
        if fname not in data or (field.validator is None and field.converter is None):
            continue
        value = data[fname]
        try:
            if field.converter is not None:
                value = field.converter(value)  # type: ignore[operator]
            if field.validator is not None:
                field.validator(None, field, value)
        except AttributeError:  # a check that reads other fields: left to building the whole class
            continue
        except Exception as exc:
            choices = _choices(field, types.get(fname))
            first = exc.args[0] if exc.args else ""
            said = first.strip() if isinstance(exc, (ValueError, TypeError)) and isinstance(first, str) else ""
            shown = str(data[fname])
            if shown and re.search(r"(?<![\w-])" + re.escape(shown) + r"(?![\w-])", said):
                said = ""  # never the value: it may be a secret
            text = f"field {fname!r} is not valid"
            if choices:
                text += f": allowed values are {', '.join(choices)}"
            elif said and fname in said:  # the check's own words already name the field
                text = said
            elif said:
                text += f": {said}"
            refused.append((fname, text))
    return refused


def _own_check(exc: BaseException) -> InvalidValue | None:
    pending = [exc]
    while pending:
        err = pending.pop()
        if isinstance(err, InvalidValue):
            return err
        pending.extend(getattr(err, "exceptions", ()) or ())
        if err.__cause__ is not None:
            pending.append(err.__cause__)
    return None


def _failed_field(exc: BaseException, fields: Mapping[str, Any]) -> str | None:
    """Name the field an attrs validator (wrapped by cattrs) refused, without its value."""
    pending = [exc]
    while pending:
        err = pending.pop()
        pending.extend(getattr(err, "exceptions", ()) or ())
        for arg in getattr(err, "args", ()):
            if isinstance(arg, attrs.Attribute) and arg.name in fields:
                return arg.name
        for note in getattr(err, "__notes__", ()) or ():
            name = getattr(note, "name", None)
            if name in fields:
                return name
        if err.__cause__ is not None:
            pending.append(err.__cause__)
        if err.__context__ is not None:
            pending.append(err.__context__)
    return None


@attrs.frozen
class ProviderSettings:
    """One ``[providers.<name>]`` table: the name used to send, the plugin, the raw values."""

    name: str
    plugin: str
    values: dict[str, Any] = attrs.field(repr=False)


SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
#: how the spool takes an inbound SMS identical to a stored one ([receiver] inbound_dedup)
INBOUND_DEDUP = ("retries", "none")
#: where `smsgate serve` runs the handlers ([receiver] handlers): a child process (`smsgate work`),
#: threads of the serving process, or nowhere (a separate `smsgate work` on the same spool)
HANDLERS = ("process", "threads", "elsewhere")


def _positive_threads(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and value < 1:
        raise ValueError("must be at least 1")


def _synchronous(value: Any) -> str:
    return str(value).upper()


@attrs.frozen(kw_only=True)
class ReceiverSettings:
    """The ``[receiver]`` table (``smsgate serve`` / ``poll`` and :class:`smsgate.Receiver`)."""

    spool: str | None = None  #: the spool file (default ./smsgate-spool.sqlite3)
    #: SQLite's synchronous setting for the spool: FULL survives a power cut, NORMAL a crash
    synchronous: str = attrs.field(default="FULL", converter=_synchronous,
                                   validator=attrs.validators.in_(SYNCHRONOUS))
    #: an inbound SMS identical to a stored one (phone, time, service code, text, and its place
    #: among identical ones in its push): "retries" stores it once, "none" always anew
    inbound_dedup: str = attrs.field(default="retries", validator=attrs.validators.in_(INBOUND_DEDUP))
    events_jsonl: str | None = None  #: append every event to this file as one JSON line
    replay_store: str | None = None  #: "memory" or "sqlite:PATH"
    # bounds of a push and of what `smsgate serve` lets a client hold (None: the receiver's default;
    # their values are checked by smsgate.Receiver, see docs/receiving.md "Security")
    max_body: int | None = None  #: bytes of one push (4 MiB)
    max_events: int | None = None  #: events of one push (2000)
    connection_limit: int | None = None  #: open connections at once (1000)
    idle_timeout: float | None = None  #: seconds an idle connection is kept (10)
    #: where `smsgate serve` runs the handlers (--handler-process, --no-handler-process and
    #: --handlers-elsewhere say it on the command line)
    handlers: str = attrs.field(default="process", validator=attrs.validators.in_(HANDLERS))
    #: `smsgate serve`'s request threads (None: 6; --threads on the command line)
    threads: int | None = attrs.field(default=None, validator=_positive_threads)


@attrs.frozen(kw_only=True)
class LedgerSettings:
    """The ``[ledger]`` table: the send ledger (docs/ledger.md)."""

    url: str  #: sqlite:///relative/path, sqlite:////absolute/path or postgresql://user@host/db
    #: SQLite's PRAGMA synchronous (NORMAL default, FULL) / PostgreSQL's synchronous_commit
    synchronous: str | None = None
    schema: str | None = None  #: PostgreSQL: the schema the tables live in


#: Top-level keys of a config file. A feature with its own table adds its name here (and checks
#: the table's keys the way ``[receiver]`` is checked below); the integrations' tables
#: (``smsgate.integrations.TABLES``: ``[metrics]``, ``[tracing]``) are known too.
TOP_LEVEL_KEYS = {
    "providers": "one table per provider: [providers.NAME]",
    "default_provider": "the provider used when none is named",
    "receiver": "settings of smsgate serve / poll",
    "ledger": "the send ledger: [ledger] url = ...",
    "limits": "per-phone quotas, request rates, query budgets and their store (docs/limits.md)",
    "templates": "logical templates: [templates.NAME] (per_phone quotas, docs/limits.md; one "
                 "[templates.NAME.PROVIDER] table per provider, docs/routing.md)",
    "routes": "routes over several providers: [routes.NAME] (docs/routing.md)",
    "default_route": "the route used when neither a provider nor a route is named",
}


@attrs.frozen
class Settings:
    """A configuration, read but not yet checked against the installed plugins (the Gateway does
    that). ``problems`` lists what is already known to be wrong with the file's own structure."""

    providers: dict[str, ProviderSettings] = attrs.field(factory=dict)
    source: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)
    receiver: ReceiverSettings = attrs.field(factory=ReceiverSettings)
    ledger: LedgerSettings | None = None  #: None: no [ledger] table, sends are not recorded
    problems: tuple[ConfigError, ...] = attrs.field(default=(), repr=False)

    @property
    def default_provider(self) -> str | None:
        value = self.extra.get("default_provider")
        return value if isinstance(value, str) else None


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None


def settings_from_mapping(data: Mapping[str, Any], source: str | None = None) -> Settings:
    """Read a config mapping; what is wrong with its structure is kept in ``Settings.problems``
    (all of it, so the Gateway can report everything at once)."""
    from .integrations import TABLES

    where = source or "config"
    problems: list[ConfigError] = []
    known = [*TOP_LEVEL_KEYS, *TABLES]  # [metrics], [tracing]: the integrations check their own keys
    for key in data:
        if key not in known:
            problems.append(ConfigError(f"{where}: unknown top-level key {key!r}{did_you_mean(key, known)} "
                                        f"(known: {', '.join(known)})", field=key))
    providers_raw = data.get("providers", {})
    if not isinstance(providers_raw, Mapping):
        problems.append(ConfigError(f"{where}: 'providers' must be a table ([providers.NAME])", field="providers"))
        providers_raw = {}
    providers = {}
    for name, values in providers_raw.items():
        if not isinstance(values, Mapping):
            problems.append(ConfigError(f"{where}: [providers.{name}] must be a table", provider=name))
            continue
        plugin = values.get("provider", name)
        if not isinstance(plugin, str):
            problems.append(ConfigError(f"provider {name!r}: field 'provider' must be a string", provider=name,
                                        field="provider"))
            continue
        providers[name] = ProviderSettings(name=name, plugin=plugin, values=dict(values))
    receiver = ReceiverSettings()
    receiver_raw = data.get("receiver", {})
    if not isinstance(receiver_raw, Mapping):
        problems.append(ConfigError(f"{where}: [receiver] must be a table", field="receiver"))
    else:
        try:
            receiver = structure_config("receiver", ReceiverSettings, receiver_raw, section="[receiver]")
        except ConfigError as exc:
            problems.append(exc)
    ledger = None
    if "ledger" in data:
        if not isinstance(data["ledger"], Mapping):
            problems.append(ConfigError(f"{where}: [ledger] must be a table", field="ledger"))
        else:
            try:
                ledger = structure_config("ledger", LedgerSettings, data["ledger"], section="[ledger]")
            except ConfigError as exc:
                problems.append(exc)
    extra = {k: v for k, v in data.items() if k != "providers"}
    default = extra.get("default_provider")
    if default is not None and not isinstance(default, str):
        problems.append(ConfigError(f"{where}: default_provider must be the name of a [providers.NAME] table "
                                    f"(a string), not {type(default).__name__}", field="default_provider"))
    return Settings(providers=providers, source=source, extra=extra, receiver=receiver, ledger=ledger,
                    problems=tuple(p for e in problems for p in e.problems))


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load ``path`` (or ``$SMSGATE_CONFIG``). With neither, an empty configuration."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("SMSGATE_CONFIG")
    if not path:
        return Settings()
    return settings_from_mapping(_load_toml(path), source=path)
