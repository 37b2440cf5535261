"""The plugin manager: entry-point discovery, provider declarations, per-provider hook scoping.

Discovery is cheap. A provider declared the current way (an entry point naming a
:class:`smsgate.Provider` that says where its ``hooks`` are) is known from that declaration
alone: its hooks module and Config class are imported, and registered with pluggy, the first
time the provider is used (:meth:`PluginManager.provider`, :meth:`~PluginManager.hooks_for`).
pluggy itself and the core's own hook implementations are loaded then too. A plugin whose entry
point names its hooks module (the older form, with a ``smsgate_provider`` hook) is imported and
registered at discovery, as before.

pluggy calls implementations of one kind (tryfirst, plain, trylast) last-registered first, so
every plugin keeps its place: a provider loaded late is registered where discovery found it, as
if it had been registered then (the plugins registered after that place are registered again
behind it).
"""

from __future__ import annotations

import importlib
import operator
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .errors import ConfigError
from .provider import Provider

ENTRY_POINT_GROUP = "smsgate"
#: the built-in providers' declarations, written as a third-party plugin's are
DEFAULT_PROVIDERS = ("smsgate.default_plugins:LOOPBACK",)
#: the core's own implementations of the hooks that exist to be wrapped (transmit, vendor_request,
#: send_message); registered when pluggy is first needed
CORE_PLUGINS = ("smsgate.sending.transport", "smsgate.sending.pipeline", "smsgate.sending.flow")
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
    """An installed provider: its declaration, and once it is loaded, its hooks.

    ``spec`` is the :class:`smsgate.Provider`; ``plugin`` the object holding its hook
    implementations, None until the provider is first used. :meth:`PluginManager.provider`
    returns a loaded entry, whose ``spec.config_class`` is the class itself.
    """

    spec: Any  # smsgate.Provider
    plugin: Any = attrs.field(default=None, repr=False)
    distribution: str | None = None
    version: str | None = None


