"""A user's script, checked by ``mypy --strict`` in tests/test_typing.py: the public API is typed
well enough for a strict application to use it without casts or ignores."""

from __future__ import annotations

import logging

from smsgate import (ConfigError, DeliveryReport, Gateway, InboundMessage, Message, Outcome, Receiver,
                     RecipientResult, SendResult, ValidationError, hookimpl, mask_phone)
from smsgate.testing import LoopbackSimulator


def send_code(gateway: Gateway, phone: str, code: str) -> list[str]:
    try:
        result: SendResult = gateway.send(Message(to=[phone], template_id="LB_CODE", params=[code]))
    except ValidationError as exc:
        return [f"bad input ({exc.field}): {exc}"]
    lines: list[str] = []
    for recipient in result.recipients:
        assert isinstance(recipient, RecipientResult)
        if recipient.outcome is Outcome.ACCEPTED:
            lines.append(f"{mask_phone(recipient.phone)} accepted as {recipient.message_id}")
        elif recipient.reason is not None:
            lines.append(f"{mask_phone(recipient.phone)} {recipient.outcome.value}: {recipient.reason.code}")
    return lines


class Audit:
    """A wrapper plugin, as an application writes one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def on_report(self, report: DeliveryReport, event_id: int) -> None:
        self.seen.append(f"{event_id}:{report.status.value}")


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    with LoopbackSimulator() as sim:
        try:
            gateway = Gateway({"providers": {"loopback": sim.demo_config()}})
        except ConfigError as exc:
            print(exc)
            return 2
        gateway.plugins.register(Audit(), name="audit")
        print("\n".join(send_code(gateway, "13800138000", "1234")))
        balance = gateway.balance()
        print(balance.amount, balance.unit)
        receiver = Receiver(gateway, spool="spool.sqlite3")

        @receiver.on_inbound
        def inbound(message: InboundMessage) -> None:
            print(mask_phone(message.phone), message.content)

        receiver.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
