"""SSRF-safe server-side fetch of a client-supplied URL (JSON upload ``{"file": "https://..."}``).

Every hop (the first URL and each redirect target) goes through the same gate:

1. scheme must be ``http``/``https``; no userinfo;
2. the host must be a hostname, a canonical dotted quad or a bracketed IPv6 literal
   (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1`` ... are refused);
3. the host is resolved once and refused if ANY address is non-public;
4. the request is sent to the checked address itself (no second DNS lookup, so DNS
   rebinding cannot swap the target), with ``Host`` = the original host and, for https,
   TLS SNI / certificate verification against the original hostname.

Redirects are followed by hand (``follow_redirects=False``), the body is streamed into the
caller's sink with a byte cap, and the whole fetch runs under one deadline.

``allow`` holds lowercase ``"host:port"`` strings (IPv6 as ``"[::1]:8080"``); a hop whose
host:port is listed skips rules 2-3 (it is still resolved once and pinned).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from dataloft.errors import BadRequest, ContentTooLarge

__all__ = ["Fetched", "check_url", "fetch_url", "is_forbidden_address", "post_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_NON_PUBLIC = "URL host resolves to a non-public address"

# Explicit deny-list on top of the ``ipaddress`` properties (some of these are already
# covered by ``is_private`` & co. depending on the Python version; listing them keeps the
# policy independent of that).
_FORBIDDEN_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT (also Alibaba metadata 100.100.100.200)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local (AWS/GCP/Azure metadata 169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved + broadcast
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible IPv6
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/32",  # Teredo
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "fc00::/7",  # unique local (AWS IPv6 metadata fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\Z")
_CANONICAL_OCTET = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True)
class Fetched:
    content_type: str | None  # from the final response
    filename: str | None  # Content-Disposition or last URL path segment (basename only)
    final_url: str


@dataclass(frozen=True)
class _Target:
    url: str  # absolute URL as the client (or a Location header) spelled it, sans fragment
    scheme: str
    host: str  # ASCII hostname, or the IP literal (IPv6 without brackets)
    host_is_ip: bool
    port: int
    path_and_query: str

    @property
    def host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def host_header(self) -> str:
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return self.host_for_url
        return f"{self.host_for_url}:{self.port}"

    @property
    def allow_key(self) -> str:
        return f"{self.host_for_url}:{self.port}"


# --------------------------------------------------------------------------- address policy


def is_forbidden_address(ip: IPAddress) -> bool:
    """True when ``ip`` is anything but a plain public unicast address."""
    if ip in _METADATA_ADDRESSES:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return True
        # Addresses embedding an IPv4 address: refuse mapped outright, and anything whose
        # embedded address is itself forbidden (the prefixes are denied below anyway).
        if ip.ipv4_mapped is not None:
            return True
        embedded: list[ipaddress.IPv4Address] = []
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if any(is_forbidden_address(e) for e in embedded):
            return True
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    ):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return True
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return True
    return any(ip.version == net.version and ip in net for net in _FORBIDDEN_NETWORKS)


# --------------------------------------------------------------------------- URL parsing


def _normalise_host(raw_host: str) -> tuple[str, bool]:
    """Return (ascii host, is_ip_literal) or raise BadRequest for non-canonical spellings."""
    if raw_host.startswith("["):
        if not raw_host.endswith("]"):
            raise BadRequest("URL host is not valid")
        inner = raw_host[1:-1]
        if "%" in inner:
            raise BadRequest("URL host is not valid: IPv6 zone identifiers are not allowed")
        try:
            ip6 = ipaddress.IPv6Address(inner)
        except ValueError as exc:
            raise BadRequest("URL host is not a valid IPv6 address") from exc
        return str(ip6), True

    host = raw_host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except (UnicodeError, ValueError) as exc:
            raise BadRequest("URL host is not a valid hostname") from exc
    host = host.lower()
    if not host or len(host) > 253:
        raise BadRequest("URL host is not a valid hostname")

    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":  # one trailing dot is a legal FQDN spelling
        labels = labels[:-1]
        trailing_dot = True
    else:
        trailing_dot = False
    # Anything whose last label looks like a number is an IPv4 spelling (WHATWG URL
    # "ends in a number"): decimal, hex, octal, short forms... Only the canonical dotted
    # quad (no trailing dot, no leading zeros) is accepted.
    if _NUMERIC_LABEL.match(labels[-1]):
        if (
            not trailing_dot
            and len(labels) == 4
            and all(_CANONICAL_OCTET.match(p) and int(p) <= 255 for p in labels)
        ):
            return str(ipaddress.IPv4Address(host)), True
        raise BadRequest("URL host is not a canonical IP address or hostname")
    if not labels or not all(len(lb) <= 63 and _HOST_LABEL.match(lb) for lb in labels):
        raise BadRequest("URL host is not a valid hostname")
    return ".".join(labels), False


def _parse_target(url: str) -> _Target:
    if not isinstance(url, str) or not url:
        raise BadRequest("URL is required")
    if len(url) > 8192:
        raise BadRequest("URL is too long")
    if _BAD_URL_CHARS.search(url):
        raise BadRequest("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"URL is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadRequest("URL scheme must be http or https")
    netloc = parts.netloc
    if not netloc:
        raise BadRequest("URL has no host")
    if "@" in netloc:
        raise BadRequest("URL must not contain credentials (user:password@)")
    # Host part of the netloc, brackets kept (urlsplit's .hostname strips them).
    if netloc.startswith("["):
        raw_host = netloc[: netloc.find("]") + 1] if "]" in netloc else netloc
    else:
        raw_host = netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
    host, is_ip = _normalise_host(raw_host)
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise BadRequest("URL port is not valid")
    path = parts.path or "/"
    path_and_query = f"{path}?{parts.query}" if parts.query else path
    clean_url = parts._replace(fragment="").geturl()
    return _Target(clean_url, scheme, host, is_ip, port, path_and_query)


# --------------------------------------------------------------------------- resolution


async def _resolve(host: str, port: int) -> list[str]:
    """One DNS lookup (in a thread, via the loop); returns the addresses in order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise BadRequest("URL host could not be resolved") from exc
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0])
        if addr not in out:
            out.append(addr)
    return out


