"""Receiving vendor pushes: delivery reports and inbound SMS.

``POST {prefix}/<provider>`` (``prefix`` defaults to ``/callbacks``) for every configured provider
(a ``[providers.<name>]`` table in the config; an installed but unconfigured plugin answers 404,
so a plugin's built-in defaults can never accept pushes nobody asked for). For each push:

1. the provider's ``verify_callback`` (refused -> 401, nothing stored or dispatched);
2. its ``parse_callback`` (malformed -> 400, nothing stored or dispatched);
3. the events are committed to the durable :class:`smsgate.receiving.Spool` (cannot -> 503, so the
   vendor pushes again; the push's nonce is given back to the replay store);
4. the vendor gets the answer its document asks for.

Handlers never run on the request's thread: a :class:`smsgate.receiving.Dispatcher` feeds them from the
spool in background threads, so a slow or failing handler never delays or fails the vendor's answer.

The same :class:`Receiver` is a WSGI app (:attr:`Receiver.wsgi_app`) and an ASGI app
(:attr:`Receiver.asgi_app`); ``smsgate serve`` runs the WSGI app under waitress.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from ..config import INBOUND_DEDUP
from ..errors import AuthError, ConfigError, PushTooLarge, ValidationError
from ..log import get_logger
from ..models import CallbackRequest, HttpResponse
from ..phones import mask_phones_in
from .dispatcher import Dispatcher, Handler
from .replay import DEFAULT_HOLD, AcceptingStore, RecordingStore, replay_store_from
from .sinks import JsonlSink
from .store import KINDS, Spool, SpoolError

if TYPE_CHECKING:
    from .server import AsgiApp

log = get_logger("smsgate.callbacks")

DEFAULT_SPOOL = "smsgate-spool.sqlite3"
MAX_BODY = 4 * 1024 * 1024
#: events one push may carry (a backstop for every vendor; guodu documents 250 and refuses more
#: itself before building them): a larger push is answered 413 and nothing of it is stored
MAX_EVENTS = 2000

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}


def _error(status: int, message: str) -> HttpResponse:
    return HttpResponse.of_json({"error": message}, status=status)


_HANDLER_OPTIONS = {"batch", "envelope", "batch_size", "workers", "max_attempts", "retry_base", "retry_cap", "kinds"}


def handler_options(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator giving a handler its default options, e.g. for ``smsgate serve --handler``::

        @handler_options(batch=True, batch_size=500, workers=4, kinds=["report"])
        def save(items): ...
    """
    unknown = set(options) - _HANDLER_OPTIONS
    if unknown:
        raise TypeError(f"unknown handler options {sorted(unknown)}")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.smsgate_handler_options = dict(options)  # type: ignore[attr-defined]
        return fn

    return mark


def _handler_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _setting(conf: dict[str, Any], key: str, option: str | None, types: Any) -> Any:
    """``[receiver] key`` from the config, checked to be of ``types`` (ConfigError naming it)."""
    value = conf.get(key)
    if value is not None and not isinstance(value, types):
        where = f"[receiver] {key}" + (f" (or {option})" if option else "")
        raise ConfigError(f"{where} must be a string, not {type(value).__name__}")
    return value


