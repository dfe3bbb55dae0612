"""``openai:MODEL`` — OpenAI and every OpenAI-compatible server: vLLM, Ollama, llama.cpp's
server, LM Studio, Gemini's compatible endpoint...

Chat by default (the prompt is one user turn); ``api="completion"`` sends raw text for base
models. The body is the one the OpenAI SDK's ``create`` sends, posted over aiohttp
(``opro.llm.http``: a sixth of the SDK's CPU a call, measured); nothing retries here:
``opro.llm.limits`` retries, re-sending the very same request. HTTP failures are mapped
onto the error tree here and only here; so is a malformed 200 reply (no choices, not JSON,
no message, a null content): a ``TransientLLMError``, retried like a 500 and never cached.
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.metadata
import json
import os
import re
import socket
import ssl
import urllib.parse
from typing import Any, Literal, NotRequired, Required, TypedDict

import aiohttp

from opro.errors import ConfigError, FatalLLMError, TransientLLMError, Unreachable, redact
from opro.llm import http
from opro.llm.base import LLM, BackendOptions, Identity, TokenLimit
from opro.llm.config import redact_url, url_secrets
from opro.llm.http import JsonPoster
from opro.llm.limits import parse_retry_after
from opro.types import Completion, Request, Usage

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
TRANSIENT_STATUS = frozenset({408, 409, 429})
NO_KEY_PLACEHOLDER = "no-key"  # local servers accept any key; the SDK insists on one, so do we


class ChatMessage(TypedDict):
    role: Literal["system", "user"]
    content: str


class RequestBody(TypedDict, total=False):
    """The body of ``POST /chat/completions`` (``messages``) or ``/completions``
    (``prompt``), as the SDK's ``create`` sends it; ``grammar`` is llama.cpp's."""

    model: Required[str]
    max_tokens: int
    max_completion_tokens: int
    temperature: float
    stop: list[str]
    seed: int
    grammar: str
    messages: list[ChatMessage]
    prompt: str


class Choice(TypedDict):
    index: int
    finish_reason: str
    message: NotRequired[ReplyMessage]  # a chat completion's
    text: NotRequired[str | None]  # a text completion's
    logprobs: NotRequired[None]


class ReplyMessage(TypedDict):
    role: str
    content: str | None


class UsageCounts(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: NotRequired[int]


class CompletionReply(TypedDict):
    """A server's reply, as it should be (the stub server's); ``_completion`` trusts none
    of it."""

    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: UsageCounts


class OpenAIBackend(LLM):
    def __init__(self, model: str, options: BackendOptions) -> None:
        self.spec = f"openai:{model}"
        self.model = model
        self.api = options.api or "chat"
        self.base_url = _base_url(options.base_url or os.environ.get("OPENAI_BASE_URL"))
        self._key_env = options.api_key_env or DEFAULT_KEY_ENV
        key = env_key(self._key_env)
        if not key:
            if options.api_key_env:
                raise ConfigError(
                    f"the variable {self._key_env} (named by --*-api-key-env) is not set: "
                    f"export {self._key_env}=YOUR_KEY"
                )
            if self.base_url is None:
                raise ConfigError(
                    f"{DEFAULT_KEY_ENV} is not set: export {DEFAULT_KEY_ENV}=YOUR_KEY, or point "
                    "--*-base-url (or OPENAI_BASE_URL) at an OpenAI-compatible server"
                )
            key = NO_KEY_PLACEHOLDER
        self._key = key
        # A query in the base URL (``?api-key=...``, ``?api-version=...``) goes with every
        # request, after the endpoint's path.
        url, _, query = (self.base_url or DEFAULT_BASE_URL).partition("?")
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            # Credentials in the URL (a gateway's basic auth) replace the key, as the SDK's
            # httpx client does; they are sent as a header, not in the URL.
            login = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
            url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        headers["User-Agent"] = f"opro/{_version()}"
        # As the SDK does: an organisation and project from the environment, if set.
        for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"),
                                 ("OPENAI_PROJECT_ID", "OpenAI-Project")):  # fmt: skip
            if os.environ.get(variable, "").strip():
                headers[header] = env_key(variable)
        self._http = JsonPoster(
            url,
            redact_url(url),
            headers,
            dict(urllib.parse.parse_qsl(query)),
            options.timeout_s,
            _ssl_context,
        )
        self._connected_once = False
        self._token_limit: TokenLimit = options.token_limit or "max_tokens"
        self._token_limit_named = options.token_limit is not None

    def identity(self) -> Identity:
        # The URL without its secrets: a cache key holds none, and outlives a rotated one.
        url = None if self.base_url is None else redact_url(self.base_url)
        return {"spec": self.spec, "base_url": url, "api": self.api}

    def secrets(self) -> tuple[str, ...]:
        key = (self._key,) if self._key != NO_KEY_PLACEHOLDER else ()
        return key + (url_secrets(self.base_url) if self.base_url else ())

    async def complete(self, request: Request) -> Completion:
        sent = self._token_limit
        try:
            return await self._complete(request, sent)
        except FatalLLMError as exc:
            named = "max_completion_tokens" in str(exc)
            if self._token_limit_named or sent != "max_tokens" or not named:
                raise
            # A reasoning model refuses max_tokens and names its field: use that from now.
            self._token_limit = "max_completion_tokens"
            return await self._complete(request, self._token_limit)

    async def _complete(self, request: Request, token_limit: TokenLimit) -> Completion:
        # The body as ``chat.completions.create`` / ``completions.create`` would send it, posted
        # through the same client (errors, timeouts, headers, the reply's types): ``create``
        # first walks every argument through the SDK's TypedDict transform, about a fifth of
        # the client's CPU per call, which leaves plain strings and numbers as they are.
        body: RequestBody = {"model": self.model}
        body[token_limit] = request.max_tokens
        body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.derived_seed()
        if request.grammar is not None:
            body["grammar"] = request.grammar  # llama.cpp server
        if self.api == "chat":
            messages: list[ChatMessage] = []
            if request.system is not None:
                messages.append({"role": "system", "content": request.system})
            messages.append({"role": "user", "content": request.prompt})
            body["messages"] = messages
            path = "/chat/completions"
        else:
            prompt = request.prompt
            body["prompt"] = prompt if request.system is None else f"{request.system}\n\n{prompt}"
            path = "/completions"
        try:
            reply = await self._http.post(path, body)
        except http.TimedOut:
            raise TransientLLMError(f"{self.spec}: request timed out") from None
        except http.TlsFailed as exc:
            raise FatalLLMError(self._tls_failure(exc)) from None
        except http.TooLarge as exc:
            # Never scored, never cached: a failed call, as a malformed reply is.
            raise self._malformed(str(exc)) from None
        except (http.Unreachable, http.Broken) as exc:
            if isinstance(exc, http.Unreachable) and _refused(exc) and not self._connected_once:
                where = redact_url(self.base_url or DEFAULT_BASE_URL)
                raise Unreachable(
                    f"cannot connect to {where}: start the server, or fix --*-base-url / "
                    "OPENAI_BASE_URL"
                ) from None
            raise TransientLLMError(
                f"{self.spec}: connection failed ({self._clean(exc)})"
            ) from None
        self._connected_once = True
        if reply.status >= 400:
            raise self._map_status(reply)
        try:
            data = json.loads(reply.body)
        except (ValueError, UnicodeError):
            # A 200 whose body is not JSON (a proxy's error page, a cut-off body): as a 500,
            # it is worth retrying; it is never cached.
            raise self._malformed("not JSON") from None
        return self._completion(data, request)

    def _completion(self, reply: Any, request: Request) -> Completion:
        """The ``Completion`` in a decoded reply, or a ``TransientLLMError`` when it lacks
        what every OpenAI-compatible server sends."""
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or not choices:
            raise self._malformed("no choices")
        choice = choices[0]
        if not isinstance(choice, dict):
            raise self._malformed(f"a choice that is {type(choice).__name__}")
        if self.api == "chat":
            message = choice.get("message")
            if not isinstance(message, dict):
                raise self._malformed("a choice without a message")
            text = message.get("content")
        else:
            text = choice.get("text")
        if not isinstance(text, str):  # a null content is no answer, not an empty one
            raise self._malformed(f"the answer is {type(text).__name__}, not text")
        if not text.isascii():
            # "\\ud800" alone in the JSON is no text: each such escape becomes U+FFFD, so
            # that the answer can be stored, printed and cached.
            text = _SURROGATE.sub("\ufffd", text)
        finish = choice.get("finish_reason")
        model = reply.get("model")
        try:
            usage = _usage(reply.get("usage"), request, text)
        except ValueError as exc:
            raise self._malformed(f"absurd {exc}") from None
        return Completion(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage,
            model=model if isinstance(model, str) and model else self.model,
        )

    def _tls_failure(self, exc: http.TlsFailed) -> str:
        """Why a TLS connection failed, and the fix: retrying cannot help."""
        where = redact_url(self.base_url or DEFAULT_BASE_URL)
        if exc.verify:
            return (
                f"{self.spec}: the TLS certificate of {where} is not trusted ({exc}): point "
                "SSL_CERT_FILE at the CA certificate that signed it, or use http:// for a "
                "server without TLS"
            )
        return (
            f"{self.spec}: no TLS connection to {where} ({exc}): is it a plain-http server? "
            "Then give its base URL with http://"
        )

    def _malformed(self, what: str) -> TransientLLMError:
        return TransientLLMError(f"{self.spec}: a malformed reply ({what})")

    def _map_status(self, reply: http.Reply) -> Exception:
        status = reply.status
        detail = self._clean(_error_detail(reply))
        if status in TRANSIENT_STATUS or status >= 500:
            return TransientLLMError(
                f"{self.spec}: HTTP {status} ({detail})",
                retry_after=parse_retry_after(reply.headers),
            )
        if status == 401:
            return FatalLLMError(
                f"{self.spec}: the server refused the API key (401): check the key in "
                f"{self._key_env}, or name another variable with --*-api-key-env"
            )
        if status == 403:
            return FatalLLMError(
                f"{self.spec}: permission denied (403): the key in {self._key_env} may not "
                f"use model {self.model!r}"
            )
        if status == 404:
            return FatalLLMError(
                f"{self.spec}: not found (404): unknown model {self.model!r} or wrong base URL "
                f"{redact_url(self.base_url or 'https://api.openai.com/v1')}; check the model "
                "name the "
                "server lists at GET /models"
            )
        return FatalLLMError(f"{self.spec}: the server rejected the request ({status}): {detail}")

    def _clean(self, what: Exception | str) -> str:
        text = " ".join(str(what).split())[:300]
        return redact(text, list(self.secrets()))

    async def aclose(self) -> None:
        await self._http.aclose()


def _error_detail(reply: http.Reply) -> str:
    """What an error reply says: its JSON ``error.message`` (OpenAI's shape), else its text."""
    text = reply.body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text or "no body"
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f"Error code: {reply.status} - {message if isinstance(message, str) else text}"


def _version() -> str:
    return importlib.metadata.version("opro")


_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate left alone in decoded JSON (a pair is one character by then)."""


def env_key(variable: str) -> str:
    """The key in ``$variable`` without surrounding whitespace (a key read from a file with
    CRLF lines ends in "\\r"); a ``ConfigError`` naming the variable where what is left
    cannot go in an HTTP header (a control character, a non-Latin-1 character)."""
    key = os.environ.get(variable, "").strip()
    bad = next((c for c in key if ord(c) < 32 or ord(c) == 127 or ord(c) > 255), None)
    if bad is not None:
        raise ConfigError(
            f"the API key in {variable} holds the character {bad!a}, which no HTTP "
            f"header can carry: export {variable} again with the key alone"
        )
    return key


MAX_USAGE_TOKENS = 10**9
"""More tokens than any call could use: a reply's usage over it is a malformed reply."""


def _usage(usage: Any, request: Request, text: str) -> Usage:
    """The reply's token counts; where a server leaves them out (or sends nonsense), an
    estimate (~4 characters a token), so that token and dollar caps still count the call."""
    names = ("prompt_tokens", "completion_tokens")
    counts = [usage.get(name) if isinstance(usage, dict) else None for name in names]
    if all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        if any(c > MAX_USAGE_TOKENS for c in counts):  # type: ignore[operator]
            # 1e308 tokens would make the cost infinite (and steps.jsonl unreadable).
            raise ValueError(f"usage of over {MAX_USAGE_TOKENS:.0e} tokens")
        return Usage(counts[0], counts[1])  # type: ignore[arg-type]
    prompt = len(request.prompt) + len(request.system or "")
    return Usage(prompt // 4 + 1, len(text) // 4 + 1)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The TLS context the SDK's HTTP client would make for itself, once (``httpx2`` or, with
    older SDKs, ``httpx``: its ``create_ssl_context``, honouring SSL_CERT_FILE/DIR). Made at
    the first https request: importing the SDK takes most of a second, which a local
    server's plain http never pays."""
    import openai

    library = next(
        cls.__module__.partition(".")[0]
        for cls in openai.DefaultAsyncHttpxClient.__mro__
        if cls.__module__.startswith("httpx")
    )
    context: ssl.SSLContext = importlib.import_module(library).create_ssl_context()
    return context


def _base_url(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"base URL {redact_url(url)!r} must start with http:// or https://, e.g. "
            "http://127.0.0.1:8000/v1"
        )
    return url.rstrip("/")


def _refused(exc: BaseException) -> bool:
    """Whether the connection could not be opened at all (refused, no such host)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        if isinstance(seen, aiohttp.ClientConnectorDNSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
