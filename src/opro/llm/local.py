"""``local:NAME`` — a llama.cpp model embedded in this process (llama-cpp-python), offline.

The model is not thread-safe, so calls run one at a time, each from an empty KV cache:
an answer depends on the request alone, never on what ran before it (llama.cpp's prefix
reuse reads a prompt's tail in other batch sizes, which round differently, and a resumed
run would then diverge from an uninterrupted one). While calls queue, the next one is the
pending request sharing the longest prefix with the previous prompt (FIFO on ties), which
keeps related calls together. Sampling is seeded per request
(``Request.derived_seed``): the same request gives the same answer, and sample k differs
from sample j. A GBNF grammar constrains decoding when a request carries one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opro.errors import FatalLLMError, MissingDependency
from opro.llm.base import LLM, BackendOptions
from opro.llm.models import resolve_local
from opro.types import Completion, Request, Usage


@dataclass
class _Job:
    request: Request
    text: str
    """The text the model will see first (for prefix matching)."""
    future: asyncio.Future[Completion] = field(repr=False)


class LocalBackend(LLM):
    def __init__(self, name: str, options: BackendOptions) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise MissingDependency(
                "local: models need llama-cpp-python: pip install 'opro[local]'"
            ) from None
        self.path, default_api, self.display_name = resolve_local(name)
        self.spec = f"local:{name}"
        self.api = options.api or default_api
        self.n_ctx = options.n_ctx
        self.n_threads = options.n_threads or max(1, os.cpu_count() or 1)
        self._llama: Any = None
        self._grammars: dict[str, Any] = {}
        self._model_lock = threading.Lock()
        self._pending: list[_Job] = []
        self._last_text = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn: asyncio.Lock | None = None
        # The file's name and size stand for its content, without hashing 250 MB each run.
        self._identity: dict[str, Any] = {
            "spec": self.spec,
            "file": self.path.name,
            "bytes": self.path.stat().st_size,
            "api": self.api,
            "n_ctx": self.n_ctx,
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    async def complete(self, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        if self._turn is None or self._loop is not loop:
            self._loop, self._turn, self._pending = loop, asyncio.Lock(), []
        job = _Job(request, _leading_text(request, self.api), loop.create_future())
        self._pending.append(job)
        try:
            while not job.future.done():
                async with self._turn:
                    if job.future.done() or not self._pending:
                        break
                    await self._run_one(self._pick())
        finally:
            if job in self._pending:
                self._pending.remove(job)
        return job.future.result()

    def _pick(self) -> _Job:
        """The pending job sharing the longest prefix with the last prompt (FIFO on ties)."""
        last = self._last_text
        best = max(self._pending, key=lambda job: len(os.path.commonprefix([last, job.text])))  # noqa: RUF071
        self._pending.remove(best)
        return best

    async def _run_one(self, job: _Job) -> None:
        self._last_text = job.text
        try:
            result = await asyncio.to_thread(self._generate, job.request)
        except asyncio.CancelledError:
            if not job.future.done():  # the runner was cancelled, not the job's owner
                self._pending.insert(0, job)
            raise
        except Exception as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(result)

    def _load(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            _route_llama_logs()

            self._llama = Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                verbose=False,
            )
        return self._llama

    def _grammar(self, text: str | None) -> Any:
        """A checked grammar: llama-cpp-python hands llama.cpp a grammar unchecked and
        crashes on one that does not parse, so parse it once here and say why it failed."""
        if text is None:
            return None
        if text not in self._grammars:
            import llama_cpp
            from llama_cpp.llama_grammar import LlamaGrammar

            vocab = self._load()._model.vocab
            with _captured_stderr() as captured:
                sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root")
            if not sampler:
                reason = " ".join("".join(captured).split()) or "it does not parse"
                raise FatalLLMError(f"invalid GBNF grammar ({reason[:200]}): fix the grammar text")
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def _generate(self, request: Request) -> Completion:
        with self._model_lock:
            llama = self._load()
            # Start from an empty KV cache: reusing the previous prompt's prefix makes llama.cpp
            # read only the rest, in differently sized batches whose rounding differs, so the
            # answer would depend on what ran before — and a resumed run would diverge.
            llama.reset()
            sampling: dict[str, Any] = {
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
                # A plain temperature sampler, as hosted APIs use by default.
                "top_p": 1.0,
                "top_k": 0,
                "min_p": 0.0,
                "repeat_penalty": 1.0,
                "stop": list(request.stop),
                "seed": request.derived_seed(),
                "grammar": self._grammar(request.grammar),
            }
            try:
                if self.api == "chat":
                    messages = []
                    if request.system is not None:
                        messages.append({"role": "system", "content": request.system})
                    messages.append({"role": "user", "content": request.prompt})
                    out = llama.create_chat_completion(messages=messages, **sampling)
                    text = out["choices"][0]["message"]["content"] or ""
                else:
                    out = llama.create_completion(
                        prompt=_leading_text(request, "completion"), **sampling
                    )
                    text = out["choices"][0]["text"]
            except ValueError as exc:  # e.g. the prompt does not fit the context window
                raise FatalLLMError(
                    f"{self.spec}: {exc}: shorten the prompt or raise --n-ctx"
                ) from None
        usage = out.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=out["choices"][0].get("finish_reason"),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=self.display_name,
        )

    async def aclose(self) -> None:
        with self._model_lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptor 2 (llama.cpp's grammar parser does);
    the text is in the yielded list once the block ends."""
    captured: list[str] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read())


@functools.cache
def _route_llama_logs() -> None:
    """Send llama.cpp's own log lines to ``logging`` (debug level) instead of stderr."""
    import llama_cpp

    llama_log = logging.getLogger("opro.llama_cpp")

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        llama_log.debug("%s", text.decode("utf-8", "replace").rstrip())

    _LOG_CALLBACKS.append(forward)  # ctypes callbacks must outlive the C library's use
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))


_LOG_CALLBACKS: list[Any] = []


def _leading_text(request: Request, api: str) -> str:
    if api == "completion" and request.system is not None:
        return request.system + "\n\n" + request.prompt
    return (request.system or "") + request.prompt


def model_path(spec_name: str) -> Path:
    """The GGUF file behind ``local:NAME`` (for starting llama.cpp's server on it)."""
    return resolve_local(spec_name)[0]
