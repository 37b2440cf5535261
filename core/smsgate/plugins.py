"""The plugin manager: entry-point discovery, default plugins, provider scoping."""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigError

ENTRY_POINT_GROUP = "smsgate"
#: built-in plugins: the loopback provider, and the core's own implementations of the hooks that
#: exist to be wrapped (transmit, vendor_request, send_message)
DEFAULT_PLUGINS = ("smsgate.default_plugins.loopback", "smsgate.sending.transport", "smsgate.sending.pipeline",
                   "smsgate.sending.flow")
#: hooks a provider implements for its own work; wrappers see them for every provider
PROVIDER_HOOKS = (
    "validate_message",
    "request_limit",
    "build_request",
    "sign",
    "transmit",
    "parse_response",
    "verify_callback",
    "parse_callback",
    "callback_refusal",
    "send_message",
    "vendor_request",
)


@attrs.frozen
class BrokenPlugin:
    """A plugin that could not be loaded: reported by name, the others keep working."""

    name: str
    distribution: str | None
    error: str


@attrs.frozen
class ProviderEntry:
    spec: Any  # smsgate.Provider
    plugin: Any = attrs.field(repr=False)
    distribution: str | None = None
    version: str | None = None


def _dist_of(entry_point: Any) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


class PluginManager:
    """Wraps a :class:`pluggy.PluginManager` with smsgate's rules.

    ``load_entrypoints`` reads the ``smsgate`` entry point group (limited by ``SMSGATE_PLUGINS``,
    a comma list of entry point names; the built-in plugins always load). A plugin that fails to
    import or to declare itself is recorded in ``broken`` and skipped.
    """

    def __init__(self, *, load_entrypoints: bool = True, environ: dict[str, str] | None = None):
        self.pm = pluggy.PluginManager("smsgate")
        self.pm.add_hookspecs(hookspecs)
        # pluggy's own call machinery, before any hook-call monitoring replaces it
        self._plain_hookexec = getattr(self.pm, "_inner_hookexec", None)
        self.providers: dict[str, ProviderEntry] = {}
        self.broken: list[BrokenPlugin] = []
        self._callers: dict[str, Any] = {}
        self._lock = threading.Lock()
        for modname in DEFAULT_PLUGINS:
            self.register(importlib.import_module(modname), name=modname, distribution="smsgate")
        if load_entrypoints:
            self.load_entrypoints(environ=os.environ if environ is None else environ)

    # -- loading ---------------------------------------------------------------------------
    def load_entrypoints(self, environ: Mapping[str, str]) -> None:
        from importlib.metadata import entry_points

        wanted = environ.get("SMSGATE_PLUGINS")
        allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            dist, version = _dist_of(ep)
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                continue
            try:
                self.register(plugin, name=ep.name, distribution=dist, version=version)
            except Exception as exc:
                self.broken.append(BrokenPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}"))

    def register(self, plugin: Any, name: str | None = None, distribution: str | None = None,
                 version: str | None = None) -> None:
        """Register a plugin object (module or instance). Providers are recognised by their
        ``smsgate_provider`` hook; anything else is a wrapper for every provider."""
        declare = getattr(plugin, "smsgate_provider", None)
        spec = None
        if declare is not None and callable(declare):
            spec = declare()
            if spec is None:
                raise ConfigError(f"plugin {name or plugin!r}: smsgate_provider returned nothing")
            if spec.name in self.providers:
                raise ConfigError(f"provider {spec.name!r} is declared twice")
        self.pm.register(plugin, name=name)
        if spec is not None:
            if version is None and distribution:
                try:
                    from importlib.metadata import version as _v

                    version = _v(distribution)
                except Exception:
                    version = None
            self.providers[spec.name] = ProviderEntry(spec, plugin, distribution, version)
        with self._lock:
            self._callers.clear()

    def unregister(self, plugin: Any) -> None:
        self.pm.unregister(plugin)
        self.providers = {k: v for k, v in self.providers.items() if v.plugin is not plugin}
        with self._lock:
            self._callers.clear()

    # -- scoping ---------------------------------------------------------------------------
    def provider(self, name: str) -> ProviderEntry:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            broken = [b.name for b in self.broken if b.name == name]
            hint = f" (its plugin failed to load: {self.broken_error(name)})" if broken else ""
            raise ConfigError(f"unknown provider {name!r}{hint}; installed providers: {known}",
                              provider=name) from None

    def broken_error(self, name: str) -> str | None:
        for b in self.broken:
            if b.name == name:
                return b.error
        return None

    def hooks_for(self, provider: str) -> Any:
        """A namespace of hook callers that run only ``provider``'s own implementations plus
        every non-provider plugin (wrappers, the core transport)."""
        with self._lock:
            caller = self._callers.get(provider)
            if caller is None:
                mine = self.provider(provider).plugin
                others = [e.plugin for e in self.providers.values() if e.plugin is not mine]
                caller = _ScopedHooks(
                    {h: _ScopedHook(self.pm, self.pm.subset_hook_caller(h, remove_plugins=others),
                                    self._plain_hookexec)
                     for h in PROVIDER_HOOKS}
                )
                self._callers[provider] = caller
            return caller

    def implemented_hooks(self, provider: str) -> list[str]:
        plugin = self.provider(provider).plugin
        return [h.name for h in self.pm.get_hookcallers(plugin) or []]

    def names(self) -> Iterable[str]:
        return sorted(self.providers)


class _ScopedHooks:
    def __init__(self, callers: dict[str, Any]):
        self.__dict__.update(callers)


class _ScopedHook:
    """A provider-scoped hook caller (pluggy's ``subset_hook_caller``) with a direct path.

    Every send runs several hooks per request; pluggy's general machinery (argument checks,
    multicall, wrapper bookkeeping) is most of the pipeline's own cost. When no wrapper of either
    style is registered for this hook and no hook-call monitoring is on, calling the
    implementations in pluggy's order and returning the first non-None result is exactly what
    pluggy does for a ``firstresult`` hook, so that is done directly. Anything else goes through
    pluggy. The implementation list is fixed when the scoped caller is built; the manager rebuilds
    it whenever a plugin is registered or unregistered through :class:`PluginManager`.
    """

    __slots__ = ("_pm", "_caller", "_direct", "_plain", "implemented")

    def __init__(self, pm: pluggy.PluginManager, caller: Any, plain_hookexec: Any):
        self._pm = pm
        self._caller = caller
        self._plain = plain_hookexec
        impls = caller.get_hookimpls()
        self.implemented = bool(impls)  #: any implementation (provider's or wrapper) at all
        direct = None
        if plain_hookexec is not None and not any(i.wrapper or i.hookwrapper for i in impls):
            # pluggy calls implementations last-registered first (tryfirst/trylast already sorted)
            direct = tuple((i.function, tuple(i.argnames)) for i in reversed(impls))
        self._direct = direct

    def __call__(self, **kwargs: Any) -> Any:
        direct = self._direct
        if direct is None or self._pm._inner_hookexec is not self._plain:
            return self._caller(**kwargs)
        for function, argnames in direct:
            result = function(*[kwargs[name] for name in argnames])
            if result is not None:
                return result
        return None

    def get_hookimpls(self) -> list[Any]:
        return list(self._caller.get_hookimpls())
