"""The protocol registry: which wire protocol serves which mount (settings `CHAT["PROTOCOLS"]`).

A mount is a protocol package on a transport, at an Engine.IO path and namespace (Socket.IO) or
a WebSocket path (/ws/), optionally only for one Host name or one listening port: ExpressChat
and other protocols that all use namespace "/" on /socket.io/ are told apart that way (see
docs/operations.md "Protocol mounts"). Protocol packages are imported by name from settings,
so nothing in the gateway names one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.identity import (
    ACCESS,
    APPS,
    FIRST_PARTY,
    ID_HANDLE,
    REGISTERED_TOKEN,
    TENANT_JWT,
    Policy,
)

from .protocol import Protocol

TRANSPORTS = ("eio4", "eio3", "ws")
KEYS = {
    "protocol",
    "transport",
    "path",
    "namespace",
    "host",
    "port",
    "ping_interval",
    "ping_timeout",
    "realm",
    "credentials",
    "apps",
}
# The credential forms each realm accepts (accounts.identity), the first one the default.
REALM_FORMS = {
    FIRST_PARTY: (ACCESS,),
    APPS: (TENANT_JWT, REGISTERED_TOKEN, ID_HANDLE),
}


@dataclass(frozen=True)
class Mount:
    protocol: str  # dotted path of the protocol package
    transport: str  # one of TRANSPORTS
    path: str  # "/socket.io/", "/ws/", ...: always with a leading and a trailing slash
    namespace: str = "/"
    host: str | None = None  # only requests for this Host name (lower case, no port)
    port: int | None = None  # only connections to this listening port
    ping_interval: float | None = None  # Engine.IO heartbeat, seconds (default: settings)
    ping_timeout: float | None = None
    # Who may connect here: the realm, the credential forms taken, optionally only some apps.
    policy: Policy = Policy()

    @property
    def site(self) -> tuple[str, str, str | None, int | None]:
        """Mounts with the same site share one Engine.IO server (one namespace each)."""
        return (self.transport, self.path, self.host, self.port)

    def serves(self, scope: dict[str, Any]) -> bool:
        """Whether a request (ASGI scope) is for this mount's host and port."""
        server = scope.get("server")
        host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
        return self.serves_address(host, server[1] if server else None)

    def serves_address(self, host: str, port: int | None) -> bool:
        """Whether a request with this Host header and to this listening port is for this mount."""
        if self.port is not None and port != self.port:
            return False
        if self.host is not None:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # [v6]:port kept whole
            if name.lower() != self.host:
                return False
        return True


def _path(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise ImproperlyConfigured(f"{where}: path must be a non-empty string like /socket.io/.")
    return "/" + value.strip("/") + "/"


def _mount(entry: object, index: int) -> Mount:
    where = f'CHAT["PROTOCOLS"][{index}]'
    if not isinstance(entry, dict) or not isinstance(entry.get("protocol"), str):
        raise ImproperlyConfigured(f"{where} must be an object with a protocol package path.")
    unknown = set(entry) - KEYS
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown keys {sorted(unknown)}.")
    transport = entry.get("transport")
    if transport not in TRANSPORTS:
        raise ImproperlyConfigured(f"{where}: transport must be one of {TRANSPORTS}.")
    namespace = entry.get("namespace", "/")
    if not isinstance(namespace, str) or not namespace.startswith("/"):
        raise ImproperlyConfigured(f"{where}: namespace must start with /.")
    host, port = entry.get("host"), entry.get("port")
    if host is not None and (not isinstance(host, str) or not host):
        raise ImproperlyConfigured(f"{where}: host must be a host name.")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise ImproperlyConfigured(f"{where}: port must be an integer.")
    return Mount(
        policy=_policy(entry, where),
        protocol=entry["protocol"],
        transport=transport,
        path=_path(entry.get("path"), where),
        namespace=namespace,
        host=host.lower() if host else None,
        port=port,
        ping_interval=entry.get("ping_interval"),
        ping_timeout=entry.get("ping_timeout"),
    )


def _policy(entry: dict, where: str) -> Policy:
    realm = entry.get("realm", FIRST_PARTY)
    if realm not in REALM_FORMS:
        raise ImproperlyConfigured(f"{where}: realm must be one of {sorted(REALM_FORMS)}.")
    forms = entry.get("credentials", [REALM_FORMS[realm][0]])
    if (
        not isinstance(forms, list)
        or not forms
        or not all(isinstance(f, str) and f in REALM_FORMS[realm] for f in forms)
    ):
        raise ImproperlyConfigured(f"{where}: credentials of realm {realm} are some of {REALM_FORMS[realm]}.")
    apps = entry.get("apps")
    if apps is not None and (
        realm != APPS or not isinstance(apps, list) or not all(isinstance(a, str) and a for a in apps)
    ):
        raise ImproperlyConfigured(f"{where}: apps is a list of app ids, for realm apps only.")
    return Policy(
        realm=realm,
        forms=tuple(dict.fromkeys(forms)),
        apps=tuple(apps) if apps is not None else None,
        protocol=_protocol_name(entry["protocol"]),
    )


def _protocol_name(path: str) -> str:
    return protocol(path).name


def mounts() -> list[Mount]:
    """Every mount of the registry, checked: two mounts may not claim the same transport, path,
    namespace, host and port (an Engine.IO 3 and an Engine.IO 4 mount may share a path and
    namespace: requests are routed by their EIO version)."""
    entries = settings.CHAT["PROTOCOLS"]
    if not isinstance(entries, list):
        raise ImproperlyConfigured('CHAT["PROTOCOLS"] must be a list of mounts.')
    found = [_mount(entry, i) for i, entry in enumerate(entries)]
    seen: dict[tuple, Mount] = {}
    for mount in found:
        key = (mount.transport, mount.path, mount.namespace, mount.host, mount.port)
        if key in seen:
            raise ImproperlyConfigured(
                f"{mount.protocol} and {seen[key].protocol} both claim {mount.path} namespace "
                f"{mount.namespace}: give one of them a host or a port."
            )
        seen[key] = mount
    return found


@cache
def protocol(path: str) -> Protocol:
    """The protocol object of a package (its module-level PROTOCOL)."""
    module = import_module(path)
    found = getattr(module, "PROTOCOL", None)
    if not isinstance(found, Protocol):
        raise ImproperlyConfigured(f"{path} has no PROTOCOL (a gateway.protocol.Protocol).")
    return found


def url_modules() -> list[str]:
    """The REST urls modules of the mounted protocols, each once."""
    return list(dict.fromkeys(u for m in mounts() if (u := protocol(m.protocol).urls)))