def import_object(path: str) -> Any:
    """The object an import path names: ``package.module`` or ``package.module:name.attr``."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class _Slot:
    """One plugin's place in registration order: a registered object, a core plugin still to
    import (``path``), or a declared provider (``provider``) whose hooks may not be loaded yet."""

    __slots__ = ("name", "plugin", "path", "provider", "registered")

    def __init__(self, name: str | None, plugin: Any = None, path: str | None = None,
                 provider: str | None = None):
        self.name, self.plugin, self.path, self.provider = name, plugin, path, provider
        self.registered = False


class PluginManager:
    """Wraps a :class:`pluggy.PluginManager` with smsgate's rules.

    ``load_entrypoints`` reads the ``smsgate`` entry point group (limited by ``SMSGATE_PLUGINS``,
    a comma list of entry point names; the built-in plugins always load). A plugin that fails to
    import or to declare itself is recorded in ``broken`` and skipped; so is a declared provider
    whose hooks fail to import when it is first used (:meth:`provider` then raises ConfigError).

    ``providers`` maps each provider's name to its :class:`ProviderEntry`; listing them imports
    nothing of a declared plugin but its declaration.
    """

    def __init__(self, *, load_entrypoints: bool = True, environ: dict[str, str] | None = None):
        self._pluggy: Any = None  # the pluggy.PluginManager, built on first need
        # pluggy's own call machinery, before any hook-call monitoring replaces it
        self._plain_hookexec: Any = None
        self.providers: dict[str, ProviderEntry] = {}
        self.broken: list[BrokenPlugin] = []
        self._slots: list[_Slot] = []
        self._callers: dict[str, Any] = {}
        self._generation = 0  # changes whenever the registered plugins do; scoped callers follow it
        self._lock = threading.RLock()
        for path in DEFAULT_PROVIDERS:
            declaration = import_object(path)
            self.register(declaration, name=declaration.hooks, distribution="smsgate")
        self._slots += [_Slot(path, path=path) for path in CORE_PLUGINS]
        if load_entrypoints:
            self.load_entrypoints(environ=os.environ if environ is None else environ)

    # -- loading ---------------------------------------------------------------------------
    def load_entrypoints(self, environ: Mapping[str, str]) -> None:
        from .entrypoints import entry_points

        wanted = environ.get("SMSGATE_PLUGINS")
        allowed = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
        for ep in entry_points(ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            dist, version = ep.distribution, ep.version
            try:
                plugin = ep.load()
                if not isinstance(plugin, Provider) and getattr(plugin, "smsgate_provider", None) is None:
                    # an entry point still naming the hooks module of a plugin that now declares
                    # itself in its package (installed metadata older than the code)
                    plugin = _package_declaration(plugin) or plugin
                self.register(plugin, name=ep.name, distribution=dist, version=version)
            except Exception as exc:  # a broken plugin must not break the others
                self.broken.append(BrokenPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}"))

    def register(self, plugin: Any, name: str | None = None, distribution: str | None = None,
                 version: str | None = None) -> None:
        """Register a plugin: a :class:`smsgate.Provider` declaration (its hooks are imported on
        first use), or an object (module or instance) with hook implementations. An object with
        a ``smsgate_provider`` hook is a provider; anything else is a wrapper for every provider."""
        if isinstance(plugin, Provider):
            spec, slot = plugin, _Slot(name, path=plugin.hooks, provider=plugin.name)
            if spec.hooks is None:
                raise ConfigError(f"provider {spec.name!r}: its declaration names no hooks module "
                                  "(Provider(hooks='package.module'))", provider=spec.name)
            plugin = None
        else:
            declare = getattr(plugin, "smsgate_provider", None)
            spec = None
            if declare is not None and callable(declare):
                spec = declare()
                if spec is None:
                    raise ConfigError(f"plugin {name or plugin!r}: smsgate_provider returned nothing")
            slot = _Slot(name, plugin=plugin, provider=spec.name if spec is not None else None)
        with self._lock:
            if spec is not None and spec.name in self.providers:
                raise ConfigError(f"provider {spec.name!r} is declared twice")
            self._slots.append(slot)
            if plugin is not None:
                try:
                    self._register_in_order([slot])
                except BaseException:
                    self._slots.remove(slot)
                    raise
            if spec is not None:
                if version is None and distribution:
                    from .entrypoints import version as _version

                    version = _version(distribution)
                self.providers[spec.name] = ProviderEntry(spec, plugin, distribution, version)

    def unregister(self, plugin: Any) -> None:
        """Unregister a plugin object, or a provider's declaration (and its hooks, if loaded)."""
        with self._lock:
            if isinstance(plugin, Provider):
                entry = self.providers.pop(plugin.name, None)
                slots = [s for s in self._slots if entry is not None and s.provider == plugin.name]
            else:
                slots = [s for s in self._slots if s.plugin is plugin]
                self.providers = {k: v for k, v in self.providers.items() if v.plugin is not plugin}
            for slot in slots:
                if slot.registered and self._pluggy is not None and self._pluggy.is_registered(slot.plugin):
                    self._pluggy.unregister(slot.plugin)
                self._slots.remove(slot)
            if not slots and not isinstance(plugin, Provider):
                self._core().unregister(plugin)  # registered on pluggy directly; pluggy says if it was not
            self._changed()

    def is_registered(self, plugin: Any) -> bool:
        """Whether ``plugin`` is registered (without loading any provider's hooks, as ``pm`` does)."""
        return any(s.plugin is plugin and s.registered for s in self._slots) or (
            self._pluggy is not None and self._pluggy.is_registered(plugin))

    def load_all(self) -> None:
        """Load every declared provider's hooks now; one that fails moves to ``broken``."""
        for name in list(self.providers):
            try:
                self.provider(name)
            except ConfigError:
                pass

    @property
    def pm(self) -> Any:
        """The underlying :class:`pluggy.PluginManager`, with every provider's hooks loaded (so
        that calling a hook on it reaches every plugin, as pluggy's own users expect)."""
        self.load_all()
        return self._core()

    def _core(self) -> Any:
        """The pluggy manager, built on first need with the core's own plugins."""
        if self._pluggy is None:
            self._register_in_order([])
        return self._pluggy

    def _register_in_order(self, adding: list[_Slot]) -> None:
        """Register ``adding`` with pluggy at their places: the registered plugins behind the
        first of them are taken off and registered again after them, in their order. The first
        call builds the pluggy manager; the core's plugins are registered with whatever it adds."""
        with self._lock:
            if self._pluggy is None:
                import pluggy

                from . import hookspecs

                pm = pluggy.PluginManager("smsgate")
                pm.add_hookspecs(hookspecs)
                self._plain_hookexec = getattr(pm, "_inner_hookexec", None)
                core = [s for s in self._slots if s.path is not None and s.provider is None]
                for slot in core:
                    slot.plugin = importlib.import_module(slot.path)  # type: ignore[arg-type]
                self._pluggy = pm
                adding = [s for s in self._slots if s in core or s in adding]
            pm = self._pluggy
            if not adding:
                return
            start = min(self._slots.index(s) for s in adding)
            behind = [s for s in self._slots[start:] if s.registered and s not in adding]
            for slot in behind:
                if pm.is_registered(slot.plugin):
                    pm.unregister(slot.plugin)
                else:  # taken off pluggy directly: leave it off
                    slot.registered = False
            failure: BaseException | None = None
            for slot in self._slots[start:]:
                if slot in adding or (slot in behind and slot.registered):
                    try:
                        slot.name = pm.register(slot.plugin, name=slot.name)
                        slot.registered = True
                    except BaseException as exc:
                        if slot not in adding:
                            raise
                        failure = failure or exc
            self._changed()
            if failure is not None:
                raise failure

    def _changed(self) -> None:
        with self._lock:
            self._generation += 1
            self._callers.clear()

    def _load(self, name: str) -> ProviderEntry:
        """Import a declared provider's hooks and Config class and register the hooks."""
        with self._lock:
            entry = self.providers[name]
            if entry.plugin is not None:
                return entry
            slot = next(s for s in self._slots if s.provider == name)
            spec = entry.spec
            try:
                plugin = import_object(spec.hooks)
                config_class = spec.config_class
                if isinstance(config_class, str):
                    config_class = import_object(config_class)
                if not isinstance(config_class, type):
                    raise TypeError(f"config_class {spec.config_class!r} is not a class")
                slot.plugin = plugin
                self._register_in_order([slot])
            except Exception as exc:
                self._slots.remove(slot)
                del self.providers[name]
                error = f"{type(exc).__name__}: {exc}"
                self.broken.append(BrokenPlugin(slot.name or name, entry.distribution, error))
                raise ConfigError(f"provider {name!r}: its plugin failed to load: {error}", provider=name) from None
            loaded = attrs.evolve(entry, spec=attrs.evolve(spec, config_class=config_class), plugin=plugin)
            self.providers[name] = loaded
            return loaded

    # -- scoping ---------------------------------------------------------------------------
    def provider(self, name: str) -> ProviderEntry:
        """The provider's entry, its hooks loaded (imported on first use)."""
        entry = self.providers.get(name)
        if entry is not None and entry.plugin is not None:
            return entry
        if entry is not None:
            return self._load(name)
        known = ", ".join(sorted(self.providers)) or "none"
        error = self.broken_error(name)
        hint = f" (its plugin failed to load: {error})" if error is not None else ""
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
                self.provider(provider)
                self._core()
                caller = _ScopedHooks({h: _ScopedHook(self, provider, h) for h in PROVIDER_HOOKS})
                self._callers[provider] = caller
            return caller

    def _others(self, provider: str) -> list[Any]:
        """The loaded hooks of every provider but ``provider``."""
        entry = self.providers.get(provider)
        mine = entry.plugin if entry is not None else None
        return [e.plugin for e in self.providers.values() if e.plugin is not None and e.plugin is not mine]

    def implemented_hooks(self, provider: str) -> list[str]:
        plugin = self.provider(provider).plugin
        return [h.name for h in self._core().get_hookcallers(plugin) or []]

    def names(self) -> Iterable[str]:
        return sorted(self.providers)


