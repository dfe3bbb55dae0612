"""``local:NAME`` — a llama.cpp model embedded in this process (llama-cpp-python), offline.

The model is not thread-safe: one lock serialises every use of it, on the one thread that
runs every embedded model (``_on_worker``), so that the event loop stays free. Requests
queue in ``_pending``; whichever caller holds ``_turn`` drives the model for everyone, one
round at a time, until its own request is answered:

* Completion-style requests without a grammar are batched (``batch.py``). A round hands
  every pending one to the ``BatchEngine``, which seats as many at a time as it has slots
  (each with its own KV cache, so the engine grows with the demand, up to ``max_batch``),
  and runs one engine step: the prompts of newly seated sequences, then one token for
  each sequence. The worker thread answers finished requests itself
  (``call_soon_threadsafe``), so nothing is lost when the caller driving the round is
  cancelled. A request's greedy text does not depend on what else shares its batch; a
  sampled one draws from its own generator, seeded with ``Request.derived_seed``.
* Chat requests and grammar-constrained ones (a GBNF grammar, checked before use) run one
  at a time through llama-cpp-python once the batch has drained (no batched work is
  handed over while one waits), each from an empty KV cache: llama.cpp's prefix reuse
  would read a prompt's tail in other batch sizes, which round differently, so an answer
  would depend on what ran before it (and a resumed run would diverge from an
  uninterrupted one). The next of them is the pending one whose prompt shares the longest
  prefix with the previous prompt (FIFO on ties), which keeps related calls together.

A caller that is cancelled just leaves: its sequence is dropped at the next step, the
others go on. ``max_batch=1`` turns batching off: every request then takes the one-at-a-
time path, whose greedy text is that of llama-cpp-python's ``Llama.__call__``. Batched
decoding runs other CPU kernels, which round differently, so a greedy continuation can part
from that one at a near-tie (8 of the 50 64-token continuations of
``benchmarks/embedded_scoring.py`` do); ``identity()`` tells the two apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from opro.errors import FatalLLMError, MissingDependency
from opro.llm import batch
from opro.llm.base import LLM, BackendOptions, Identity
from opro.llm.llama_logs import captured_stderr, route_llama_logs
from opro.llm.models import resolve_local
from opro.types import Completion, Request, Usage

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import LlamaGrammar

T = TypeVar("T")


def default_batch(n_ctx: int) -> int:
    """The most sequences decoded together: 24 at ``n_ctx`` 2048, fewer for a longer context.
    Each has its own KV cache (about 18 MB at 2048), allocated as the demand grows: 24 take
    an embedded run from about 0.45 GB to 0.9 GB. On 2 cores benchmarks/embedded_scoring.py
    ran 8, 16 and 24 at 5-6, 6.4-7.2 and 6.8-8.2 examples/s (the naive loop: 4.6-5.3)."""
    return max(batch.PAD_ROWS, min(24, 24 * 2048 // max(1, n_ctx) // 4 * 4))


@dataclass(eq=False)
class _Job:
    request: Request
    text: str
    """The text the model will see first (for prefix matching)."""
    future: asyncio.Future[Completion] = field(repr=False)
    abandoned: bool = False
    """Its caller is gone: drop its sequence instead of finishing it."""


class LocalBackend(LLM):
    def __init__(self, name: str, options: BackendOptions, *, max_batch: int | None = None) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise MissingDependency(
                "local: models need llama-cpp-python: pip install 'opro[local]'"
            ) from None
        max_batch = default_batch(options.n_ctx) if max_batch is None else max_batch
        if max_batch != 1 and (max_batch < 4 or max_batch % 4):
            raise ValueError(f"max_batch must be 1 or a multiple of 4: {max_batch}")
        self.path, default_api, self.display_name = resolve_local(name)
        self.spec = f"local:{name}"
        self.api = options.api or default_api
        self.n_ctx = options.n_ctx
        self.n_threads = options.n_threads or max(1, os.cpu_count() or 1)
        self.max_batch = max_batch
        self._llama: Any = None
        self._engine: batch.BatchEngine | None = None
        self._engine_epoch = 0
        self._grammars: dict[str, LlamaGrammar] = {}
        self._model_lock = threading.Lock()
        self._pending: list[_Job] = []
        self._in_flight: set[_Job] = set()
        self._epoch = 0
        self._last_text = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn: asyncio.Lock | None = None
        # The file's name and size stand for its content, without hashing 250 MB each run;
        # batched decoding rounds differently from one-at-a-time decoding (docstring).
        self._identity: Identity = {
            "spec": self.spec,
            "file": self.path.name,
            "bytes": self.path.stat().st_size,
            "api": self.api,
            "n_ctx": self.n_ctx,
            "decoding": "sequential" if max_batch == 1 else f"batched-{min(max_batch, 8)}",
        }

    def identity(self) -> Identity:
        return self._identity

    # --- scheduling (event loop) -------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        loop = asyncio.get_running_loop()
        if self._turn is None or self._loop is not loop:
            self._loop, self._turn = loop, asyncio.Lock()
            self._pending, self._in_flight = [], set()
            self._epoch += 1  # sequences of a former loop are dropped at the next step
        job = _Job(request, _leading_text(request, self.api), loop.create_future())
        self._pending.append(job)
        try:
            await self._let_arrive()
            while not job.future.done():
                async with self._turn:
                    if not job.future.done():
                        await self._run_round(loop)
        finally:
            if job in self._pending:
                self._pending.remove(job)
            job.abandoned = not job.future.done()
        return job.future.result()

    async def _let_arrive(self) -> None:
        """Yield until no request arrived for 3 turns of the event loop (at most 50): the
        requests submitted together are handed over, and sized for, together."""
        quiet = 0
        for _ in range(50):
            seen = len(self._pending)
            await asyncio.sleep(0)
            quiet = quiet + 1 if len(self._pending) == seen else 0
            if quiet == 3:
                return

    def _batchable(self, request: Request) -> bool:
        return self.max_batch > 1 and self.api == "completion" and request.grammar is None

    async def _run_round(self, loop: asyncio.AbstractEventLoop) -> None:
        solo = [job for job in self._pending if not self._batchable(job.request)]
        if solo and not self._in_flight:
            await self._run_one(self._pick(solo))
            return
        admit: list[_Job] = []
        if not solo:  # else let the batch drain, then run the solo job
            admit, self._pending = self._pending, []
            self._in_flight.update(admit)
        # Shielded: a queued round that its driver's cancellation called off would strand
        # the jobs it took over; this way it runs, and answers them, all the same.
        await asyncio.shield(self._on_worker(self._batch_round, admit, loop, self._epoch))

    async def _on_worker(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the thread that runs every embedded model of this process."""
        return await asyncio.get_running_loop().run_in_executor(
            batch.llama_thread(), functools.partial(fn, *args)
        )

    def _pick(self, candidates: list[_Job]) -> _Job:
        """Of ``candidates`` (pending jobs), the one sharing the longest prefix with the last
        prompt (FIFO on ties)."""
        last = self._last_text
        best = max(
            candidates,
            key=lambda job: len(os.path.commonprefix([last, job.text])),  # noqa: RUF071
        )
        self._pending.remove(best)
        return best

    async def _run_one(self, job: _Job) -> None:
        self._last_text = job.text
        try:
            result = await self._on_worker(self._generate, job.request)
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

    def _settle(
        self, loop: asyncio.AbstractEventLoop, job: _Job, outcome: Completion | Exception
    ) -> None:
        """Answer ``job`` on its event loop (called from the worker thread)."""

        def apply() -> None:
            self._in_flight.discard(job)
            if job.future.done():
                return
            if job.abandoned:
                job.future.cancel()
            elif isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(apply)

    # --- the model (worker thread, under the model lock) ---------------------------------

    def _batch_round(self, admit: list[_Job], loop: asyncio.AbstractEventLoop, epoch: int) -> None:
        with self._model_lock:
            if epoch < self._engine_epoch:
                return  # a round of an event loop that has gone
            try:
                engine = self._batch_engine(epoch, len(admit))
            except RuntimeError as exc:  # llama.cpp could not make the context (memory)
                error = FatalLLMError(f"{self.spec}: {exc}: lower `n_ctx`")
                for job in admit:
                    self._settle(loop, job, error)
                return
            except Exception as exc:
                for job in admit:
                    self._settle(loop, job, exc)
                return
            for job in admit:
                try:
                    engine.add(self._sequence(job))
                except batch.PromptTooLong as exc:
                    self._settle(loop, job, FatalLLMError(f"{self.spec}: {exc}: {_N_CTX_FIX}"))
                except Exception as exc:
                    self._settle(loop, job, exc)
            for seq in engine.sequences():
                if seq.key.abandoned:
                    engine.drop(seq)
                    self._settle(loop, seq.key, Completion(""))
            try:
                finished = engine.step()
            except RuntimeError as exc:  # llama_decode failed
                error = FatalLLMError(f"{self.spec}: {exc}: lower `n_ctx` or the concurrency")
                for seq in engine.drop_all():
                    self._settle(loop, seq.key, error)
                return
            except Exception as exc:
                for seq in engine.drop_all():
                    self._settle(loop, seq.key, exc)
                return
            for seq in finished:
                completion = Completion(
                    text=seq.text,
                    finish_reason=seq.finish_reason,
                    usage=Usage(len(seq.prompt), len(seq.tokens)),
                    model=self.display_name,
                )
                self._settle(loop, seq.key, completion)

    def _batch_engine(self, epoch: int, arriving: int) -> batch.BatchEngine:
        """The engine, with enough slots for what is in flight (up to ``max_batch``): each
        slot's KV cache costs memory, so the engine is made anew, larger, once it is idle
        and more sequences arrive than it has slots. Its size does not change any text."""
        engine = self._engine
        if engine is not None and self._engine_epoch < epoch:
            engine.drop_all()  # their event loop has gone
        self._engine_epoch = epoch
        in_flight = arriving + (0 if engine is None else len(engine.sequences()))
        slots = min(self.max_batch, max(batch.PAD_ROWS, -(-in_flight // 4) * 4))
        if engine is not None and engine.n_slots < slots and not engine.sequences():
            engine.close()
            engine = self._engine = None
        if engine is None:
            engine = self._engine = batch.BatchEngine(
                self._load()._model.model,
                n_ctx=self.n_ctx,
                n_slots=slots,
                n_threads=self.n_threads,
            )
        return engine

    def _sequence(self, job: _Job) -> batch.Sequence:
        request = job.request
        return batch.Sequence(
            key=job,
            prompt=batch.prompt_tokens(self._load(), _leading_text(request, "completion")),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            seed=request.derived_seed(),
            stop=tuple(s.encode() for s in request.stop if s),
            shape=request.shape,
        )

    def _load(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            route_llama_logs()

            try:
                self._llama = Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=False,
                )
            except ValueError as exc:  # a damaged GGUF file: llama.cpp refuses it
                raise FatalLLMError(
                    f"{self.spec}: llama.cpp cannot load {self.path} ({exc}): give another "
                    "model file"
                ) from None
        return self._llama

    def _grammar(self, text: str | None) -> LlamaGrammar | None:
        """A checked grammar: llama-cpp-python hands llama.cpp a grammar unchecked and
        crashes on one that does not parse, so parse it once here and say why it failed."""
        if text is None:
            return None
        if text not in self._grammars:
            import llama_cpp
            from llama_cpp.llama_grammar import LlamaGrammar

            vocab = self._load()._model.vocab
            with captured_stderr() as captured:
                sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root")
            if not sampler:
                reason = " ".join("".join(captured).split()) or "it does not parse"
                raise FatalLLMError(f"invalid GBNF grammar ({reason[:200]}): fix the grammar text")
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def _generate(self, request: Request) -> Completion:
        """One request through llama-cpp-python's own (one-sequence) decoding."""
        with self._model_lock:
            llama = self._load()
            llama.reset()  # an empty KV cache: see the module docstring
            sampling: dict[str, object] = {  # llama-cpp-python's keyword arguments
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
                raise FatalLLMError(f"{self.spec}: {exc}: {_N_CTX_FIX}") from None
        usage = out.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=out["choices"][0].get("finish_reason"),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=self.display_name,
        )

    async def aclose(self) -> None:
        with self._model_lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            if self._llama is not None:
                self._llama.close()
                self._llama = None


_N_CTX_FIX = "shorten the prompt or raise `n_ctx`"


def _leading_text(request: Request, api: str) -> str:
    if api == "completion" and request.system is not None:
        return request.system + "\n\n" + request.prompt
    return (request.system or "") + request.prompt


def model_path(spec_name: str) -> Path:
    """The GGUF file behind ``local:NAME`` (for starting llama.cpp's server on it)."""
    return resolve_local(spec_name)[0]
