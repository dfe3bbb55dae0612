"""What an instruction run found, ready to use: ``InstructionExport``, the best instruction
and the next ones, each with the exact scorer prompt it was scored with (the template, the
position, the system message, the decoding) and its accuracies — ``opro export RUN`` (JSON,
or a plain form for people), ``opro.export`` and ``RunResult.export`` in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opro.errors import ConfigError
from opro.problems.instructions.problem import Outcome
from opro.problems.instructions.prompting import QUESTION, ScorerPrompt, template_of
from opro.problems.instructions.spec import InstructionsSpec
from opro.problems.records import RunSummary, StepRecord
from opro.runlog import RunDir
from opro.types import Status


@dataclass(frozen=True)
class ExportedInstruction:
    """One instruction of a run, with how it scored and the prompt it was scored with."""

    instruction: str
    step: int
    """The step that proposed it (0: a starting instruction)."""
    train_accuracy: float
    """Percent correct on the run's training fold."""
    test_accuracy: float | None
    """Percent correct on the test fold (the run's final evaluation), where scored."""
    template: ScorerPrompt
    """The scorer's prompt with ``{question}`` where each question goes."""

    def to_json(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "step": self.step,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "prompt_template": self.template.prompt,
            "system": self.template.system,
        }


@dataclass(frozen=True)
class InstructionExport:
    """A run's best instruction first, then the next best by training accuracy, and how the
    scorer was asked (``spec``: the run's task and scorer, as resolved)."""

    run_dir: Path
    status: Status
    """``finished``, or ``stopped``/``running``: the best so far."""
    spec: InstructionsSpec
    instructions: tuple[ExportedInstruction, ...]

    @property
    def best(self) -> ExportedInstruction:
        return self.instructions[0]

    def prompt_for(self, question: str, rank: int = 0) -> ScorerPrompt:
        """``question`` under the best instruction (``rank`` 1: the next one...), exactly as
        the run's scorer was asked."""
        if not 0 <= rank < len(self.instructions):
            raise ConfigError(f"rank must be 0..{len(self.instructions) - 1}, got {rank}")
        return self.spec.prompt_for(question, self.instructions[rank].instruction)

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        prompt = self.best.template
        return {
            "run_dir": str(self.run_dir),
            "status": self.status,
            "dataset": spec.dataset if isinstance(spec.dataset, str) else spec.dataset.name,
            "scorer": spec.scorer.redacted().model_dump(mode="json", exclude_defaults=True)
            | {"spec": spec.scorer.spec},
            "scorer_api": prompt.api,
            "position": spec.position,
            "instruction_in": spec.instruction_in,
            "system_prompt": spec.system_prompt,
            "decoding": {
                "temperature": 0.0,
                "max_tokens": prompt.max_tokens,
                "stop": list(prompt.stop),
                "extract_answer": prompt.extract,
            },
            "answer_mode": spec.answer_mode,
            "metric": spec.metric,
            "question_placeholder": QUESTION,
            "instructions": [i.to_json() for i in self.instructions],
        }

    def lines(self) -> list[str]:
        """The plain form: the best instruction, how it was scored, its prompt, the rest."""
        best, prompt, spec = self.best, self.best.template, self.spec
        state = "" if self.status == "finished" else f" (the run is {self.status}: best so far)"
        found = f"step {best.step}" if best.step else "a starting instruction"
        out = [
            f"best instruction{state}: {_scores(best)}, {found}",
            *_indented(_shown(best.instruction)),
            "",
            f"scored by {spec.scorer.spec} ({prompt.api} API), instruction at "
            f"{spec.position if spec.instruction_in == 'user' else 'the system message'}, "
            f"greedy, at most {prompt.max_tokens} tokens"
            + (f", stop at {', '.join(map(repr, prompt.stop))}" if prompt.stop else "")
            + (", then a second pass for the final answer" if prompt.extract else ""),
        ]
        if prompt.system is not None:
            out += ["system message:", *_indented(prompt.system)]
        out += [f"prompt ({QUESTION} is where each question goes):", *_indented(prompt.prompt)]
        if len(self.instructions) > 1:
            out += ["", "next best:"]
            out += [
                f"  {rank}. {_scores(i)}: {_shown(i.instruction)!r}"
                for rank, i in enumerate(self.instructions[1:], start=2)
            ]
        return out


def export_run(run_dir: Path | str, top: int = 3) -> InstructionExport:
    """The best instruction of the instruction run at ``run_dir`` and the next ``top - 1``
    by training accuracy, each with its scorer prompt."""
    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    run = RunDir.open(run_dir)
    config = run.config()
    spec = config.spec
    if config.runs:
        raise ConfigError(
            f"{run.path} is a job of {len(config.runs)} runs: export one of them, e.g. "
            f"{run.path / config.runs[0]}"
        )
    if not isinstance(spec, InstructionsSpec):
        raise ConfigError(
            f"{run.path} is a {spec.kind} run: export is for instruction runs (`opro optimize`)"
        )
    steps = run.read_steps()
    if not steps:
        raise ConfigError(f"{run.path} has no scored instructions yet: resume it first")
    summary = run.summary()
    tested = _test_scores(summary)
    ranked = [
        ExportedInstruction(
            text, step, score, tested.get(text), template_of(spec.scorer_options, text)
        )
        for text, step, score in _ranked(steps, summary)[:top]
    ]
    status = "running" if summary is None else summary.status
    return InstructionExport(run.path, status, spec, tuple(ranked))


def _ranked(steps: list[StepRecord], summary: RunSummary | None) -> list[tuple[str, int, float]]:
    """Distinct instructions scored in full, the run's best first, then by training
    accuracy (the earlier step first among equals)."""
    scored = [
        (str(c.solution), s.step, c.score) for s in steps for c in s.candidates if c.partial is None
    ]
    scored.sort(key=lambda t: (-t[2], t[1]))
    best = summary.best if summary is not None else None
    if best is not None:
        scored.insert(0, (str(best.solution), best.step, best.score))
    first: dict[str, tuple[str, int, float]] = {}
    for text, step, score in scored:
        first.setdefault(text, (text, step, score))
    return list(first.values())


def _test_scores(summary: RunSummary | None) -> dict[str, float | None]:
    outcome = None if summary is None else Outcome.from_details(dict(summary.details))
    return {} if outcome is None else {r.instruction: r.test_score for r in outcome.test_evaluation}


def _scores(item: ExportedInstruction) -> str:
    test = "" if item.test_accuracy is None else f", test {item.test_accuracy:.1f} %"
    return f"train accuracy {item.train_accuracy:.1f} %{test}"


def _shown(instruction: str) -> str:
    return instruction or "(the empty instruction: the question alone)"


def _indented(text: str) -> list[str]:
    return ["    " + line if line else "" for line in text.split("\n")]
