"""Who may use the web view and how it is served: token, cookie, Host allow-list, TLS.

A camera view reachable from a LAN needs two locks:

- an access token, given once in the URL (`/?token=...`) and then kept in an HttpOnly,
  SameSite=Strict cookie (scripts may send `Authorization: Bearer ...` instead);
- a Host-header allow-list, so a page on another site cannot reach the view through
  DNS rebinding (its requests carry the attacker's host name). IP literals are always
  allowed: rebinding needs a name.

Example:
    >>> access = WebAccess.for_address("0.0.0.0", token=WebAccess.new_token())
    >>> access.host_allowed("raspberrypi.local:8080")
    True
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import re
import secrets
import socket
import ssl
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from tledge.core.errors import TledgeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_CLIENTS = 8
TOKEN_ENV = "TLEDGE_TOKEN"
MIN_TOKEN_LENGTH = 12
TOKEN_PATTERN = re.compile(rf"[A-Za-z0-9._~+/=-]{{{MIN_TOKEN_LENGTH},}}")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
HOW_TO_GET_A_TOKEN = (
    f"add --token auto (prints a new random token), --token SECRET or {TOKEN_ENV}=SECRET"
)


@dataclass(frozen=True)
class ServeOptions:
    """Where and to whom the web view is served.

    Attributes:
        address: "[HOST:]PORT"; IPv6 hosts in brackets ("[::1]:8080"); port 0 picks one.
        token: Access token required on every request; None for none.
        insecure_no_token: Allow binding beyond loopback without a token.
        offers_insecure_no_token: Whether the command has `--insecure-no-token`, so the
            refusal of a token-less view beyond loopback suggests it only where it exists
            (`tledge capture` has none: its page saves photos).
        allow_hosts: Extra host names accepted in the Host header.
        tls_cert: PEM certificate for HTTPS (with `tls_key`).
        tls_key: PEM private key for HTTPS.
        max_clients: Connections served at once.
    """

    address: str
    token: str | None = None
    insecure_no_token: bool = False
    offers_insecure_no_token: bool = True
    allow_hosts: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    max_clients: int = DEFAULT_MAX_CLIENTS

    def check(self) -> tuple[str, int]:
        """Validate the options and return the (host, port) to bind.

        Raises:
            TledgeError: for a bad address, a half-given TLS pair, or a view reachable
                from the network without a token (unless `insecure_no_token`).
        """
        host, port = parse_address(self.address)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise TledgeError("--tls-cert and --tls-key: give both, or neither")
        if self.token is None and not self.insecure_no_token and not is_loopback(host):
            insecure = (
                "; or --insecure-no-token to allow it" if self.offers_insecure_no_token else ""
            )
            raise TledgeError(
                f"--serve {self.address} lets anyone on the network watch: "
                f"{HOW_TO_GET_A_TOKEN}{insecure}"
            )
        return host, port


def parse_address(text: str) -> tuple[str, int]:
    """Split "[HOST:]PORT" into (host, port); the host defaults to 127.0.0.1.

    IPv6 hosts go in brackets: "[::1]:8080", "[::]:8080".

    Raises:
        TledgeError: when the port is not a number in 0-65535 or an IPv6 host lacks brackets.
    """
    host, _, port = text.rpartition(":")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise TledgeError(f"--serve {text}: put an IPv6 address in brackets, e.g. [::1]:8080")
    host = host.strip("[]") or DEFAULT_HOST
    if not port.isdigit() or int(port) > 65535:
        raise TledgeError(f"--serve {text}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
    return host, int(port)


@dataclass(frozen=True)
class WebAccess:
    """The web view's access rules.

    Attributes:
        token: Required on every request when set; None lets anyone in.
        allowed_hosts: Host names (lower case, no port) accepted in the Host header,
            besides IP literals.
        cookie_name: Cookie holding the token; named per port so two views on one
            machine do not overwrite each other's cookie.
        secure_cookie: Mark the cookie Secure (the view is served over TLS).
    """

    token: str | None
    allowed_hosts: frozenset[str]
    cookie_name: str = "tledge_token"
    secure_cookie: bool = False

    @classmethod
    def for_address(
        cls,
        host: str,
        token: str | None = None,
        extra_hosts: tuple[str, ...] = (),
        secure_cookie: bool = False,
    ) -> WebAccess:
        """Rules for a view bound to `host`: loopback names, `host`, this machine's name.

        Raises:
            TledgeError: when the token is shorter than `MIN_TOKEN_LENGTH`.
        """
        if token is not None and not TOKEN_PATTERN.fullmatch(token):
            raise TledgeError(
                f"--token: use at least {MIN_TOKEN_LENGTH} letters, digits or -._~+/=, "
                "or --token auto"
            )
        machine = socket.gethostname().lower()
        names = {*LOOPBACK_NAMES, host.lower(), machine, f"{machine}.local"}
        names.update(name.lower().strip("[]") for name in extra_hosts)
        return cls(token, frozenset(names), secure_cookie=secure_cookie)

    def for_port(self, port: int) -> WebAccess:
        """The same rules with the cookie named after `port`."""
        return dataclasses.replace(self, cookie_name=f"tledge_token_{port}")

    @staticmethod
    def new_token() -> str:
        """A random URL-safe token (128 bits)."""
        return secrets.token_urlsafe(16)

    def host_allowed(self, host_header: str | None) -> bool:
        """True for an IP literal or an allowed name, with or without a port."""
        if not host_header:
            return False
        host = _strip_port(host_header.strip().lower())
        if _is_ip_literal(host):
            return True
        return host.rstrip(".") in self.allowed_hosts

    def token_from_query(self, query: str) -> str | None:
        """The `token` parameter of a URL query, None when absent."""
        values = parse_qs(query).get("token")
        return values[0] if values else None

    def authorized(self, cookie_header: str | None, authorization: str | None) -> bool:
        """True when no token is needed, or the cookie or a Bearer header carries it."""
        if self.token is None:
            return True
        if authorization and authorization.lower().startswith("bearer "):
            return self.matches(authorization[7:].strip())
        return self.matches(self._cookie_token(cookie_header))

    def matches(self, candidate: str | None) -> bool:
        """Constant-time comparison with the token."""
        if self.token is None or candidate is None:
            return self.token is None
        return hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))

    def cookie(self) -> str:
        """The Set-Cookie value that keeps the token for later requests."""
        secure = "; Secure" if self.secure_cookie else ""
        return f"{self.cookie_name}={self.token}; Path=/; HttpOnly; SameSite=Strict{secure}"

    def _cookie_token(self, cookie_header: str | None) -> str | None:
        if not cookie_header:
            return None
        cookies = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except CookieError:
            return None
        morsel = cookies.get(self.cookie_name)
        return morsel.value if morsel is not None else None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the loopback names."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from PEM files.

    Raises:
        TledgeError: when the files cannot be read or do not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        raise TledgeError(f"--tls-cert {cert} / --tls-key {key}: cannot load ({reason})") from None
    return context
