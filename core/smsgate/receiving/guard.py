"""What protects the push endpoint of a vendor whose pushes carry no signature (guodu, opass).

Anyone who can reach such an endpoint could push a forged report or a forged inbound "TD". So a
provider whose Config subclasses :class:`UnsignedPushConfig` refuses every push until the operator
chose at least one protection:

* ``push_allow_ips``: the addresses (IPs or networks) the vendor pushes from;
* ``push_path_secret``: an unguessable URL segment (``/callbacks/guodu/<secret>``);
* ``push_auth = "none"``: accept pushes from anywhere, knowingly (a warning is logged at start).

The plugin's ``verify_callback`` calls :func:`push_allowed` first, then its own checks.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import attrs

from ..config import ProviderConfig, secret
from ..log import get_logger

log = get_logger("smsgate.callbacks")

#: ``push_auth`` value: pushes are accepted with no IP allow-list and no path secret
NO_AUTH = "none"
HINT = 'set push_allow_ips, push_path_secret, or push_auth = "none" to accept pushes from anywhere'


def _check_allow_ips(instance: Any, attribute: Any, value: list[str]) -> None:
    for item in value:
        try:
            ipaddress.ip_network(str(item).strip(), strict=False)
        except ValueError:
            raise ValueError(f"push_allow_ips: {item!r} is not an IP address or network") from None


def _check_push_auth(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("", NO_AUTH):
        raise ValueError('push_auth must be "none" (or left out)')


@attrs.frozen(kw_only=True)
class UnsignedPushConfig(ProviderConfig):
    """Keys of a provider whose pushes carry no signature: at least one must be set to receive."""

    #: source addresses (IPs or networks) a push may come from
    push_allow_ips: list[str] = attrs.field(factory=list, validator=_check_allow_ips)
    #: a push is accepted only if one segment of its URL path equals this value
    push_path_secret: str = secret(default="")
    #: "none": accept pushes without either protection (logged as a warning at start)
    push_auth: str = attrs.field(default="", validator=_check_push_auth)


def protections(config: Any) -> list[str]:
    """The protections ``config`` turns on (empty: its pushes are refused)."""
    found = []
    if getattr(config, "push_allow_ips", None):
        found.append("push_allow_ips")
    if getattr(config, "push_path_secret", ""):
        found.append("push_path_secret")
    if getattr(config, "push_auth", "") == NO_AUTH:
        found.append('push_auth = "none"')
    return found


def startup_warning(name: str, config: Any) -> None:
    """Logged once when a receiver starts: pushes refused for lack of a protection, or accepted
    from anywhere on purpose."""
    if not isinstance(config, UnsignedPushConfig):
        return
    found = protections(config)
    if not found:
        log.warning("smsgate.callbacks.push_refused", provider=name,
                    reason="the vendor signs no push and no protection is configured", hint=HINT)
    elif found == ['push_auth = "none"']:
        log.warning("smsgate.callbacks.unprotected", provider=name,
                    reason='push_auth = "none": anyone who reaches the URL can push forged events')


def _client_address(raw: str | None) -> Any:
    if not raw:
        return None
    text = raw.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:port"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:port"
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # IPv6 zone
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _path_has_secret(path: str, wanted: str) -> bool:
    key = wanted.encode("utf-8")
    found = False
    for segment in str(path or "").split("/"):
        # compare every segment, so the time taken does not depend on where a match is
        found = hmac.compare_digest(segment.encode("utf-8", "surrogatepass"), key) or found
    return found


def push_allowed(ctx: Any, request: Any) -> bool:
    """True when ``request`` passes every protection ``ctx.config`` sets, and at least one is set."""
    cfg = ctx.config
    if not protections(cfg):
        log.warning("smsgate.callback.refused", provider=ctx.provider,
                    reason="no protection configured for pushes", hint=HINT)
        return False
    if cfg.push_allow_ips:
        addr = _client_address(request.remote_addr)
        networks = [ipaddress.ip_network(str(n).strip(), strict=False) for n in cfg.push_allow_ips]
        if addr is None or not any(addr.version == n.version and addr in n for n in networks):
            log.warning("smsgate.callback.refused", provider=ctx.provider,
                        reason="source address not in push_allow_ips", remote_addr=request.remote_addr)
            return False
    if cfg.push_path_secret and not _path_has_secret(request.path, cfg.push_path_secret):
        log.warning("smsgate.callback.refused", provider=ctx.provider, reason="path secret missing")
        return False
    return True


def redact_path(config: Any, path: str | None) -> str | None:
    """``path`` with the segment that is the path secret written ``***`` (for anything stored or logged)."""
    wanted = getattr(config, "push_path_secret", "")
    if not path or not wanted:
        return path
    return "/".join("***" if segment == wanted else segment for segment in str(path).split("/"))
