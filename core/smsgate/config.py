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


def is_secret(field: attrs.Attribute) -> bool:
    return bool(field.metadata.get(SECRET))


class InvalidValue(ValueError):
    """Raised by a Config class's own checks: names the field and says what is wrong, never quoting
    the value (it may be a secret). ``structure_config`` turns it into a ConfigError."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


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

    def __attrs_post_init__(self) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(str(self.base_url))
        if not parts.scheme or not parts.netloc:
            raise InvalidValue("base_url", "must be an absolute URL such as https://host:port/path")
        if parts.scheme in ("http", "https"):
            try:
                parts.port  # noqa: B018 - raises on a port that is not a number
            except ValueError:
                raise InvalidValue("base_url", "has a port that is not a number") from None
        for name in ("connect_timeout", "read_timeout"):
            if not getattr(self, name) > 0:
                raise InvalidValue(name, "must be more than 0 seconds")
        if self.connect_retries < 0:
            raise InvalidValue("connect_retries", "must be 0 or more")
        if self.max_concurrency < 1:
            raise InvalidValue("max_concurrency", "must be 1 or more")


def config_fields(cls: type) -> dict[str, attrs.Attribute]:
    return {f.name: f for f in attrs.fields(cls)}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


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
        args = typing.get_args(tp)
        item = args[0] if args else str
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


def structure_config(name: str, cls: type, raw: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Any:
    """Build ``cls`` from ``raw`` plus ``SMSGATE_<NAME>_<FIELD>`` overrides.

    Raises :class:`ConfigError` naming the provider and field for an unknown key, a missing key
    or a wrong type. Values never appear in the message (they may be secrets).
    """
    environ = os.environ if environ is None else environ
    fields = config_fields(cls)
    types = _resolved_types(cls)
    data = {k: v for k, v in raw.items() if k != "provider"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"provider {name!r}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(fields))})",
            provider=name,
            field=unknown[0],
        )
    prefix = env_prefix(name)
    for fname in fields:
        var = prefix + fname.upper()
        if var in environ:
            try:
                data[fname] = _from_env(environ[var], types.get(fname, str))
            except ValueError:  # the value itself is never echoed: it may be a secret
                raise ConfigError(
                    f"provider {name!r}: field {fname!r} from {var} is not a valid "
                    f"{_type_name(types.get(fname))}",
                    provider=name,
                    field=fname,
                ) from None
    missing = [f for f, a in fields.items() if a.default is attrs.NOTHING and f not in data]
    if missing:
        raise ConfigError(
            f"provider {name!r}: missing key {missing[0]!r} "
            f"(set it in [providers.{name}] or {prefix + missing[0].upper()})",
            provider=name,
            field=missing[0],
        )
    for fname, value in data.items():
        tp = types.get(fname, Any)
        if not _check_type(value, tp):
            raise ConfigError(
                f"provider {name!r}: field {fname!r} must be {_type_name(tp)}, not {type(value).__name__}",
                provider=name,
                field=fname,
            )
    from .models import converter

    try:
        return converter().structure(data, cls)
    except Exception as exc:  # a validator in the plugin's class refused a value
        own = _own_check(exc)
        if own is not None:
            raise ConfigError(f"provider {name!r}: field {own.field!r} {own.problem}", provider=name,
                              field=own.field) from None
        field = _failed_field(exc, fields) or _field_refused_by_validator(fields, data)
        raise ConfigError(
            f"provider {name!r}: invalid value for field {field!r}" if field
            else f"provider {name!r}: invalid configuration value", provider=name, field=field
        ) from None


def _field_refused_by_validator(fields: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    """Run each field's own validator on its value alone, to name the one that refuses it."""
    for fname, field in fields.items():
        if field.validator is None or fname not in data:
            continue
        value = data[fname]
        if field.converter is not None:
            try:
                value = field.converter(value)
            except Exception:
                return fname
        try:
            field.validator(None, field, value)
        except Exception:
            return fname
    return None


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


@attrs.frozen
class Settings:
    providers: dict[str, ProviderSettings] = attrs.field(factory=dict)
    source: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


def _load_toml(path: str) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
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
    providers_raw = data.get("providers", {})
    if not isinstance(providers_raw, Mapping):
        raise ConfigError(f"{source or 'config'}: 'providers' must be a table")
    providers = {}
    for name, values in providers_raw.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source or 'config'}: [providers.{name}] must be a table", provider=name)
        plugin = values.get("provider", name)
        if not isinstance(plugin, str):
            raise ConfigError(f"provider {name!r}: field 'provider' must be str", provider=name, field="provider")
        providers[name] = ProviderSettings(name=name, plugin=plugin, values=dict(values))
    extra = {k: v for k, v in data.items() if k != "providers"}
    return Settings(providers=providers, source=source, extra=extra)


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load ``path`` (or ``$SMSGATE_CONFIG``). With neither, an empty configuration."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("SMSGATE_CONFIG")
    if not path:
        return Settings()
    return settings_from_mapping(_load_toml(path), source=path)
