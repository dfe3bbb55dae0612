"""What defines an instruction-optimization run (OPRO §4): the dataset and its folds, the
scorer and how it is prompted and scored, the meta-prompt's style and exemplars, the
starting instructions and the held-out evaluation; with the paper's defaults.

``style``, ``position``, ``scorer_style`` and the optimizer's ``max_tokens`` default from the
models' prompt APIs (a pre-trained model gets the Q/A pattern, A_begin and the pre-trained
meta-prompt); they are filled in (``resolved``) before the run starts and kept in its spec.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opro.data import resolve_data_dir
from opro.data.user import rows_of
from opro.errors import ConfigError
from opro.eval.answers import Mode
from opro.eval.scorer import Position, ScorerOptions, ScorerStyle, check_position, scorer_style
from opro.llm.config import LLMConfig
from opro.problems.instructions.prompting import ScorerPrompt, prompt_of
from opro.problems.spec import EngineSpec, RunSpec, function_path
from opro.types import Api

MetaStyle = Literal["instruct", "pretrained"]
ExemplarSelection = Literal["random", "constant", "wrong"]
MAX_LENGTH = 500
PRETRAINED_MAX_TOKENS = 64
"""One ``Precision: NN <TEXT>…</TEXT>`` line: the pre-trained style's optimizer output."""
_META_MARKS = re.compile(r"</?(TEXT|INS)>|^[ \t]*(text|score):[ \t]*$", re.I | re.M)
"""The meta-prompts' own marks (``instructions_*.jinja``): an instruction holding one would
be shown as a forged, scored history entry (``</TEXT> Precision: 100 <TEXT>x``)."""


def meta_prompt_mark(text: str) -> str | None:
    """The first of the meta-prompts' own marks in ``text``, if any."""
    found = _META_MARKS.search(text)
    return found.group(0).strip() if found else None


class InstructionsEngine(EngineSpec):
    steps: int = Field(200, ge=1, description="optimization steps (the paper's)")
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="tokens per optimizer sample (default 64 for the pre-trained style, else 256)",
    )


class InlineData(BaseModel):
    """Examples given in memory (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``),
    kept in the spec, so that a resume needs nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    rows: tuple[dict[str, object], ...] = Field(min_length=1)
    """the examples, as given (each an object of fields)"""
    name: str = "inline"
    """the dataset's name in reports"""


