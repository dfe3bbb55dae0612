"""JSON posted to an OpenAI-compatible server over aiohttp: the transport of ``openai:``.

Why not the OpenAI SDK's client: under load the client's CPU a call bounds the throughput on
a small machine, and measured against the stub server (2,000 calls, 256 in flight, 0.5 s
each, on 2 cores; ``benchmarks/transports.py``) the SDK's ``create`` cost 6-7 ms of CPU a
call, httpx alone 3.6-4.5 ms, this 0.47 ms. The body is the one the SDK's ``create`` sends
(a test compares them on a server), and the SDK's TLS context is used.

One ``aiohttp.ClientSession`` per event loop (a session belongs to the loop it was made in);
its connection pool has no bound of its own, as the caller bounds the calls in flight. The
proxy the environment names (HTTP(S)_PROXY, NO_PROXY, as the SDK's client honours them) is
looked up once: aiohttp's ``trust_env`` looks it up at every request, 0.9 ms of CPU a call.
Failures come back as three exceptions that ``openai.py`` maps onto the error tree:
``Unreachable`` (no connection was made: refused, no such host), ``TimedOut`` and
``Broken`` (the connection failed on the way), and ``TooLarge``: a reply is read in chunks,
counted as it is decompressed (aiohttp inflates a gzip or deflate body as it is read), and
dropped past ``max_reply_bytes()`` (``$OPRO_MAX_REPLY_MB``, 8 MB by default), so that neither
a huge body nor a small gzip bomb can take a call's memory past the cap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

_log = logging.getLogger(__name__)


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``: ``http_proxy``/``https_proxy`` (either
    case) unless ``no_proxy`` covers its host."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


class Unreachable(Exception):
    """No connection could be opened."""


class TimedOut(Exception):
    """No whole reply within the timeout."""


class Broken(Exception):
    """The connection failed after it was opened (reset, closed mid-reply...)."""


class TlsFailed(Exception):
    """No TLS connection: ``verify`` when the server's certificate is not trusted (else a
    server that does not speak TLS there, most often plain http); the message is the cause."""

    def __init__(self, cause: str, *, verify: bool) -> None:
        super().__init__(cause)
        self.verify = verify


class TooLarge(Exception):
    """The reply's body (decompressed) is over the cap: the call failed, nothing is kept."""


MAX_REPLY_ENV = "OPRO_MAX_REPLY_MB"
DEFAULT_MAX_REPLY_MB = 8
"""A reply's body, decompressed, is read up to this size: a completion of the largest
``max_tokens`` any server takes is well under 1 MB of JSON."""

_CHUNK = 64 * 1024


def max_reply_bytes() -> int:
    """``$OPRO_MAX_REPLY_MB`` (default ``DEFAULT_MAX_REPLY_MB``) in bytes; an unreadable value
    is the default (it is read at every call, where a run cannot stop to ask)."""
    raw = os.environ.get(MAX_REPLY_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_REPLY_MB
    except ValueError:
        megabytes = DEFAULT_MAX_REPLY_MB
    if not 0 < megabytes < 1e7:
        megabytes = DEFAULT_MAX_REPLY_MB
    return int(megabytes * 1e6)


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, decompressed, read in chunks with a running total; ``TooLarge`` past
    ``limit`` bytes (a Content-Length over it is refused before any is read)."""
    declared = response.content_length
    encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if declared is not None and declared > limit and not encoded:
        response.close()  # the connection, with the rest of the body, is not reused
        raise TooLarge(f"the reply declares {declared} bytes, over the {limit / 1e6:g} MB cap")
    parts: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            response.close()
            raise TooLarge(f"the reply is over the {limit / 1e6:g} MB cap")
        parts.append(chunk)
    return b"".join(parts)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class JsonPoster:
    """POST JSON bodies to ``base_url + path``, with fixed headers and query; each request
    is logged at INFO as ``shown_url + path`` (the URL without its secrets) and the status."""

    def __init__(
        self,
        base_url: str,
        shown_url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        timeout_s: float,
        ssl_context: Callable[[], ssl.SSLContext],
    ) -> None:
        self.base_url = base_url
        self.shown_url = shown_url
        self.headers = dict(headers)
        self.query = dict(query)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.ssl_context = ssl_context
        self.proxy = env_proxy(base_url)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._forget()
            # TLS only for https (its context made once, then); plain http needs none.
            tls = self.ssl_context() if self.base_url.startswith("https:") else True
            connector = aiohttp.TCPConnector(limit=0, ssl=tls)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self.headers, timeout=self.timeout
            )
            self._loop = loop
        return self._session

    async def post(self, path: str, body: Mapping[str, object]) -> Reply:
        session = self._session_here()
        try:
            async with session.post(
                self.base_url + path, json=body, params=self.query or None, proxy=self.proxy
            ) as response:
                data = await read_capped(response, max_reply_bytes())
                if _log.isEnabledFor(logging.INFO):
                    _log.info("HTTP Request: POST %s%s %d", self.shown_url, path, response.status)
                return Reply(response.status, response.headers, data)
        except TimeoutError:
            raise TimedOut() from None
        except aiohttp.ClientSSLError as exc:  # before its base, ClientConnectorError
            raise _tls_failed(exc) from exc
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(str(exc)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise Broken(f"{type(exc).__name__}: {exc}") from exc

    def _forget(self) -> None:
        """Drop a session whose loop has gone without a warning about it: its connections
        belonged to that loop and went with it."""
        old, self._session = self._session, None
        if old is not None and not old.closed:
            old.detach()

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            session, self._session = self._session, None
            await session.close()
        self._forget()  # a session of another loop


def _tls_failed(exc: aiohttp.ClientSSLError) -> TlsFailed:
    """The cause of a failed TLS handshake in a few words (OpenSSL's own)."""
    error = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    verify = isinstance(error, ssl.SSLCertVerificationError)
    cause = getattr(error, "verify_message", None) or getattr(error, "reason", None)
    return TlsFailed(str(cause or error).replace("_", " ").lower(), verify=verify)
