"""Typed values shared by every layer: what is asked of an LLM and what comes back, and
how a run stands.

Frozen dataclasses and Literals, no behaviour beyond small derived properties and the
check of a stop reason read back. Validation of user input happens at the boundary
(pydantic specs: ``opro.problems.spec``), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from opro.answer_shape import ListShape

Api = Literal["chat", "completion"]
"""How a prompt is sent: as one user turn of a chat, or as raw text to continue."""

AnswerKind = Literal["numeric", "boolean", "choice", "text"]
"""How an example's answer is read and compared (``opro.score_answer``'s ``kind``)."""
ANSWER_KINDS: tuple[AnswerKind, ...] = ("numeric", "boolean", "choice", "text")

Status = Literal["running", "finished", "stopped"]
"""Where a run stands (summary.json's ``status``)."""
StopReason = Literal[
    "running", "max_steps", "optimum", "patience",
    "budget", "llm_error", "interrupted", "user_code", "error", "none",
]  # fmt: skip
"""Why a run ended (``running`` while it runs; ``none``: a job none of whose runs ran)."""
FINISHED: tuple[StopReason, ...] = ("max_steps", "optimum", "patience")
"""Stop reasons of a finished run; any other (budget, llm_error, interrupted, user_code,
error) stops it."""
TaskStatus = Literal["finished", "stopped", "failed"]
"""How a sweep's run ended: as its summary says, or ``failed`` (an error, no summary)."""


def stop_reason_of(data: Mapping[str, Any]) -> StopReason:
    """A record's ``stop_reason``, checked (a record without one: ``none``)."""
    value = data.get("stop_reason", "none")
    known = get_args(StopReason)
    if value not in known:
        raise ValueError(f"'stop_reason' is {value!r}, not one of {', '.join(known)}")
    return cast(StopReason, value)


@dataclass(frozen=True)
class Request:
    """One call to an LLM: everything that determines its answer.

    ``sample`` is the index of this sample among several drawn from the same prompt;
    it is part of the cache key and of the derived sampling seed, so 8 samples at
    temperature 1 are 8 different samples, and a rerun replays each of them.
    """

    prompt: str
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    sample: int = 0
    seed: int | None = None
    system: str | None = None
    grammar: str | None = None
    """A GBNF grammar constraining the output (embedded models and llama.cpp servers)."""
    shape: ListShape | None = None
    """What a valid answer looks like: the embedded model's batched decoding (raw-text
    requests without a grammar) stops a sample (finish reason ``hopeless``) once no
    continuation could have it; other paths and backends ignore it."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("temperature must be within [0, 2]")
        if self.sample < 0:
            raise ValueError("sample must be >= 0")

    def derived_seed(self) -> int:
        """A seed for this sample: the request seed (0 when unset) mixed with its index."""
        base = 0 if self.seed is None else self.seed
        return (base * 1_000_003 + self.sample) % (2**31 - 1)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        if self.shape is None:
            del data["shape"]  # so that the cache keys of requests without one stay as they were
        return data


@dataclass(frozen=True)
class Usage:
    """Tokens of one call, as reported by the backend (0 when it reports nothing)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """The answer to one Request."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    """The model id the backend reports having used (for the run log)."""
    cached: bool = False
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": asdict(self.usage),
            "model": self.model,
            "latency_s": round(self.latency_s, 6),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, cached: bool = False) -> Completion:
        """From ``to_json``'s dict; a ``ValueError`` for anything else (a corrupt cache row)."""
        usage = Usage(**data.get("usage", {}))
        counts = (usage.prompt_tokens, usage.completion_tokens)
        if not isinstance(data["text"], str) or not all(type(c) is int for c in counts):
            raise ValueError(f"not a completion: {str(data)[:80]}")
        return cls(
            text=data["text"],
            finish_reason=data.get("finish_reason"),
            usage=Usage(**data.get("usage", {})),
            model=str(data.get("model", "")),
            cached=cached,
            latency_s=float(data.get("latency_s", 0.0)),
        )