def _limit(conf: dict[str, Any], key: str, given: Any, default: Any, integer: bool) -> Any:
    """A bound of the receiver: the argument, else ``[receiver] key``, else the default; a finite
    number above 0 (a whole number when ``integer``), or a ConfigError naming the key."""
    import math

    value = given if given is not None else conf.get(key, default)
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError(f"[receiver] {key} must be {kind}, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"[receiver] {key} must be {kind} above 0")
    return value


class Receiver:
    """Verifies, parses, stores and dispatches vendor pushes.

    ``gateway`` is a :class:`smsgate.Gateway` (or settings to build one). ``spool`` is a
    :class:`Spool` or a file path (default: ``[receiver] spool`` in the config, else
    ``./smsgate-spool.sqlite3``). Every configured provider's config is checked here: a broken
    one raises :class:`smsgate.ConfigError` at once. ``replay_store`` is an object with ``add(key, ttl)``, ``"memory"``
    (default) or ``"sqlite:PATH"`` (shared by the workers of one host). ``events_jsonl`` appends
    every event to that file as one JSON line, once. ``plugin_hooks`` feeds the ``on_report`` /
    ``on_inbound`` / ``on_task_summary`` hooks of registered plugins, including plugins registered
    after the Receiver was built (they get the events stored from the next push or :meth:`start` on).
    ``inbound_dedup`` (default ``[receiver] inbound_dedup``, else ``"retries"``) is how an inbound
    SMS identical to a stored one is taken (:func:`smsgate.receiving.store.push_keys`).
    ``dispatch=False`` only stores and answers: no handler runs in this process (not the events
    file, the send ledger's matching or the plugin hooks either), because another process sharing
    the spool runs them (``smsgate work``; ``smsgate serve`` starts one). ``/healthz`` then reports
    what :attr:`handlers_status` says of them.

    Register handlers with the decorators before the first push::

        receiver = Receiver(Gateway("smsgate.toml"), spool="/var/lib/app/sms-spool.sqlite3")

        @receiver.on_report
        def report(r: DeliveryReport): ...
    """

    def __init__(self, gateway: Any = None, *, spool: Spool | str | os.PathLike[str] | None = None,
                 replay_store: Any = None, prefix: str = "/callbacks", events_jsonl: str | os.PathLike[str] | None = None,
                 max_body: int | None = None, plugin_hooks: bool = True, poll_interval: float = 1.0,
                 lease_seconds: float = 300.0, synchronous: str = "FULL", max_events: int | None = None,
                 nonce_hold: float = DEFAULT_HOLD, inbound_dedup: str | None = None, dispatch: bool = True):
        from ..sending.gateway import Gateway

        self.gateway = gateway if isinstance(gateway, Gateway) else Gateway(gateway)
        conf = self.gateway.settings.extra.get("receiver") or {}
        if not isinstance(conf, dict):
            raise ConfigError("[receiver] must be a table")
        from .server import CONNECTION_LIMIT, IDLE_TIMEOUT

        #: bounds of one push and of what `smsgate serve` lets clients hold (docs/receiving.md, Security)
        self.max_body = _limit(conf, "max_body", max_body, MAX_BODY, integer=True)
        self.max_events = _limit(conf, "max_events", max_events, MAX_EVENTS, integer=True)
        self.connection_limit = _limit(conf, "connection_limit", None, CONNECTION_LIMIT, integer=True)
        self.idle_timeout = _limit(conf, "idle_timeout", None, IDLE_TIMEOUT, integer=False)
        # a configured provider whose config is broken fails now, not with every push later
        from .guard import startup_warning

        for name in self.gateway.provider_names():
            _, provider_config = self.gateway.provider(name)
            startup_warning(name, provider_config)
        if spool is None:
            spool = _setting(conf, "spool", "--spool", (str, os.PathLike)) or DEFAULT_SPOOL
        sync = _setting(conf, "synchronous", None, str) or synchronous
        if str(sync).upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError(f"[receiver] synchronous must be FULL, NORMAL or EXTRA, not {sync!r}")
        dedup = inbound_dedup or _setting(conf, "inbound_dedup", None, str) or "retries"
        if dedup not in INBOUND_DEDUP:
            raise ConfigError(f"[receiver] inbound_dedup must be {' or '.join(INBOUND_DEDUP)}, not {dedup!r}")
        self.dispatch = dispatch
        #: with dispatch=False: "running", or why the handlers elsewhere are not (smsgate serve sets it)
        self.handlers_status: Callable[[], str] = lambda: "running"
        if not dispatch:
            events_jsonl = None  # the events file is a handler: the process running the handlers writes it
        elif events_jsonl is None:
            events_jsonl = _setting(conf, "events_jsonl", "--events-jsonl", (str, os.PathLike))
        if replay_store is None:
            replay_store = _setting(conf, "replay_store", "--replay-store", (str, os.PathLike))
        if not isinstance(spool, (Spool, str, os.PathLike)):
            raise ConfigError(f"spool must be a file path, not {type(spool).__name__}")
        if isinstance(spool, Spool):
            self.spool = spool
        else:
            try:
                self.spool = Spool(spool, synchronous=sync, inbound_dedup=dedup)
            except SpoolError as exc:  # a path that cannot be used is a configuration error
                raise ConfigError(f"spool (--spool, [receiver] spool): {exc}") from None
        self._own_spool = not isinstance(spool, Spool)
        self._sink: JsonlSink | None = None
        try:
            self._own_replay = not hasattr(replay_store, "add")  # we create it, so we close it
            try:
                self.replay_store = replay_store_from(replay_store)
            except (ValueError, TypeError, OSError, sqlite3.Error) as exc:
                raise ConfigError(f"replay_store (--replay-store, [receiver] replay_store): {exc}") from None
            self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
            self.nonce_hold = nonce_hold
            self.dispatcher = Dispatcher(self.spool, poll_interval=poll_interval, lease_seconds=lease_seconds)
            self._pid: int | None = None
            self._start_lock = threading.Lock()
            if events_jsonl:
                try:
                    self._sink = JsonlSink(events_jsonl)
                except OSError as exc:
                    raise ConfigError(f"events_jsonl (--events-jsonl, [receiver] events_jsonl): cannot open "
                                      f"{os.fspath(events_jsonl)}: {exc.strerror or exc}") from None
                self.add_handler(self._sink, name="events-jsonl", batch=True, batch_size=500)
            if self.gateway.ledger is not None and dispatch:
                # every stored report (pushed or pulled) is matched to the send it reports on
                self.add_handler(self._match_reports, name="send-ledger", kinds=("report",), batch=True,
                                 batch_size=500)
        except BaseException:
            if getattr(self, "_own_replay", False) and hasattr(getattr(self, "replay_store", None), "close"):
                self.replay_store.close()
            if self._own_spool:
                self.spool.close()
            raise
        self._plugin_hooks = plugin_hooks and dispatch
        self._hooks_lock = threading.Lock()
        self._built_after: int | None = None
        self._ensure_plugin_hooks()
        if plugin_hooks and "plugin-hooks" not in self.dispatcher.handlers:
            self._built_after = self.spool.last_id()  # a plugin registered later gets the events from here

    # -- handlers --------------------------------------------------------------------------
    def _match_reports(self, items: list[Any]) -> None:
        self.gateway.match_reports(item.event for item in items)

    def add_handler(self, fn: Callable[..., Any], *, name: str | None = None, kinds: Iterable[str] | None = None,
                    **options: Any) -> Callable[..., Any]:
        """Register ``fn`` for events of ``kinds`` (``report``, ``inbound``, ``task``; default all).

        Options: ``batch`` (False), ``envelope`` (False), ``batch_size`` (100), ``workers`` (1),
        ``max_attempts`` (None), ``retry_base`` (1.0 s), ``retry_cap`` (600 s); defaults may also
        come from :func:`handler_options` on ``fn``. ``fn`` gets one model object per call, or with
        ``envelope=True`` the :class:`smsgate.receiving.SpooledEvent` (its ``id`` is stable: key side
        effects on it), or with ``batch=True`` a list of SpooledEvent (up to ``batch_size``). An
        exception leaves the event(s) for a retry after ``retry_base * 2**n`` seconds (at most
        ``retry_cap``); after ``max_attempts`` (None: never) the row is kept as dead. ``name`` must
        stay the same across restarts (default ``module.qualname``): the spool tracks progress per name.
        """
        merged = {**getattr(fn, "smsgate_handler_options", {}), **options}
        unknown = set(merged) - _HANDLER_OPTIONS
        if unknown:
            raise TypeError(f"unknown handler options {sorted(unknown)}")
        kinds_set = frozenset(kinds or merged.pop("kinds", None) or KINDS)
        merged.pop("kinds", None)
        bad = kinds_set - set(KINDS)
        if bad:
            raise ValueError(f"unknown event kinds {sorted(bad)}; use {KINDS}")
        self.dispatcher.add(Handler(name=name or _handler_name(fn), fn=fn, kinds=kinds_set, **merged))
        return fn

    def _decorator(self, kinds: Any, fn: Callable[..., Any] | None, options: dict[str, Any]) -> Any:
        if fn is not None:
            return self.add_handler(fn, kinds=kinds, **options)
        return lambda f: self.add_handler(f, kinds=kinds, **options)

    def on_report(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``fn(report: DeliveryReport)`` for each delivery report (options as :meth:`add_handler`)."""
        return self._decorator(("report",), fn, options)

    def on_inbound(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``fn(message: InboundMessage)`` for each inbound SMS."""
        return self._decorator(("inbound",), fn, options)

    def on_event(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``fn(event)`` for every event (reports, inbound, task summaries)."""
        return self._decorator(options.pop("kinds", None), fn, options)

    _HOOKS = {"report": ("on_report", "report"), "inbound": ("on_inbound", "message"),
              "task": ("on_task_summary", "summary")}

    def _ensure_plugin_hooks(self) -> None:
        """Feed the plugins' ``on_report``/``on_inbound``/``on_task_summary`` hooks once any plugin
        implements one. Checked when the Receiver is built, at :meth:`start` and before each push,
        so a plugin registered later still gets the events stored after that; which
        implementations run is decided when each event is dispatched."""
        if not self._plugin_hooks or "plugin-hooks" in self.dispatcher.handlers:
            return
        hook = self.gateway.plugins.pm.hook
        if not any(getattr(hook, h, None) is not None and getattr(hook, h).get_hookimpls()
                   for h, _ in self._HOOKS.values()):
            return

        def call_hooks(item: Any) -> None:
            name, arg = self._HOOKS[item.kind]
            caller = getattr(hook, name, None)
            if caller is not None and caller.get_hookimpls():
                caller(**{arg: item.event, "event_id": item.id})

        with self._hooks_lock:
            if "plugin-hooks" not in self.dispatcher.handlers:
                # registered after the Receiver was built: also the events stored since then
                self.dispatcher.add(Handler(name="plugin-hooks", fn=call_hooks, kinds=frozenset(KINDS), envelope=True),
                                    since_id=self._built_after)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Receiver":
        """Start the handler threads (done on the first push anyway, and again after a fork)."""
        if not self.dispatch:
            return self
        self._ensure_plugin_hooks()
        with self._start_lock:
            if self._pid != os.getpid():
                if self._pid is not None:  # forked after start: the threads stayed in the parent
                    self.dispatcher = Dispatcher(self.spool, list(self.dispatcher.handlers.values()),
                                                 poll_interval=self.dispatcher.poll_interval,
                                                 lease_seconds=self.dispatcher.lease_seconds)
                self.dispatcher.start()
                self._pid = os.getpid()
                self._warn_orphan_handlers()
        return self

    def _warn_orphan_handlers(self) -> None:
        """Handlers registered in the spool (by an earlier run) that this process does not run
        still have every new event waiting for them, and prune() keeps those events for them."""
        try:
            orphans = sorted(set(self.spool.handler_names()) - set(self.dispatcher.handlers))
        except Exception:
            return
        if orphans:
            log.warning("smsgate.spool.handlers_not_running", handlers=orphans, spool=self.spool.path,
                        hint="unless another process runs them: smsgate spool forget-handler NAME --spool PATH")

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every due event has been handled (tests, demo, shutdown)."""
        self.start()
        return self.dispatcher.drain(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the handler threads (the next push or :meth:`start` starts them again)."""
        with self._start_lock:
            self.dispatcher.stop(timeout)
            self._pid = None

    def close(self, timeout: float = 10.0) -> None:
        self.stop(timeout)
        if self._sink is not None:
            self._sink.close()
        if self._own_spool:
            self.spool.close()
        close = getattr(self.replay_store, "close", None)
        if self._own_replay and close is not None:
            close()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the core flow -----------------------------------------------------------------------
    def route(self, path: str) -> str | None:
        """The provider name for ``path`` (``{prefix}/<name>``, optionally followed by more
        segments that the provider may check, e.g. guodu's ``push_path_secret``), or None."""
        path = path.split("?", 1)[0].rstrip("/")
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return None
            path = path[len(self.prefix):]
        name = path.lstrip("/").split("/", 1)[0]
        return name or None

    def known(self, name: str) -> bool:
        """True for a configured provider (a table in the config). Installed plugins that are not
        configured are not routed: their defaults (e.g. the loopback's public demo secret) must
        never verify a push."""
        return name in self.gateway.settings.providers

    def handle(self, provider: str, request: CallbackRequest) -> HttpResponse:
        """Run one push through verify -> parse -> spool; return the vendor's answer. Never raises:
        whatever goes wrong is answered 4xx (the push itself is wrong) or 503 (push again later)."""
        try:
            return self._handle(provider, request)
        except Exception as exc:  # a bug of ours: the vendor keeps the push and tries again
            log.error("smsgate.callback.error", provider=provider, error=f"{type(exc).__name__}: {exc}")
            return _error(503, "internal error; push again later")

    def _handle(self, provider: str, request: CallbackRequest) -> HttpResponse:
        started = time.perf_counter()
        if not self.known(provider):
            return _error(404, f"no provider named {provider!r}")
        if request.method.upper() != "POST":
            return _error(405, "pushes are POSTed")
        self.start()  # also picks up plugin hooks registered since the last push
        store = RecordingStore(self.replay_store, hold=self.nonce_hold)
        try:
            result = self.gateway.handle_callback(provider, request, replay_store=store)
            events = list(result.events)
            if len(events) > self.max_events:
                raise PushTooLarge(f"{len(events)} events in one push; at most {self.max_events} are taken")
        except AuthError:
            store.give_back()
            if store.seen_before or store.held:
                answer = self._stored_retry(provider, request)
                if answer is not None:
                    return answer
            if store.held and not store.seen_before:
                # the nonce is reserved by a push still being stored, or by a process that died
                # before it could store it: the retry is welcome once the reservation ends
                log.warning("smsgate.callback.nonce_held", provider=provider)
                return self._refusal(provider, 503, "a push with this nonce is being stored; push again later")
            log.warning("smsgate.callback.refused", provider=provider, remote=request.remote_addr)
            return self._refusal(provider, 401, "verification failed")
        except PushTooLarge as exc:
            store.give_back()
            log.warning("smsgate.callback.too_large", provider=provider, error=str(exc))
            return self._refusal(provider, 413, str(exc))
        except ConfigError as exc:
            # configured (known() said so) but not usable: 503, so the vendor pushes again once fixed
            store.give_back()
            log.error("smsgate.callback.misconfigured", provider=provider, error=str(exc))
            return self._refusal(provider, 503, f"provider {provider!r} is misconfigured; push again later")
        except (ValidationError, ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeError,
                RecursionError, OverflowError) as exc:
            # RecursionError: JSON nested thousands deep; OverflowError: numbers or times out of range
            # a plugin choking on a body it did not expect is still a malformed body, never a 500
            store.give_back()
            log.warning("smsgate.callback.malformed", provider=provider,
                        error=mask_phones_in(f"{type(exc).__name__}: {exc}"[:300]))
            return self._refusal(provider, 400,
                                 f"malformed push: {exc}" if isinstance(exc, ValidationError) else "malformed push")
        except Exception as exc:  # a plugin bug: 503 so the vendor pushes again later, and a log line
            store.give_back()
            log.error("smsgate.callback.error", provider=provider,
                      error=mask_phones_in(f"{type(exc).__name__}: {exc}"[:300]))
            return self._refusal(provider, 503, "internal error; push again later")
        try:
            put = self.spool.put(events, source="push", json_native=result.json_native)
        except Exception:  # SpoolError, or anything else: nothing was stored
            store.give_back()  # the vendor's retry carries the same nonce; let it in
            return self._refusal(provider, 503, "could not store the events; push again later")
        store.confirm()
        log.info("smsgate.callback.accepted", provider=provider, events=len(events), stored=put.stored,
                 duplicates=put.duplicates, ms=round((time.perf_counter() - started) * 1000, 2))
        return result.response

    def _refusal(self, provider: str, status: int, reason: str) -> HttpResponse:
        """A refused push's answer, in the vendor's own shape when its plugin gives one
        (``callback_refusal``); the HTTP status is ``status`` whatever the plugin answers."""
        try:
            answer = self.gateway.hooks(provider).callback_refusal(
                ctx=self.gateway.context(provider), status=status, reason=reason)
        except Exception as exc:  # the refusal itself must not fail: the core's answer then
            log.error("smsgate.callback.refusal_failed", provider=provider, error=f"{type(exc).__name__}: {exc}")
            answer = None
        if not isinstance(answer, HttpResponse):
            return _error(status, reason)
        return answer if answer.status == status else attrs.evolve(answer, status=status)

    def _stored_retry(self, provider: str, request: CallbackRequest) -> HttpResponse | None:
        """A push refused only because its nonce was used: the vendor's retry after our 2xx was lost
        on the way. Check the signature and time window again (recording nothing); if they hold and
        every event of the push is already in the spool, give the vendor its answer again (nothing
        is stored or handled again). Anything else stays refused."""
        try:
            result = self.gateway.handle_callback(provider, request, replay_store=AcceptingStore())
            if not self.spool.contains_all(result.events):
                return None
        except Exception:
            return None
        log.info("smsgate.callback.retry_of_stored_push", provider=provider, events=len(result.events))
        return result.response

    def handle_path(self, method: str, path: str, headers: Any, body: bytes, remote_addr: str | None = None,
                    query: str = "") -> HttpResponse:
        """Route and handle one request (the WSGI and ASGI apps and framework views use this)."""
        if path.rstrip("/") == "/healthz" and method.upper() in ("GET", "HEAD"):
            return self.health_response()
        name = self.route(path)
        if name is None:
            return _error(404, f"not a callback path: {path}")
        request = CallbackRequest(method=method, path=path, headers=headers, body=body, remote_addr=remote_addr,
                                  query=query)
        return self.handle(name, request)

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` for load balancers: ok when the spool takes writes and the handler
        threads are running (started here if nothing started them yet; with ``dispatch=False``,
        when :attr:`handlers_status` says "running")."""
        checks: dict[str, Any] = {"spool": "writable", "dispatcher": "running"}
        try:
            self.spool.check_writable()
        except (SpoolError, sqlite3.Error) as exc:
            checks["spool"] = str(exc)
        try:
            if not self.dispatch:
                checks["dispatcher"] = self.handlers_status()
            else:
                self.start()
                if not self.dispatcher.alive():
                    checks["dispatcher"] = "not running (a handler thread stopped)"
        except Exception as exc:  # a health check answers, it never raises
            checks["dispatcher"] = f"cannot start: {type(exc).__name__}: {exc}"
        return {"ok": checks == {"spool": "writable", "dispatcher": "running"}, **checks}

    def health_response(self) -> HttpResponse:
        report = self.health()
        return HttpResponse.of_json(report, status=200 if report["ok"] else 503)

    # -- WSGI --------------------------------------------------------------------------------
    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """The receiver as a WSGI application. Never raises (a server's traceback log would carry
        the URL, which may hold a path secret): a failure of ours is answered 503."""
        try:
            response = self._wsgi_response(environ)
        except Exception as exc:
            log.error("smsgate.callback.error", error=f"{type(exc).__name__}: {exc}"[:300])
            response = _error(503, "internal error; push again later")
        return _wsgi_respond(response, start_response)

    def _wsgi_response(self, environ: dict[str, Any]) -> HttpResponse:
        path = environ.get("PATH_INFO") or "/"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            response = _error(400, "bad Content-Length")
        elif length > self.max_body:
            response = _error(413, "body too large")
        else:
            stream = environ.get("wsgi.input")
            if length:
                body = stream.read(length) if stream is not None else b""
            elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and stream is not None:
                body = stream.read(self.max_body + 1)
            else:
                body = b""
            if len(body) > self.max_body:
                response = _error(413, "body too large")
            else:
                headers = [(k[5:].replace("_", "-").title(), v) for k, v in environ.items() if k.startswith("HTTP_")]
                if environ.get("CONTENT_TYPE"):
                    headers.append(("Content-Type", environ["CONTENT_TYPE"]))
                response = self.handle_path(environ.get("REQUEST_METHOD", "GET"), path, headers, body,
                                            environ.get("REMOTE_ADDR"), environ.get("QUERY_STRING", ""))
        return response

    # -- ASGI --------------------------------------------------------------------------------
    @property
    def asgi_app(self) -> AsgiApp:
        """The receiver as an ASGI application (http and lifespan scopes)."""
        from .server import AsgiApp

        return AsgiApp(self)


def _wsgi_respond(response: HttpResponse, start_response: Callable[..., Any]) -> list[bytes]:
    status = f"{response.status} {_REASONS.get(response.status, 'Status')}"
    headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(response.body))))
    start_response(status, headers)
    return [response.body]



def load_handler(spec: str) -> Callable[..., Any]:
    """Import ``module:function`` (``smsgate serve --handler``)."""
    import importlib

    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"--handler must look like module:function, not {spec!r}")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load handler {spec!r}: {exc}") from None
    if not callable(obj):
        raise ConfigError(f"handler {spec!r} is not a function")
    handler: Callable[..., Any] = obj
    return handler


def dumps_event(item: Any) -> str:
    from .sinks import event_line

    from ..wire import json_text

    return json_text(event_line(item), default=str, separators=(", ", ": "))


__all__ = ["Receiver", "load_handler", "handler_options"]