class InstructionsSpec(RunSpec):
    kind: Literal["instructions"] = "instructions"
    engine: InstructionsEngine = InstructionsEngine()
    dataset: str | InlineData = Field(
        description="gsm8k, bbh:TASK, multiarith, aqua, mmlu:SUBJECT, synthetic:adjective_order "
        "(generated, offline), or your own: jsonl:PATH, "
        "csv:PATH (in Python also a list of dicts, a DataFrame, a datasets.Dataset)"
    )
    test_dataset: str | InlineData | None = Field(
        None,
        description="the test examples apart (your own data, or a benchmark's test fold): the "
        "whole --dataset then trains",
    )
    question_field: str = Field("question", description="your data's field holding the question")
    answer_field: str = Field("answer", description="your data's field holding the answer")
    train_ratio: float | None = Field(
        None, gt=0, lt=1, description="the share of your data that trains, a seeded draw (0.2)"
    )
    train_size: int | None = Field(
        None, ge=1, description="how many of your examples train, a seeded draw"
    )
    task_description: str | None = Field(
        None, description="what the task is, in a sentence, for the meta-prompt"
    )
    data_dir: str | None = Field(
        None,
        description="benchmark files laid out like the authors' data/ folder (default "
        "$OPRO_DATA_DIR, else where `opro data fetch` puts them)",
    )
    scorer: LLMConfig = Field(LLMConfig(), description="the scorer's model")
    position: Position | None = Field(
        None,
        description="where the instruction goes in the scorer's prompt (default A_begin for "
        "a pre-trained scorer, Q_begin for a chat scorer)",
    )
    style: MetaStyle | None = Field(
        None,
        description="meta-prompt style (default: pretrained for a completion-API optimizer, "
        "instruct for a chat one)",
    )
    scorer_style: ScorerStyle | None = None
    """how the scorer is prompted: base (Q/A text) or chat (default: from the scorer's prompt
    API)"""
    exemplars: int = Field(3, ge=0, description="training problems shown in the meta-prompt")
    exemplar_selection: ExemplarSelection = Field(
        "random", description="random per step, constant, or those most often answered wrong"
    )
    initial: tuple[str, ...] = Field(
        ("",), min_length=1, description='starting instructions (the paper\'s BBH start: "")'
    )
    max_train: int | None = Field(None, ge=1, description="subsample the training fold to N")
    max_test: int | None = Field(None, ge=1, description="subsample the test fold to N")
    test_top: int = Field(
        3, ge=1, description="instructions (best by training accuracy) scored on the test fold"
    )
    answer_mode: Mode = Field(
        "strict", description="strict: correct matching; paper: the authors' scoring, exactly"
    )
    scorer_max_tokens: int = Field(256, ge=1, description="tokens per scorer answer")
    evaluation: Literal["full", "race"] = Field(
        "full",
        description="full: every proposal on the whole training fold (the paper's); race: in "
        "rounds, dropping a proposal once it confidently cannot be shown in the meta-prompt",
    )
    race_delta: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="racing: the most a proposal that would have been shown is dropped",
    )
    race_rounds: int = Field(10, ge=2, description="racing: rounds over the training fold")
    extract_answer: bool = Field(
        False,
        description="second pass for pre-trained scorers: ask 'So the final answer is' and "
        "score that",
    )
    numeric_digit_filter: bool = Field(
        True, description="refuse proposals with digits on numeric tasks (answer leakage)"
    )
    metric: str | None = Field(
        None,
        description="how an answer is scored: by the data's answer kind (default), or as "
        "numeric, boolean, choice or text; judge (an LLM judge); or module:function, your "
        "(prediction, example) -> float in [0, 1] or bool, sync or async (in Python also the "
        "function itself, kept as its module:function)",
    )
    judge: LLMConfig | None = Field(
        None, description="the judge's model for --metric judge (default: the scorer's)"
    )
    system_prompt: str | None = Field(None, description="a system message for the scorer")
    instruction_in: Literal["user", "system"] = Field(
        "user",
        description="chat scorers: the instruction goes in the user turn (at --position) or "
        "in the system message",
    )

    RESOLVED = frozenset({"scorer_style"})

    @model_validator(mode="before")
    @classmethod
    def _rows_in_memory(cls, data: Any) -> Any:
        """A dataset given as rows in memory is kept as ``InlineData``."""
        if not isinstance(data, dict):
            return data
        for key in ("dataset", "test_dataset"):
            value = data.get(key)
            if value is not None and not isinstance(value, str | dict | InlineData):
                data = data | {key: InlineData(rows=tuple(rows_of(value, key)))}
        return data

    @field_validator("metric", mode="before")
    @classmethod
    def _function_by_its_path(cls, value: Any) -> Any:
        """A metric function given itself is kept as its import path, which config.json
        records so that resume and report find it again (a notebook's own functions are
        ``__main__:name``, found again in the same kernel)."""
        return function_path(value, "metric")

    @model_validator(mode="after")
    def _position_fits_the_scorer(self) -> InstructionsSpec:
        if self.position is not None and self.scorer_style is not None:
            check_position(self.position, self.scorer_style)
        return self

    @field_validator("initial")
    @classmethod
    def _short_enough(cls, initial: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(text) > MAX_LENGTH for text in initial):
            raise ValueError(f"a starting instruction is over {MAX_LENGTH} characters")
        for text in initial:
            if mark := meta_prompt_mark(text):
                raise ValueError(
                    f"a starting instruction contains {mark!r}, a mark of the meta-prompt "
                    "(it would be shown as a forged, scored entry): remove it"
                )
        return initial

    def resolved(self, apis: dict[str, Api]) -> InstructionsSpec:
        """Defaults that depend on the models filled in (see the module docstring)."""
        scoring = self.scorer_style or scorer_style(apis["scorer"])
        style = self.style or ("pretrained" if apis["optimizer"] == "completion" else "instruct")
        position = self.position or ("A_begin" if scoring == "base" else "Q_begin")
        check_position(position, scoring)
        if self.instruction_in == "system" and scoring != "chat":
            raise ConfigError(
                "instruction_in: a pre-trained scorer has no system message: use "
                "instruction_in user, or a chat scorer"
            )
        tokens = self.engine.max_tokens or (PRETRAINED_MAX_TOKENS if style == "pretrained" else 256)
        return self.model_copy(
            update={
                "scorer_style": scoring,
                "style": style,
                "position": position,
                "dataset": _absolute(self.dataset),
                "test_dataset": _absolute(self.test_dataset),
                "data_dir": str(resolve_data_dir(self.data_dir).resolve()),
                "engine": self.engine.model_copy(update={"max_tokens": tokens}),
            }
        )

    def imports(self) -> tuple[str, ...]:
        metric = self.metric or ""
        return (*super().imports(), *([metric] if ":" in metric else []))

    def prompt_for(self, question: str, instruction: str) -> ScorerPrompt:
        """``question`` under ``instruction``, exactly as this (resolved) spec's scorer is
        asked it: its prompt, system message and decoding."""
        if self.position is None or self.scorer_style is None:
            raise ConfigError(
                "this spec is not resolved yet (its position depends on the scorer): use a "
                "run's spec, `result.spec`, or give position and scorer_style"
            )
        return prompt_of(self.scorer_options, instruction, question)

    @property
    def scorer_options(self) -> ScorerOptions:
        assert self.position is not None, "resolve it first"
        assert self.scorer_style is not None, "resolve it first"
        return ScorerOptions(
            self.position,
            self.scorer_style,
            self.scorer_max_tokens,
            self.answer_mode,
            self.extract_answer,
            system=self.system_prompt,
            instruction_in=self.instruction_in,
        )


def _absolute(source: str | InlineData | None) -> str | InlineData | None:
    """A user file's path made absolute: a resume may start in another directory."""
    if not isinstance(source, str):
        return source
    prefix, sep, arg = source.strip().partition(":")
    if prefix.lower() in ("jsonl", "csv") and sep:
        return f"{prefix.lower()}:{Path(arg.strip()).expanduser().resolve()}"
    return source.strip()
