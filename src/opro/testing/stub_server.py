"""A small OpenAI-compatible HTTP server with injected latency and faults, on loopback.

For tests and benchmarks of the LLM layer: it answers ``POST /v1/chat/completions`` and
``POST /v1/completions`` (and ``GET /v1/models``) after ``latency_s``, and for each request
takes the next fault from a plan: ``ok``, an HTTP status (``429`` with Retry-After, ``500``,
``401``...), ``drop`` (close the connection without answering), ``slow`` (answer after
``slow_s``, past a client's timeout) or a malformed 200 reply (``MALFORMED``: no choices,
invalid JSON, an HTML page, a choice without its message, a null content), a reply too big
to keep (``OVERSIZED``: ``huge``, a valid answer of ``big_bytes`` sent without a
Content-Length; ``gzip_bomb``, a small gzip body that inflates to ``big_bytes``) or
``absurd_usage`` (a valid answer whose usage counts 10**309 tokens). Every request
body is recorded; what is not HTTP (a TLS handshake) is answered 400, as servers do, and
``tls`` serves https instead. ``max_concurrency`` makes it a server of bounded capacity (as
vLLM's batch size): that many requests are served at once, the others wait in line.

Run it standalone (for a benchmark in a separate process)::

    python -m opro.testing.stub_server --latency 0.5 [--port 0] [--max-concurrency 4]
    # prints its base URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import random
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the wire format, as opro's client knows it
    from opro.llm.openai import Choice, CompletionReply, RequestBody, UsageCounts

Fault = str
FaultPlan = Callable[[int], Fault]
"""Request number (0-based, in arrival order) → fault."""

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            503: "Service Unavailable"}  # fmt: skip


MALFORMED: tuple[Fault, ...] = (
    "empty_choices",
    "bad_json",
    "html",
    "no_message",
    "null_content",
)
"""Faults answering 200 with a body no OpenAI-compatible client can use."""


OVERSIZED: tuple[Fault, ...] = ("huge", "gzip_bomb")
"""Faults answering 200 with a body over ``big_bytes`` (decompressed)."""


def plan_from(faults: Sequence[Fault]) -> FaultPlan:
    """Faults in order for the first requests, then ``ok``."""
    return lambda i: faults[i] if i < len(faults) else "ok"


def random_plan(
    rate: float, seed: int, kinds: Sequence[Fault] = ("429", "500", "drop", "slow")
) -> FaultPlan:
    """Each request fails with probability ``rate``, with a kind drawn from ``kinds``."""

    def plan(i: int) -> Fault:
        rng = random.Random(seed * 1_000_003 + i)
        return rng.choice(list(kinds)) if rng.random() < rate else "ok"

    return plan


def default_reply(body: RequestBody) -> str:
    prompt = body.get("prompt") or body["messages"][-1]["content"]
    return (
        f"reply to {len(str(prompt))} chars, t={body.get('temperature')}, seed={body.get('seed')}"
    )


@dataclass
class StubServer:
    latency_s: float = 0.0
    plan: FaultPlan = field(default=lambda i: "ok")
    retry_after: str | None = "1"
    slow_s: float = 5.0
    reply: Callable[[RequestBody], str] = default_reply
    max_concurrency: int | None = None
    """Requests served at once (the others queue); None: no limit."""
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RequestBody] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    reasoning: bool = False
    """Answer as OpenAI's reasoning models do: a request with ``max_tokens`` is refused (400),
    naming ``max_completion_tokens``."""
    targets: list[str] = field(default_factory=list)
    """Each request's path and query, as sent."""
    big_bytes: int = 2_000_000
    """The decompressed size of an ``OVERSIZED`` fault's body."""
    tls: ssl.SSLContext | None = None
    """Serve https with this context (its certificate loaded); None: plain http."""

    def __post_init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._slots: asyncio.Semaphore | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/v1"

    # -- serving ------------------------------------------------------------------

    async def serve(self) -> None:
        if self.max_concurrency is not None:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, backlog=1024, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                first = await reader.readexactly(1)
                if not first.isalpha():  # not HTTP (a TLS handshake): refused, as servers do
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    return
                head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                path = target.partition("?")[0]  # a base URL may carry a query (?api-key=)
                self.targets.append(target)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body_bytes = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._respond(method, path, headers, body_bytes, writer):
                    return
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        raw: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if method == "GET" and path.endswith("/models"):
            self._write(
                writer, 200, {"object": "list", "data": [{"id": "stub", "object": "model"}]}
            )
            await writer.drain()
            return True
        body: RequestBody = json.loads(raw or b"{}")
        with self._lock:
            number = self._count
            self._count += 1
            self.requests.append(body)
            self.headers_seen.append(headers)
        fault = self.plan(number)
        async with self._slots or contextlib.nullcontext():
            await asyncio.sleep(self.latency_s)
            if fault == "drop":
                return False
            if fault == "slow":
                await asyncio.sleep(self.slow_s)
        if self.reasoning and "max_tokens" in body:
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead."
            )
            error = {"message": message, "type": "invalid_request_error", "param": "max_tokens"}
            self._write(writer, 400, {"error": error})
        elif fault in MALFORMED:
            self._write_raw(writer, *self._malformed(fault, path, body))
        elif fault in OVERSIZED:
            return await self._oversized(fault, path, body, writer)
        elif fault == "absurd_usage":
            reply = self._completion(path, body)
            reply["usage"] = {"prompt_tokens": 10**309, "completion_tokens": 10**309}
            self._write(writer, 200, reply)
        elif fault.isdigit() and fault != "200":
            status = int(fault)
            extra = {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
            self._write(
                writer, status, {"error": {"message": f"injected {status}", "type": "stub"}}, extra
            )
        else:
            self._write(writer, 200, self._completion(path, body))
        await writer.drain()
        return True

    def _completion(self, path: str, body: RequestBody) -> CompletionReply:
        text = self.reply(body)
        usage: UsageCounts = {
            "prompt_tokens": 10,
            "completion_tokens": len(text.split()),
            "total_tokens": 10 + len(text.split()),
        }
        if path.endswith("/chat/completions"):
            choice: Choice = {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": text},
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}
            kind = "text_completion"
        return {
            "id": "stub-1",
            "object": kind,
            "created": 0,
            "model": body.get("model", "stub"),
            "choices": [choice],
            "usage": usage,
        }

    async def _oversized(
        self, fault: Fault, path: str, body: RequestBody, writer: asyncio.StreamWriter
    ) -> bool:
        """A valid answer of ``big_bytes``: as is, until the connection closes (no length),
        or gzipped (a bomb: ~1,000 times smaller on the wire)."""
        reply = self._completion(path, body)
        key = "message" if "message" in reply["choices"][0] else None
        filler = " " * self.big_bytes  # compresses as well as zeros, and is valid JSON text
        if key:
            reply["choices"][0]["message"]["content"] = filler
        else:
            reply["choices"][0]["text"] = filler
        data = json.dumps(reply).encode()
        head = ["HTTP/1.1 200 OK", "Content-Type: application/json"]
        if fault == "gzip_bomb":
            data = gzip.compress(data, compresslevel=9)
            head += ["Content-Encoding: gzip", f"Content-Length: {len(data)}"]
            head += ["Connection: keep-alive"]
        else:
            head += ["Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(data), 1 << 16):
                writer.write(data[start : start + (1 << 16)])
                await writer.drain()
        return fault == "gzip_bomb"

    def _malformed(self, fault: Fault, path: str, body: RequestBody) -> tuple[bytes, str]:
        """The body and content type of a malformed 200 reply."""
        if fault == "bad_json":
            return b'{"id": "stub-1", "choices": [', "application/json"
        if fault == "html":
            page = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
            return page, "text/html"
        reply = self._completion(path, body)
        if fault == "empty_choices":
            reply["choices"] = []
        elif fault == "no_message":
            choice = reply["choices"][0]
            if "message" in choice:
                choice.pop("message")
            else:
                choice.pop("text")
        else:  # null_content
            key = "message" if "message" in reply["choices"][0] else None
            if key:
                reply["choices"][0]["message"]["content"] = None
            else:
                reply["choices"][0]["text"] = None
        return json.dumps(reply).encode(), "application/json"

    @staticmethod
    def _write_raw(writer: asyncio.StreamWriter, data: bytes, content_type: str) -> None:
        head = [
            "HTTP/1.1 200 OK",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(data)}",
            "Connection: keep-alive",
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    @staticmethod
    def _write(
        writer: asyncio.StreamWriter,
        status: int,
        payload: Mapping[str, object],
        extra: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            "Connection: keep-alive",
        ]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    # -- in a background thread ------------------------------------------------------

    def start(self) -> StubServer:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="stub-openai-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Close the server, dropping the requests in flight (as a killed server); once."""
        if self._loop is not None and self._server is not None:
            loop, server = self._loop, self._server
            self._server = None

            async def shutdown() -> None:
                server.close()
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()

            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def stub_process(
    latency_s: float, max_concurrency: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A stub server in a process of its own (so that a benchmark's client CPU is the
    client's): the process and its base URL; terminated on exit."""
    flags = ["--latency", str(latency_s)]
    flags += [] if max_concurrency is None else ["--max-concurrency", str(max_concurrency)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "opro.testing.stub_server", *flags],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip() if proc.stdout is not None else ""
        if not url.startswith("http"):
            raise RuntimeError("the stub server did not start")
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-concurrency", type=int, default=None)
    args = parser.parse_args()
    server = StubServer(
        latency_s=args.latency, port=args.port, max_concurrency=args.max_concurrency
    )

    async def run() -> None:
        await server.serve()
        print(server.url, flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