async def _checked_addresses(target: _Target, allow: frozenset[str]) -> list[IPAddress]:
    allowed = target.allow_key in allow
    raw = [target.host] if target.host_is_ip else await _resolve(target.host, target.port)
    addrs: list[IPAddress] = []
    for a in raw:
        try:
            addrs.append(ipaddress.ip_address(a))
        except ValueError as exc:
            raise BadRequest(_NON_PUBLIC) from exc
    if not addrs:
        raise BadRequest("URL host could not be resolved")
    if not allowed and any(is_forbidden_address(a) for a in addrs):
        raise BadRequest(_NON_PUBLIC)
    return addrs


# --------------------------------------------------------------------------- filenames


def _sanitise_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name or name in (".", ".."):
        return None
    return name[:255]


def _filename_from_disposition(value: str | None) -> str | None:
    if not value:
        return None
    try:
        msg = Message()
        msg["content-disposition"] = value
        name = msg.get_filename()
    except Exception:  # malformed header: fall back to the URL
        return None
    return _sanitise_filename(name) if isinstance(name, str) else None


def _filename_from_url(url: str) -> str | None:
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    return _sanitise_filename(unquote(path.rsplit("/", 1)[-1]))


# --------------------------------------------------------------------------- fetch


async def _send_pinned(
    client: httpx.AsyncClient, target: _Target, addrs: list[IPAddress], method: str = "GET",
    content: bytes | None = None, headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send to the checked addresses in order (fallback only on connect failure)."""
    extensions: dict[str, str] = {}
    if target.scheme == "https" and not target.host_is_ip:
        extensions["sni_hostname"] = target.host
    last_exc: httpx.ConnectError | None = None
    for ip in addrs:
        ip_host = f"[{ip}]" if ip.version == 6 else str(ip)
        req = client.build_request(
            method,
            f"{target.scheme}://{ip_host}:{target.port}{target.path_and_query}",
            headers={**(headers or {}), "Host": target.host_header},
            content=content,
            extensions=extensions,
        )
        try:
            return await client.send(req, stream=True)
        except httpx.ConnectError as exc:
            last_exc = exc
    raise BadRequest("URL fetch failed: could not connect to host") from last_exc


async def _stream_body(resp: httpx.Response, sink: Callable[[bytes], object],
                       max_bytes: int) -> None:
    """The body into `sink`, refused as soon as it (or its declared length) passes the cap."""
    too_large = f"URL content is larger than the limit of {max_bytes} bytes"
    declared = resp.headers.get("content-length")
    if declared is not None:
        try:
            declared_len: int | None = int(declared.strip())
        except ValueError:
            declared_len = None
        if declared_len is not None and declared_len > max_bytes:
            raise ContentTooLarge(too_large)
    total = 0
    async for chunk in resp.aiter_bytes():
        if not chunk:
            continue
        total += len(chunk)
        if total > max_bytes:
            raise ContentTooLarge(too_large)
        res = sink(chunk)
        if inspect.isawaitable(res):
            await res


async def _fetch(
    url: str,
    sink: Callable[[bytes], object],
    max_bytes: int,
    allow: frozenset[str],
    timeout: float,
    max_redirects: int,
) -> Fetched:
    current = url
    async with httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,  # never hand the request to an env-configured proxy (it would resolve)
        timeout=timeout,
        headers={"User-Agent": "dataloft-url-fetch/1", "Accept-Encoding": "identity"},
    ) as client:
        for hop in range(max_redirects + 1):
            target = _parse_target(current)
            addrs = await _checked_addresses(target, allow)
            resp = await _send_pinned(client, target, addrs)
            try:
                location = resp.headers.get("location")
                if resp.status_code in _REDIRECT_STATUSES and location:
                    if hop >= max_redirects:
                        raise BadRequest(
                            f"URL fetch failed: too many redirects (more than {max_redirects})"
                        )
                    try:
                        current = urljoin(target.url, location.strip())
                    except ValueError as exc:
                        raise BadRequest("URL fetch failed: invalid redirect location") from exc
                    continue
                if not 200 <= resp.status_code < 300:
                    raise BadRequest(f"URL fetch failed: HTTP {resp.status_code}")

                await _stream_body(resp, sink, max_bytes)
                return Fetched(
                    content_type=resp.headers.get("content-type"),
                    filename=_filename_from_disposition(resp.headers.get("content-disposition"))
                    or _filename_from_url(target.url),
                    final_url=target.url,
                )
            finally:
                await resp.aclose()
    raise BadRequest("URL fetch failed: too many redirects")  # pragma: no cover


async def fetch_url(
    url: str,
    sink: Callable[[bytes], None] | Callable[[bytes], Awaitable[None]],
    *,
    max_bytes: int,
    allow: frozenset[str] = frozenset(),
    timeout: float = 30.0,
    max_redirects: int = 5,
) -> Fetched:
    """Fetch ``url`` into ``sink`` chunk by chunk; see the module docstring for the rules.

    Raises BadRequest (refused URL/address, connect error, non-2xx, too many redirects,
    timeout) or ContentTooLarge (declared or streamed size over ``max_bytes``).
    """
    allow = frozenset(a.lower() for a in allow)
    try:
        async with asyncio.timeout(timeout):
            return await _fetch(url, sink, max_bytes, allow, timeout, max_redirects)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise BadRequest(f"URL fetch timed out after {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise BadRequest(f"URL fetch failed: {type(exc).__name__}") from exc


async def check_url(url: str, allow: frozenset[str] = frozenset()) -> None:
    """Raise BadRequest unless ``url`` passes the same gate as a fetch's first hop."""
    await _checked_addresses(_parse_target(url), frozenset(a.lower() for a in allow))


async def post_url(url: str, content: bytes, headers: dict[str, str], *,
                   allow: frozenset[str] = frozenset(), timeout: float = 10.0) -> int:
    """POST ``content`` to ``url`` under the same rules (checked, pinned, no proxy) and
    return the status code; redirects are not followed (a webhook answer is final).

    Raises BadRequest when the URL is refused, cannot be reached or times out."""
    allow = frozenset(a.lower() for a in allow)
    target = _parse_target(url)
    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout,
            headers={"User-Agent": "dataloft-webhooks/1"},
        ) as client:
            addrs = await _checked_addresses(target, allow)
            resp = await _send_pinned(client, target, addrs, "POST", content, headers)
            await resp.aclose()
            return resp.status_code
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise BadRequest(f"timed out after {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise BadRequest(f"request failed: {type(exc).__name__}") from exc
