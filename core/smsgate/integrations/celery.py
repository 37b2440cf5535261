"""Celery: a send task that is safe to redeliver, and a spool handler that forwards received events.

A Celery task with ``acks_late`` is at-least-once: a worker killed after the vendor call runs the
task again. The send task here makes the *vendor call* at-most-once while the *task* stays
at-least-once: every enqueued message carries an idempotency key, and the worker sends through a
Gateway with a send ledger, so a redelivered task answers from the ledger (the recorded outcomes,
or ``unknown`` for a send that was cut off mid-flight) instead of sending again.

    from celery import Celery
    from smsgate.integrations.celery import register_send_task, enqueue

    app = Celery("sms", broker="amqp://guest:guest@127.0.0.1:5672//")
    configure(app)                                   # the recommended settings, see docs/deploying.md
    send_sms = register_send_task(app, "smsgate.toml")   # in the worker and the web app alike
    enqueue(send_sms, Message(to=["13800138000"], template_id="T1", params=["1234"]), provider="opass")

The task's result is the JSON form of the :class:`smsgate.SendResult` (``SendResult.to_json_dict``).
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..log import get_logger
from ..models import Message

log = get_logger("smsgate.celery")

SEND_TASK = "smsgate.send"
EVENT_TASK = "smsgate.event"

#: the settings docs/deploying.md explains, one reason each
RECOMMENDED: dict[str, Any] = {
    "task_acks_late": True,  # ack after the task ran: a worker lost mid-task gets it redelivered
    "task_reject_on_worker_lost": True,  # ...also when the pool child dies (prefork)
    "worker_prefetch_multiplier": 1,  # a worker holds one unacked message, so a crash strands one
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    # RabbitMQ: publish() returns only after the broker confirmed the message (publisher confirms)
    "broker_transport_options": {"confirm_publish": True},
}


def configure(app: Any, *, visibility_timeout: float | None = None) -> None:
    """Apply :data:`RECOMMENDED` to ``app`` (keys the app already set explicitly are kept).

    ``visibility_timeout`` (Redis broker only): seconds before an unacked task is handed to another
    worker; it must exceed the longest task and the furthest ``eta``, or the task runs twice (the
    second run answers from the ledger: no SMS is sent twice, but work is wasted)."""
    for key, value in RECOMMENDED.items():
        if key == "broker_transport_options":
            merged = {**value, **(app.conf.broker_transport_options or {})}
            if visibility_timeout is not None:
                merged["visibility_timeout"] = visibility_timeout
            app.conf.broker_transport_options = merged
        elif key not in app.conf.changes:
            app.conf[key] = value


def message_to_json(message: Message) -> dict[str, Any]:
    from ..models import converter

    data: dict[str, Any] = converter().unstructure(message)
    return data


def message_from_json(data: Mapping[str, Any]) -> Message:
    from ..models import converter

    return converter().structure(dict(data), Message)


class _Gateways:
    """One Gateway per worker process (rebuilt after a fork: sockets and SQLite handles do not
    survive one)."""

    def __init__(self, factory: Callable[[], Any]):
        self.factory = factory
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._gateway: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._gateway is None or self._pid != os.getpid():
                gateway = self.factory()
                if getattr(gateway, "ledger", None) is None:
                    raise ConfigError("the Celery send task needs a send ledger: add a [ledger] table "
                                      "(a redelivered task would otherwise send again)")
                self._gateway, self._pid = gateway, os.getpid()
            return self._gateway


def register_send_task(app: Any, settings: Any = None, *, name: str = SEND_TASK,
                       gateway_factory: Callable[[], Any] | None = None, **task_options: Any) -> Any:
    """Register the send task on ``app`` and return it.

    The worker builds its Gateway from ``settings`` (a config path or mapping, as ``Gateway``
    takes) or ``gateway_factory``, once per process, on the first task. The Gateway must have a
    send ledger: without one the task refuses to send (ConfigError, nothing sent).
    """
    if gateway_factory is None:
        def gateway_factory() -> Any:
            from ..sending.gateway import Gateway

            return Gateway(settings)

    gateways = _Gateways(gateway_factory)
    options = {"acks_late": True, "reject_on_worker_lost": True, **task_options}

    def send(message: Mapping[str, Any], provider: str | None = None, **send_options: Any) -> dict[str, Any]:
        msg = message_from_json(message)
        if msg.key is None:  # enqueue() always sets one; a hand-made call without is refused
            raise ConfigError("the Celery send task needs Message.key (use smsgate.integrations.celery.enqueue)")
        result: dict[str, Any] = gateways.get().send(msg, provider, **send_options).to_json_dict()
        return result

    task = app.task(name=name, **options)(send)
    task.smsgate_gateways = gateways
    return task


def enqueue(task: Any, message: Message, provider: str | None = None, *, eta: _dt.datetime | None = None,
            **send_options: Any) -> Any:
    """Queue ``message`` on the send ``task``; returns Celery's AsyncResult.

    The message gets an idempotency key when it has none (a fresh UUID), so the task can be
    delivered any number of times and the vendor still gets the request at most once; the key is
    ``result.id`` too, so ``Gateway.status(key)`` finds the send. ``eta`` delays the send on
    Celery's side, for vendors without native scheduling (``send_at``); Celery holds such a task
    in the worker's memory until it is due, see docs/deploying.md for its limits.
    """
    import attrs

    if message.key is None:
        message = attrs.evolve(message, key=uuid.uuid4().hex)
    kwargs: dict[str, Any] = {"message": message_to_json(message), "provider": provider, **send_options}
    return task.apply_async(kwargs=kwargs, task_id=message.key, eta=eta)


class CeleryForwarder:
    """A spool handler that publishes each stored event as a Celery task (``EVENT_TASK`` by default).

    Register it as a batch handler (``receiver.add_handler(forwarder, batch=True, name=...)``): a
    spool row is completed only after every publish of its batch returned, and with publisher
    confirms on (``configure(app)``), a publish returns only once the broker has the message. A
    broker that is down makes the handler raise, and the spool retries the rows with backoff, so an
    event acknowledged to the vendor reaches the workers even when this host dies after the 2xx.
    Delivery is at-least-once: a crash between the confirm and the row's completion publishes the
    event again, so consumers key side effects on ``(origin, event_id)``.
    """

    def __init__(self, app: Any, task_name: str = EVENT_TASK, *, origin: str | None = None,
                 queue: str | None = None):
        self.app = app
        self.task_name = task_name
        self.queue = queue
        self.origin = origin or socket.gethostname()

    def __call__(self, items: list[Any]) -> None:
        from ..receiving.sinks import event_line

        with self.app.producer_or_acquire() as producer:
            for item in items:
                body = {**event_line(item), "origin": self.origin}
                self.app.send_task(self.task_name, args=[body], queue=self.queue, producer=producer,
                                   task_id=f"{self.origin}:{item.id}")


def register_event_task(app: Any, handler: Callable[[dict[str, Any]], Any], *, name: str = EVENT_TASK,
                        **task_options: Any) -> Any:
    """Register the task that runs ``handler`` for each forwarded event (the JSON line of
    ``smsgate serve --events-jsonl``, plus ``origin``: the receiving host)."""
    options = {"acks_late": True, "reject_on_worker_lost": True, **task_options}

    def event(body: dict[str, Any]) -> None:
        handler(body)

    return app.task(name=name, **options)(event)


__all__ = ["CeleryForwarder", "EVENT_TASK", "RECOMMENDED", "SEND_TASK", "configure", "enqueue",
           "message_from_json", "message_to_json", "register_event_task", "register_send_task"]
