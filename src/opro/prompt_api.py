"""The Python API of the main application: ``optimize`` an instruction, ``evaluate`` some.

``aoptimize`` checks everything a run needs before it writes anything — the dataset
loads, both models can be reached (a missing key or model fails here), the options agree
(A_begin needs a pre-trained scorer) — then creates the run dir and runs the OPRO loop
(``opro.jobs``), which ends with the held-out evaluation. ``aevaluate`` scores given
instructions on a split, with a paired test of each against the first.
Defaults are offline: ``local:gemma3-270m`` as scorer and optimizer, which being a
pre-trained model gets the Q/A pattern, A_begin and the pre-trained meta-prompt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from opro import jobs
from opro.budget import Budget, RoleUsage
from opro.config import BudgetConfig, LLMConfig
from opro.data import resolve_data_dir, subsample
from opro.errors import ConfigError
from opro.eval.metrics import Mode
from opro.eval.scorer import (
    InstructionScore,
    ScorerOptions,
    ScorerStyle,
    score_instructions,
    scorer_style,
)
from opro.eval.stats import PairedTest, mcnemar_exact
from opro.llm.cache import CallCache
from opro.llm.registry import probe_backend
from opro.llm.stack import build_llm
from opro.meta_prompt import MetaPromptOptions
from opro.optimizer import EngineConfig, RunResult
from opro.problems.instructions import ExemplarSelection, InstructionTask, MetaStyle
from opro.progress import Progress
from opro.runlog import RunDir

DEFAULT_MODEL = "local:gemma3-270m"
INSTRUCTION_ENGINE = EngineConfig(steps=200, meta=MetaPromptOptions(top_k=20))
Split = Literal["train", "test", "all"]


def _llm(value: LLMConfig | str) -> LLMConfig:
    return value if isinstance(value, LLMConfig) else LLMConfig(spec=value)


def default_position(style: ScorerStyle) -> str:
    return "A_begin" if style == "base" else "Q_begin"


async def aoptimize(
    dataset: str,
    *,
    scorer: LLMConfig | str = DEFAULT_MODEL,
    optimizer: LLMConfig | str = DEFAULT_MODEL,
    position: str | None = None,
    style: MetaStyle | None = None,
    exemplars: int = 3,
    exemplar_selection: ExemplarSelection = "random",
    initial: Sequence[str] = ("",),
    max_train: int | None = None,
    max_test: int | None = None,
    test_top: int = 3,
    answer_mode: Mode = "strict",
    scorer_max_tokens: int = 256,
    extract: bool = False,
    data_dir: Path | str | None = None,
    engine: EngineConfig | None = None,
    out: Path | str | None = None,
    budget: BudgetConfig | None = None,
    cache: Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> RunResult:
    """Optimize an instruction for ``dataset`` (OPRO §4) and evaluate the best on its test
    fold. ``style`` and ``position`` default from the models' APIs (see the module doc);
    ``progress`` hears of each step."""
    scorer_config, optimizer_config = _llm(scorer), _llm(optimizer)
    style_of_scorer = scorer_style(
        await probe_backend(scorer_config.spec, scorer_config.backend_options())
    )
    optimizer_api = await probe_backend(optimizer_config.spec, optimizer_config.backend_options())
    if style is None:
        style = "pretrained" if optimizer_api == "completion" else "instruct"
    engine = engine or INSTRUCTION_ENGINE
    if engine.max_tokens == EngineConfig.max_tokens and style == "pretrained":
        engine = replace(engine, max_tokens=64)  # one <TEXT> line
    task = InstructionTask(
        dataset=dataset,
        data_dir=str(resolve_data_dir(data_dir).resolve()),
        position=position or default_position(style_of_scorer),  # type: ignore[arg-type]
        scorer_style=style_of_scorer,
        style=style,
        exemplars=exemplars,
        exemplar_selection=exemplar_selection,
        initial=tuple(initial),
        max_train=max_train,
        max_test=max_test,
        test_top=test_top,
        answer_mode=answer_mode,
        scorer_max_tokens=scorer_max_tokens,
        extract=extract,
        seed=engine.seed,
    )
    data = task.load_data()  # a bad dataset fails before anything is written
    task = replace(task, dataset=data.name)
    path = Path(out) if out is not None else Path("runs") / time.strftime("optimize-%Y%m%d-%H%M%S")
    config = jobs.run_config(
        "instructions",
        task.to_json(),
        engine,
        optimizer_config,
        budget or BudgetConfig(),
        cache,
        use_cache,
        scorer=scorer_config,
    )
    return await jobs.run_new(RunDir.create(path, config), progress)


@dataclass(frozen=True)
class Evaluation:
    """Instructions scored on one split; ``paired[i]`` tests instruction i against the first."""

    dataset: str
    split: str
    scorer: str
    position: str
    results: tuple[InstructionScore, ...]
    paired: tuple[PairedTest | None, ...]
    elapsed_s: float
    usage: RoleUsage

    def to_json(self, *, examples: bool = False) -> dict[str, Any]:
        rows = [
            r.to_json(examples=examples)
            | ({} if p is None else {"paired_test_vs_first": p.to_json()})
            for r, p in zip(self.results, self.paired, strict=True)
        ]
        head = {
            "dataset": self.dataset,
            "split": self.split,
            "scorer": self.scorer,
            "position": self.position,
        }
        if len(rows) == 1:
            return head | rows[0] | {"usage": self.usage.to_json()}
        return head | {
            "instructions": rows,
            "elapsed_s": round(self.elapsed_s, 3),
            "usage": self.usage.to_json(),
        }


async def aevaluate(
    dataset: str,
    instructions: Sequence[str],
    *,
    scorer: LLMConfig | str = DEFAULT_MODEL,
    split: Split = "test",
    position: str | None = None,
    max_examples: int | None = None,
    answer_mode: Mode = "strict",
    scorer_max_tokens: int = 256,
    extract: bool = False,
    data_dir: Path | str | None = None,
    seed: int = 0,
    cache: CallCache | None = None,
    budget: BudgetConfig | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Score each instruction on ``split`` of ``dataset``; failed calls are reported apart.
    ``progress`` hears how many (instruction, example) pairs are scored."""
    from opro.data import load_dataset

    if not instructions:
        raise ConfigError("give at least one --instruction (or --instructions-from RUN_DIR)")
    if split not in ("train", "test", "all"):
        raise ConfigError(f"--split must be train, test or all, got {split!r}")
    if max_examples is not None and max_examples < 1:
        raise ConfigError(f"--max-examples must be >= 1, got {max_examples}")
    config = _llm(scorer)
    data = load_dataset(dataset, data_dir, seed=seed)
    examples = data.split(split)
    if max_examples is not None:
        examples = subsample(examples, max_examples, seed)
    shared = Budget((budget or BudgetConfig()).caps())
    llm = build_llm(
        config.spec,
        config.backend_options(),
        config.stack_options("scorer", seed),
        cache=cache,
        budget=shared,
    )
    try:
        style = scorer_style(llm.api)
        options = ScorerOptions(
            position or default_position(style),  # type: ignore[arg-type]
            style,
            scorer_max_tokens,
            answer_mode,
            extract,
        )
        started = time.monotonic()
        results = await score_instructions(
            llm,
            list(instructions),
            examples,
            options,
            tolerate_failures=True,
            progress=progress,
        )
        elapsed = time.monotonic() - started
    finally:
        await llm.aclose()
    first = results[0].marks
    paired = tuple(None if i == 0 else mcnemar_exact(first, r.marks) for i, r in enumerate(results))
    return Evaluation(
        data.name,
        split,
        config.spec,
        options.position,
        tuple(results),
        paired,
        elapsed,
        shared.total(),
    )


def instructions_from(run_dir: Path | str, top: int = 3) -> list[str]:
    """A run's initial instruction(s), then its ``top`` instructions by training score."""
    if top < 1:
        raise ConfigError(f"--top must be >= 1, got {top}")
    run = RunDir.open(run_dir)
    if run.config().get("kind") != "instructions":
        raise ConfigError(f"{run_dir} is not an instruction-optimization run (`opro optimize`)")
    steps = run.read_steps()
    if not steps:
        raise ConfigError(f"{run_dir} has no scored instructions yet: resume it first")
    initial = [c["solution"] for c in steps[0]["candidates"]]
    scored = [(c["score"], s["step"], c["solution"]) for s in steps for c in s["candidates"]]
    ranked = [text for _, _, text in sorted(scored, key=lambda t: (-t[0], t[1]))]
    return list(dict.fromkeys(initial + ranked[:top]))
