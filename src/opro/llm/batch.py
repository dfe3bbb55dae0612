"""Continuous batching for the embedded llama.cpp model: many completions per decode step.

``BatchEngine`` keeps up to ``n_slots`` sequences in one llama.cpp context and advances all
of them in each ``llama_decode``. Each sequence has a slot: its sequence id and its own KV
stream of ``n_ctx`` cells (``n_seq_max = n_slots``, ``kv_unified`` off). On 2 CPU cores a
step of 16 rows costs about 5 one-row steps (llama.cpp's kernels for 8 rows and more are
compute-bound there), so 16 sequences advance about 3 times faster than one at a time.

``step()`` gives free slots to waiting sequences and reads each one's prompt in a batch of
its own (a sequence that ends on its first token frees its slot for the next one at once),
then decodes one batch holding the last token of every other sequence and picks each
one's next token: the argmax at temperature 0, else a draw from the sequence's own seeded
``temp → dist`` sampler chain. A sequence ends on an end-of-generation token, at
``max_tokens``, when a stop string appears in its text (the text is cut before the
earliest stop string, as the OpenAI API does), or once its text can no longer take the
request's answer shape (``opro.answer_shape``); its slot is free for the next step.

Batch-invariant numbers: a sequence's text does not depend on what else is in the engine
(alone or among 15 others, the same greedy text). llama.cpp's CPU kernels are invariant
only within limits, and the engine keeps inside them:

* one KV stream per sequence: its cells hold positions 0, 1, ... as when it is alone;
* a prompt is read alone, so its micro-batches do not depend on what else is queued;
* a prompt that begins as a seated sequence's does (the same question under 8 instructions,
  one meta-prompt for 8 samples) copies the KV cells of the shared start from it and reads
  only the rest, cut where the numbers stay those of a whole read (``prefix.py``);
* llama.cpp splits a batch over several streams into micro-batches of *consecutive*
  sequence ids, and its matrix kernels round differently below 8 rows and (repacked Q4_K
  weights) for the rows past a multiple of 4. So a decode batch is the slots ``lo..hi``
  in order, at least 8 rows and a multiple of 4; a free slot in that range gets a
  throwaway token at position 0, removed after the step. Sequences are moved down into
  free lower slots (``_compact``), so that few such rows are needed.

The price: fewer than 8 sequences still cost an 8-row step (a lone request decodes about
3.5 times slower than through ``Llama.__call__``). And the batched kernels round
differently from the one-row ones that llama-cpp-python uses, so a greedy continuation may
part from ``Llama.__call__``'s at a near-tie (on the scoring prompts of
``benchmarks/embedded_scoring.py``, 8 of 50 64-token continuations do).

Text is accumulated as bytes (a UTF-8 character may span tokens; stop strings are matched
as bytes) and decoded dropping an incomplete trailing character (at the end, and after each
token when the request has an answer shape).

Not thread-safe: the caller serialises every call (``LocalBackend`` holds its model lock).
"""

from __future__ import annotations

import ctypes
import functools
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opro.answer_shape import ListShape
from opro.llm import prefix

PAD_ROWS = prefix.PAD_ROWS
"""A decode batch has at least this many rows (or ``n_slots``, if fewer), in fours."""


class PromptTooLong(ValueError):
    """The prompt fills one sequence's context window: no room for a token."""


@dataclass(eq=False)
class Sequence:
    """One completion in the engine; ``key`` is the caller's handle for it."""

    key: Any
    prompt: list[int]
    max_tokens: int
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[bytes, ...] = ()
    shape: ListShape | None = None
    slot: int = -1
    fed: int = 0
    """Prompt tokens in its KV cells (read, or copied from another sequence)."""
    copied: int = 0
    """Prompt tokens whose KV cells were copied from another sequence instead of read."""
    tokens: list[int] = field(default_factory=list)
    """Generated tokens (an end-of-generation token is not kept)."""
    data: bytearray = field(default_factory=bytearray)
    finish_reason: str | None = None
    sampler: Any = None

    @property
    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="ignore")