def _package_declaration(plugin: Any) -> Provider | None:
    """The declaration in ``plugin``'s package that names ``plugin`` as its hooks, if any."""
    module = getattr(plugin, "__name__", None)
    if not isinstance(module, str) or "." not in module:
        return None
    package = sys.modules.get(module.rpartition(".")[0])
    found = [v for v in vars(package).values() if isinstance(v, Provider) and v.hooks == module] if package else []
    return found[0] if len(found) == 1 else None


class _ScopedHooks:
    """A provider's hook callers by name (``hooks.sign(ctx=..., ...)``): each a plain function,
    whose :class:`_ScopedHook` is its ``hook`` attribute (``hooks.sign.hook.implemented``)."""

    def __init__(self, callers: dict[str, "_ScopedHook"]):
        self.__dict__.update({name: hook.call for name, hook in callers.items()})


class _ScopedHook:
    """A provider-scoped hook caller (pluggy's ``subset_hook_caller``) with a direct path.

    Every send runs several hooks per request; pluggy's general machinery (argument checks,
    multicall, wrapper bookkeeping) is most of the pipeline's own cost. When no wrapper of either
    style is registered for this hook and no hook-call monitoring is on, calling the
    implementations in pluggy's order and returning the first non-None result is exactly what
    pluggy does for a ``firstresult`` hook, so that is done directly. Anything else goes through
    pluggy. The implementation list is taken when the scoped caller is built and taken again
    whenever the manager's plugins changed since (a provider loaded on first use, a wrapper
    registered), so a caller kept across that never runs another provider's hooks.
    """

    __slots__ = ("_manager", "_provider", "_name", "_generation", "_pm", "_caller", "_direct", "_function",
                 "_arguments", "_plain", "_implemented", "call")
    _function: Any  # the one implementation, or None
    _arguments: Any  # its argument picker, or None

    def __init__(self, manager: PluginManager, provider: str, name: str):
        self._manager, self._provider, self._name = manager, provider, name
        self._build()
        self.call = self._make_call()

    def _build(self) -> None:
        manager = self._manager
        with manager._lock:
            generation = manager._generation
            pm, plain = manager._core(), manager._plain_hookexec
            caller = pm.subset_hook_caller(self._name, remove_plugins=manager._others(self._provider))
            impls = caller.get_hookimpls()
            direct = None
            if plain is not None and not any(i.wrapper or i.hookwrapper for i in impls):
                # pluggy calls implementations last-registered first (tryfirst/trylast already sorted);
                # each with a C-level picker of its own arguments from the call's keywords
                direct = tuple((i.function, _arguments(tuple(i.argnames))) for i in reversed(impls))
            self._pm, self._plain, self._caller, self._direct = pm, plain, caller, direct
            # one implementation (most hooks): called straight, with its argument picker
            self._function, self._arguments = direct[0] if direct is not None and len(direct) == 1 else (None, None)
            self._implemented = bool(impls)
            self._generation = generation

    @property
    def implemented(self) -> bool:
        """Any implementation (the provider's or a wrapper) at all."""
        if self._generation != self._manager._generation:
            self._build()
        return self._implemented

    def _make_call(self) -> Any:
        """This hook as a plain function. Several hooks run per request, and an object's
        ``__call__`` costs more than the rest of the direct path: the call's keywords go into a
        dict, are handed to the method one by one and gathered into a dict again."""
        hook = self

        def call(**kwargs: Any) -> Any:
            if hook._generation != hook._manager._generation:
                hook._build()
            if hook._pm._inner_hookexec is not hook._plain:  # hook-call monitoring: through pluggy
                return hook._caller(**kwargs)
            function = hook._function
            if function is not None:  # one implementation (most hooks): called straight
                return function(*hook._arguments(kwargs))
            direct = hook._direct
            if direct is None:  # a wrapper: through pluggy
                return hook._caller(**kwargs)
            for function, arguments in direct:
                result = function(*arguments(kwargs))
                if result is not None:
                    return result
            return None

        call.hook = hook  # type: ignore[attr-defined]
        call.__name__ = call.__qualname__ = self._name
        return call

    def __call__(self, **kwargs: Any) -> Any:
        return self.call(**kwargs)

    def get_hookimpls(self) -> list[Any]:
        if self._generation != self._manager._generation:
            self._build()
        return list(self._caller.get_hookimpls())


def _arguments(names: tuple[str, ...]) -> Any:
    """A function from a hook call's keywords to the positional arguments of an implementation
    taking ``names``."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        name = names[0]
        return lambda kwargs: (kwargs[name],)
    return lambda kwargs: ()