class BatchEngine:
    """Up to ``n_slots`` sequences (a multiple of 4) decoded together, each with ``n_ctx``
    tokens of room (prompt and completion)."""

    def __init__(
        self, model: Any, *, n_ctx: int, n_slots: int, n_threads: int, n_batch: int = 256
    ) -> None:
        import llama_cpp

        if n_slots < 4 or n_slots % 4:
            raise ValueError(f"n_slots must be a multiple of 4: {n_slots}")
        self._lc = llama_cpp
        self.n_slots = n_slots
        self._rows_min = min(PAD_ROWS, n_slots)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * n_slots
        params.n_batch = params.n_ubatch = n_batch = max(n_batch, n_slots)
        params.n_seq_max = n_slots
        params.n_outputs_max = n_slots  # no step asks for more logits rows than slots
        params.kv_unified = False  # one KV stream per sequence: see the module docstring
        params.swa_full = False  # sliding-window layers keep a window, not n_ctx cells
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as Llama(...)
        params.no_perf = True
        self._ctx = llama_cpp.llama_init_from_model(model, params)
        if not self._ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {n_slots} sequences")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._pad_token = max(0, int(llama_cpp.llama_vocab_bos(self._vocab)))
        self.n_ctx = min(n_ctx, int(llama_cpp.llama_n_ctx_seq(self._ctx)))
        self.n_batch = n_batch
        self._share_within = prefix.shareable_length(
            int(llama_cpp.llama_model_n_swa(model)), n_batch, n_ctx
        )
        self.copied = 0
        """Prompt tokens copied from other sequences so far, not read."""
        self._slots: list[Sequence | None] = [None] * n_slots
        self._waiting: deque[Sequence] = deque()
        self._pieces: dict[int, bytes] = {}
        self._eog: dict[int, bool] = {}
        # The batch's arrays live in numpy; the llama_batch struct points into them.
        self._token = np.zeros(n_batch, np.int32)
        self._pos = np.zeros(n_batch, np.int32)
        self._n_seq_id = np.ones(n_batch, np.int32)
        self._seq_ids = np.arange(n_slots, dtype=np.int32)
        self._seq_id_ptr = np.zeros(n_batch, np.uintp)
        self._want = np.zeros(n_batch, np.int8)
        batch = llama_cpp.llama_batch()
        batch.token = _pointer(self._token, llama_cpp.llama_token)
        batch.pos = _pointer(self._pos, llama_cpp.llama_pos)
        batch.n_seq_id = _pointer(self._n_seq_id, ctypes.c_int32)
        batch.seq_id = _pointer(self._seq_id_ptr, ctypes.POINTER(llama_cpp.llama_seq_id))
        batch.logits = _pointer(self._want, ctypes.c_int8)
        self._batch = batch

    # --- sequences -------------------------------------------------------------------

    def live(self) -> list[Sequence]:
        """The sequences holding a slot, in slot order."""
        return [seq for seq in self._slots if seq is not None]

    def sequences(self) -> list[Sequence]:
        """Every sequence in the engine: waiting for a slot, or holding one."""
        return [*self._waiting, *self.live()]

    def add(self, seq: Sequence) -> None:
        """Queue ``seq`` for a slot; ``PromptTooLong`` if its prompt fills the window. As
        llama-cpp-python does, ``max_tokens`` is cut to the room the prompt leaves."""
        if len(seq.prompt) >= self.n_ctx:
            raise PromptTooLong(
                f"the prompt ({len(seq.prompt)} tokens) fills the context window "
                f"({self.n_ctx} tokens)"
            )
        if not seq.prompt:
            raise ValueError("empty prompt")
        seq.max_tokens = min(seq.max_tokens, self.n_ctx - len(seq.prompt))
        self._waiting.append(seq)

    def drop(self, seq: Sequence) -> None:
        """Remove ``seq`` (finished or not), freeing its slot and cache cells."""
        if seq in self._waiting:
            self._waiting.remove(seq)
        if seq.slot < 0 or self._slots[seq.slot] is not seq:
            return
        self._lc.llama_memory_seq_rm(self._memory, seq.slot, -1, -1)
        if seq.sampler is not None:
            self._lc.llama_sampler_free(seq.sampler)
            seq.sampler = None
        self._slots[seq.slot] = None

    def drop_all(self) -> list[Sequence]:
        dropped = self.sequences()
        for seq in dropped:
            self.drop(seq)
        return dropped

    def close(self) -> None:
        self.drop_all()
        if self._ctx:
            self._lc.llama_free(self._ctx)
            self._ctx = None

    # --- decoding --------------------------------------------------------------------

    def step(self) -> list[Sequence]:
        """Give free slots to waiting sequences and read their prompts (a sequence that
        ends on its first token frees its slot for the next one at once), then advance
        every other sequence by one token. Returns the sequences that finished."""
        finished: list[Sequence] = []
        while self._waiting and None in self._slots:
            seq = self._waiting.popleft()
            self._seat(seq, self._slots.index(None))
            self._share_prefix(seq)
            if self._advance(seq, self._next_token(seq, self._read_prompt(seq))):
                finished.append(seq)
                self.drop(seq)
        self._compact()
        generating = self.live()
        if generating:
            rows = self._decode_one_token_each(generating)
            for i, seq in zip(rows, generating, strict=True):
                if self._advance(seq, self._next_token(seq, i)):
                    finished.append(seq)
                    self.drop(seq)
        return finished

    def _seat(self, seq: Sequence, slot: int) -> None:
        seq.slot = slot
        self._slots[slot] = seq
        if seq.temperature > 0:
            lc = self._lc
            seq.sampler = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
            lc.llama_sampler_chain_add(seq.sampler, lc.llama_sampler_init_temp(seq.temperature))
            lc.llama_sampler_chain_add(seq.sampler, lc.llama_sampler_init_dist(seq.seed))

    def _compact(self) -> None:
        """Move the sequences in the highest slots down into free lower ones, so that the
        decode batch (slots ``lo..hi``) has no throwaway rows in the middle. llama.cpp
        copies the KV stream at the next decode; the copy has the same numbers."""
        while True:
            free = [slot for slot, seq in enumerate(self._slots) if seq is None]
            live = [slot for slot, seq in enumerate(self._slots) if seq is not None]
            if not free or not live or free[0] > live[-1]:
                return
            seq = self._slots[live[-1]]
            assert seq is not None
            self._lc.llama_memory_seq_cp(self._memory, seq.slot, free[0], -1, -1)
            self._lc.llama_memory_seq_rm(self._memory, seq.slot, -1, -1)
            self._slots[seq.slot], self._slots[free[0]] = None, seq
            seq.slot = free[0]

    def _share_prefix(self, seq: Sequence) -> None:
        """Give the newly seated ``seq`` the KV cells of the longest prompt start it shares
        with a seated sequence, cut where reading the rest gives a whole read's numbers."""
        best, donor = 0, None
        for other in self.live():
            if other is seq or other.fed + len(other.tokens) > self._share_within:
                continue
            shared = prefix.common_length(seq.prompt, other.prompt, other.fed)
            cut = prefix.cut_point(len(seq.prompt), shared, self.n_batch)
            if cut > best:
                best, donor = cut, other
        if donor is None or best < prefix.MIN_SHARED:
            return
        lc = self._lc
        lc.llama_memory_seq_cp(self._memory, donor.slot, seq.slot, -1, -1)  # at next decode
        if not lc.llama_memory_seq_rm(self._memory, seq.slot, best, -1):
            lc.llama_memory_seq_rm(self._memory, seq.slot, -1, -1)
            return
        seq.fed = seq.copied = best
        self.copied += best

    def _read_prompt(self, seq: Sequence) -> int:
        """Decode ``seq``'s prompt alone (from what it holds, in chunks ending at multiples
        of ``n_batch``), as a one-sequence context would: its cache and first token do not
        depend on other sequences. Returns the batch row holding its last token's logits."""
        n = 0
        while seq.fed < len(seq.prompt):
            chunk = seq.prompt[seq.fed : (seq.fed // self.n_batch + 1) * self.n_batch]
            n = len(chunk)
            self._token[:n] = chunk
            self._pos[:n] = np.arange(seq.fed, seq.fed + n, dtype=np.int32)
            self._seq_id_ptr[:n] = self._seq_pointer(seq.slot)
            self._want[:n] = 0
            seq.fed += n
            self._want[n - 1] = seq.fed == len(seq.prompt)
            self._decode(n)
        return n - 1

    def _decode_one_token_each(self, seqs: list[Sequence]) -> list[int]:
        """Feed each sequence its last token in one batch; return each one's batch row.

        The rows are the slots ``lo..hi`` in order (one micro-batch), padded to at least
        ``PAD_ROWS`` rows in fours with throwaway tokens in free slots: see the module
        docstring.
        """
        by_slot = {seq.slot: seq for seq in seqs}
        lo, hi = min(by_slot), max(by_slot)
        size = max(self._rows_min, -(-(hi - lo + 1) // 4) * 4)
        hi = min(len(self._slots) - 1, lo + size - 1)
        lo = hi - size + 1
        spare: list[int] = []
        for row, slot in enumerate(range(lo, hi + 1)):
            seq = by_slot.get(slot)
            if seq is None:
                self._token[row], self._pos[row] = self._pad_token, 0
                spare.append(slot)
            else:
                self._token[row] = seq.tokens[-1]
                self._pos[row] = len(seq.prompt) + len(seq.tokens) - 1
            self._seq_id_ptr[row] = self._seq_pointer(slot)
        self._want[: hi - lo + 1] = 1
        try:
            self._decode(hi - lo + 1)
        finally:
            for slot in spare:
                self._lc.llama_memory_seq_rm(self._memory, slot, -1, -1)
        return [seq.slot - lo for seq in seqs]

    def _decode(self, n: int) -> None:
        self._batch.n_tokens = n
        code = self._lc.llama_decode(self._ctx, self._batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed (code {code})")

    def _seq_pointer(self, slot: int) -> int:
        return int(self._seq_ids.ctypes.data) + 4 * slot

    def _next_token(self, seq: Sequence, i: int) -> int:
        if seq.sampler is not None:
            return int(self._lc.llama_sampler_sample(seq.sampler, self._ctx, i))
        row = self._lc.llama_get_logits_ith(self._ctx, i)
        if not row:
            raise RuntimeError(f"llama.cpp returned no logits for batch row {i}")
        return int(np.ctypeslib.as_array(row, shape=(self.n_vocab,)).argmax())

    def _advance(self, seq: Sequence, token: int) -> bool:
        """Append ``token`` to ``seq``; True when the sequence is finished."""
        if self._is_eog(token):
            seq.finish_reason = "stop"
            return True
        seq.tokens.append(token)
        before = len(seq.data)
        seq.data += self._piece(token)
        cut = -1
        for stop in seq.stop:
            at = seq.data.find(stop, max(0, before - len(stop) + 1))
            if at >= 0 and (cut < 0 or at < cut):
                cut = at
        if cut >= 0:
            del seq.data[cut:]
            seq.finish_reason = "stop"
            return True
        if seq.shape is not None and seq.shape.hopeless(seq.text):
            seq.finish_reason = "hopeless"
            return True
        if len(seq.tokens) >= seq.max_tokens:
            seq.finish_reason = "length"
            return True
        return False

    def _is_eog(self, token: int) -> bool:
        if token not in self._eog:
            self._eog[token] = bool(self._lc.llama_vocab_is_eog(self._vocab, token))
        return self._eog[token]

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            while True:
                buf = ctypes.create_string_buffer(size)
                n = self._lc.llama_token_to_piece(self._vocab, token, buf, size, 0, False)
                if n >= 0:
                    break
                size = -n
            piece = self._pieces[token] = buf.raw[:n]
        return piece


@functools.cache
def llama_thread() -> ThreadPoolExecutor:
    """The one thread for all llama.cpp work in this process: its OpenMP runtime keeps a
    team of threads per calling thread, and the teams of two calling threads slow each
    other down on the same cores (by about 20% on 2 cores)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="opro-llama")


def prompt_tokens(llama: Any, text: str) -> list[int]:
    """``text`` as ``Llama.create_completion`` tokenizes a prompt: special tokens parsed,
    BOS (or CLS) first and EOS (or SEP) last where the model asks for them."""
    model = llama._model
    tokens: list[int] = llama.tokenize(text.encode(), add_bos=False, special=True)
    first = model.token_cls() if model.token_cls() != -1 else llama.token_bos()
    if model.add_bos_token() and first != -1:
        tokens.insert(0, first)
    if model.add_eos_token() or model.token_sep() != -1:
        tokens.append(model.token_sep() if model.token_sep() != -1 else llama.token_eos())
    return tokens


def _pointer(array: np.ndarray[Any, Any], ctype: Any) -> Any:
    return ctypes.cast(array.ctypes.data, ctypes.POINTER(ctype))
